// Opens N authenticated Socket.IO sessions by hand (Engine.IO open, 40{token}, answering pings)
// and keeps them idle, for measuring memory per idle socket.
//   node idle-sockets.cjs URL N SECRET [websocket|polling]
// websocket: one raw websocket each. polling: Engine.IO long-polling (a GET always pending, pongs
// and the connect sent by POST), keep-alive connections.
// It prints "connected <n>" once all are open, then "alive <n>" every 30 s; "closed <n>" counts
// sessions the server ended.
const http = require('http');
const { token: sign, openWebsocket } = require('./raw-socketio.cjs');
const [url, n, secret, transport = 'websocket'] = [process.argv[2], +process.argv[3], process.argv[4], process.argv[5]];
const token = () => sign(secret);
let connected = 0, closed = 0;
async function openWs() {
  if (await openWebsocket(url, secret, { onClose: () => closed++ })) connected++;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const base = url.replace(/^ws/, 'http') + '/socket.io/?EIO=4&transport=polling';
function request(method, query, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + query, { method, agent, headers: body ? { 'content-type': 'text/plain;charset=UTF-8' } : {} }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (data += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`${res.statusCode} ${data}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function openPolling() {
  try {
    const open = await request('GET', '');
    const sid = JSON.parse(open.slice(1)).sid;
    const q = `&sid=${sid}`;
    await request('POST', q, '40' + JSON.stringify({ token: token() }));
    let counted = false;
    (async () => {
      for (;;) {
        let payload;
        try { payload = await request('GET', q); } catch { closed++; return; }
        for (const p of payload.split('\x1e')) {
          if (p === '2') request('POST', q, '3').catch(() => {});
          else if (p.startsWith('40') && !counted) { counted = true; connected++; }
          else if (p === '1') { closed++; return; }
        }
      }
    })();
    while (!counted) await new Promise((r) => setTimeout(r, 20));
  } catch (e) {
    console.error(`open failed: ${e.message}`);
  }
}

const open = transport === 'polling' ? openPolling : openWs;
(async () => {
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => open()));
  console.log(`connected ${connected}`);
  setInterval(() => console.log(`alive ${connected - closed}`), 30000);
})();
