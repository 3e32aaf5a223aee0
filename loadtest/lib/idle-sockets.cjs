// Opens N authenticated Socket.IO websockets by hand (Engine.IO open, 40{token}, answering pings)
// and keeps them idle, for measuring memory per idle socket. Usage: node idle-sockets.cjs URL N SECRET
const WebSocket = require(require('path').join(__dirname, '../../tests/js/node_modules/ws'));
const crypto = require('crypto');
const [url, n, secret] = [process.argv[2], +process.argv[3], process.argv[4]];
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(sub) {
  const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  return `${h}.${p}.${crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
}
let connected = 0, closed = 0;
function open(i) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}/socket.io/?EIO=4&transport=websocket`);
    ws.on('message', (m) => {
      m = m.toString();
      if (m.startsWith('0')) ws.send('40' + JSON.stringify({ token: token(crypto.randomUUID()) }));
      else if (m.startsWith('40')) { connected++; resolve(); }
      else if (m === '2') ws.send('3');
    });
    ws.on('close', () => closed++);
    ws.on('error', () => resolve());
  });
}
(async () => {
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, (_, k) => open(i + k)));
  console.log(`connected ${connected}`);
  setInterval(() => console.log(`alive ${connected - closed}`), 30000);
})();
