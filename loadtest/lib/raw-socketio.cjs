// The smallest Socket.IO client for measuring a replica (idle-sockets.cjs, fanout-cpu.cjs): an
// HS256 token signer and a raw websocket that does the Engine.IO open, `40{token}` and answers
// pings, with nothing else on the client's side to cost memory or CPU.
const path = require('path');
const crypto = require('crypto');
const WebSocket = require(path.join(__dirname, '../../tests/js/node_modules/ws'));

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A token for `sub` (a new player when omitted), valid for an hour. */
function token(secret, sub = crypto.randomUUID(), role = 'user') {
  const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64({ sub, role, exp: Math.floor(Date.now() / 1000) + 3600 });
  return `${h}.${p}.${crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
}

/**
 * Opens one authenticated websocket session for a new player. Resolves `true` once connected,
 * `false` on a transport error. `onEvent(frame)` gets every `42…` frame, `onClose()` the close.
 */
function openWebsocket(url, secret, { onEvent, onClose } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}/socket.io/?EIO=4&transport=websocket`);
    ws.on('message', (m) => {
      m = m.toString();
      if (m.startsWith('0')) ws.send('40' + JSON.stringify({ token: token(secret) }));
      else if (m.startsWith('40')) resolve(true);
      else if (m === '2') ws.send('3');
      else if (onEvent && m.startsWith('42')) onEvent(m);
    });
    if (onClose) ws.on('close', onClose);
    ws.on('error', () => resolve(false));
  });
}

module.exports = { token, openWebsocket };
