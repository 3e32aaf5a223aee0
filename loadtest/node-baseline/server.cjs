// The incumbent's stack for side-by-side figures: Node.js with socket.io 4.8 doing what a
// CyberHub replica does in loadtest/fanout-cpu.sh — sockets authenticated by an HS256 token in the
// handshake, each joined to `user:<id>`, and a case price edit over HTTP that emits
// `cases:updated` (no arguments) to every socket. Only the two admin routes the script calls exist.
//   PORT=… JWT_SECRET=… node server.cjs
const http = require('http');
const crypto = require('crypto');
const { Server } = require('socket.io');

const secret = process.env.JWT_SECRET;
function verify(token) {
  const [h, p, sig] = String(token || '').split('.');
  const want = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  if (!sig || sig.length !== want.length || !crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(want))) return null;
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  return claims.exp > Date.now() / 1000 ? claims : null;
}

let cases = 0;
const server = http.createServer((req, res) => {
  const admin = verify((req.headers.authorization || '').replace(/^Bearer /, ''));
  req.resume();
  req.on('end', () => {
    if (!admin || admin.role !== 'admin') return res.writeHead(401).end();
    if (req.method === 'POST' && req.url === '/api/admin/cases') {
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ case: { id: `case-${++cases}` } }));
    } else if (req.method === 'PUT' && /^\/api\/admin\/cases\/[^/]+\/price$/.test(req.url)) {
      io.emit('cases:updated');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } else {
      res.writeHead(404).end();
    }
  });
});
const io = new Server(server, { transports: ['websocket', 'polling'] });
io.use((socket, next) => {
  const claims = verify(socket.handshake.auth && socket.handshake.auth.token);
  if (!claims) return next(new Error('unauthorized'));
  socket.data.userId = claims.sub;
  next();
});
io.on('connection', (socket) => socket.join(`user:${socket.data.userId}`));
server.listen(+process.env.PORT, '127.0.0.1', () => console.log(`listening on ${process.env.PORT}`));
