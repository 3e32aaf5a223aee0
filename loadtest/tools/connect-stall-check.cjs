// Opens N authenticated websockets by hand, B at a time, and counts those that got their 101 but
// no Engine.IO open packet within 15 s (the connect stall of docs/benchmarks.md), then closes all.
//   set -a; . .cluster/env; set +a; ulimit -n $(ulimit -Hn)
//   node loadtest/tools/connect-stall-check.cjs $CYBERHUB_URL 15000 "$JWT_SECRET" [B=200] [cookie]
const WebSocket = require(require('path').join(__dirname, '../../tests/js/node_modules/ws'));
const crypto = require('crypto');
const [url, n, secret, batch, cookie] = [process.argv[2], +process.argv[3], process.argv[4], +(process.argv[5] || 200), process.argv[6]];
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(sub) {
  const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  return `${h}.${p}.${crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
}
let connected = 0, stalled = 0, errors = 0;
const sockets = [];
function open() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}/socket.io/?EIO=4&transport=websocket`, cookie ? { headers: { Cookie: cookie } } : {});
    sockets.push(ws);
    let upgraded = false, gotOpen = false;
    const t = setTimeout(() => { if (!gotOpen) { if (upgraded) stalled++; else errors++; resolve(); } }, 15000);
    ws.on('upgrade', () => { upgraded = true; });
    ws.on('message', (m) => {
      m = m.toString();
      if (m.startsWith('0')) { gotOpen = true; ws.send('40' + JSON.stringify({ token: token(crypto.randomUUID()) })); }
      else if (m.startsWith('40')) { connected++; clearTimeout(t); resolve(); }
      else if (m === '2') ws.send('3');
    });
    ws.on('error', () => { errors++; clearTimeout(t); resolve(); });
  });
}
(async () => {
  const started = Date.now();
  for (let i = 0; i < n; i += batch) await Promise.all(Array.from({ length: Math.min(batch, n - i) }, open));
  console.log(`connected ${connected} stalled ${stalled} errors ${errors} in ${(Date.now() - started) / 1000} s`);
  for (const ws of sockets) ws.terminate();
  process.exit(0);
})();
