// Just enough Socket.IO (v5 protocol over Engine.IO v4, websocket transport only) for load tests,
// on k6's event-loop websockets so one VU can hold many sockets.
//
//   const s = connect(WS_URL, token, { connect(s) {}, connect_error(msg) {}, disconnect(reason) {},
//                                      retry(reason) { return true to count a failed connect as retried } });
//   s.on('cases:updated', () => {}); s.emit('user:identify', { userId }, (reply) => {}); s.close();
//
// Engine.IO: server `0{...}` open (pingInterval), `2` ping that MUST be answered with `3` (k6's own
// websocket pings do not count), `1` close, `4…` a Socket.IO packet. Socket.IO: `40{json}` connect
// to "/", `44{json}` connect_error, `41` disconnect, `42[name,...args]` event, `43<id>[...]` ack.

import { WebSocket } from 'k6/experimental/websockets';
import { Counter, Trend } from 'k6/metrics';
import { duration } from './config.js';

export const connects = new Counter('sio_connects');
export const connectFailures = new Counter('sio_connect_failures');
// Connect attempts that failed and were tried again (CONNECT_RETRIES); not in sio_connect_failures.
export const connectRetries = new Counter('sio_connect_retries');
export const unexpectedDisconnects = new Counter('sio_unexpected_disconnects');
export const pongs = new Counter('sio_pongs');
export const connectTime = new Trend('sio_connect_time', true);

const CONNECT_TIMEOUT_MS = duration('CONNECT_TIMEOUT', '15s');
const MAX_WARNINGS_PER_VU = 5;
let warnings = 0;

function warn(message) {
  if (warnings++ < MAX_WARNINGS_PER_VU) console.warn(`VU ${__VU}: ${message}`);
}

// Makes every counter exist from the start, so a `count==0` threshold is judged, not skipped.
export function touchCounters() {
  for (const c of [connects, connectFailures, connectRetries, unexpectedDisconnects, pongs]) c.add(0);
}

class Socket {
  constructor(url, token, handlers) {
    this.token = token;
    this.handlers = handlers || {};
    this.listeners = {};
    this.acks = {};
    this.nextAck = 0;
    this.connected = false;
    this.closing = false; // we asked for the close
    this.done = false; // the socket ended (and was counted) one way or another
    this.sid = null;
    // How far the connect got, for the failure message.
    this.stage = 'websocket handshake';
    this.pingInterval = null;
    this.started = Date.now();
    this.ws = new WebSocket(url);
    this.ws.onopen = () => {
      this.stage = 'engine.io open packet';
    };
    this.ws.onmessage = (e) => this.receive(e.data);
    this.ws.onerror = (e) => this.end(`websocket error: ${e && e.error}`);
    this.ws.onclose = () => this.end('transport closed');
    // Never clearTimeout(): in k6 1.1.0 clearing the earliest timer makes the next one fire at
    // its deadline (grafana/k6#5199, fixed in later k6). The connect deadline is watched with
    // short timers that stop once connected, so a VU is not kept alive by a pending one.
    const deadline = this.started + CONNECT_TIMEOUT_MS;
    const watch = () => {
      if (this.connected || this.done) return;
      if (Date.now() >= deadline) {
        this.end(`no Socket.IO connect after ${CONNECT_TIMEOUT_MS} ms (waiting for the ${this.stage})`);
        this.ws.close();
        return;
      }
      setTimeout(watch, Math.min(500, deadline - Date.now()));
    };
    setTimeout(watch, Math.min(500, CONNECT_TIMEOUT_MS));
  }

  on(event, fn) {
    (this.listeners[event] = this.listeners[event] || []).push(fn);
    return this;
  }

  // emit(name, ...args[, ackFn])
  emit(event, ...args) {
    let id = '';
    if (args.length && typeof args[args.length - 1] === 'function') {
      id = String(this.nextAck++);
      this.acks[id] = args.pop();
    }
    this.send(`42${id}${JSON.stringify([event, ...args])}`);
  }

  close() {
    if (this.done) return;
    // Closing a socket that never connected still counts it as a connect failure.
    if (!this.connected) this.end(`still not connected when closed (waiting for the ${this.stage})`);
    this.closing = true;
    if (this.connected) this.send('41');
    this.ws.close();
  }

  send(text) {
    try {
      this.ws.send(text);
    } catch (err) {
      this.end(`send failed: ${err}`);
    }
  }

  receive(data) {
    switch (data[0]) {
      case '0': {
        const open = JSON.parse(data.slice(1));
        this.pingInterval = open.pingInterval;
        this.stage = `namespace connect reply (engine.io sid ${open.sid})`;
        this.send(this.token ? `40${JSON.stringify({ token: this.token })}` : '40');
        return;
      }
      case '2':
        this.send('3');
        pongs.add(1);
        return;
      case '1':
        this.end('engine.io close from the server');
        return;
      case '4':
        this.packet(data);
        return;
      default: // '6' noop, anything else is ignored
    }
  }

  packet(data) {
    const type = data[1];
    if (type === '2' || type === '3') {
      let i = 2;
      while (i < data.length && data[i] >= '0' && data[i] <= '9') i++;
      const id = data.slice(2, i);
      const body = JSON.parse(data.slice(i));
      if (type === '2') this.dispatch(body[0], body.slice(1));
      else if (this.acks[id]) {
        const fn = this.acks[id];
        delete this.acks[id];
        fn(...body);
      }
    } else if (type === '0') {
      const body = data.length > 2 ? JSON.parse(data.slice(2)) : {};
      this.sid = body.sid;
      this.connected = true;
      connects.add(1);
      connectTime.add(Date.now() - this.started);
      if (this.handlers.connect) this.handlers.connect(this);
    } else if (type === '4') {
      const body = data.length > 2 ? JSON.parse(data.slice(2)) : {};
      const message = body.message || 'connect_error';
      if (this.handlers.connect_error) this.handlers.connect_error(message);
      this.end(`connect_error: ${message}`);
      this.closing = true;
      this.ws.close();
    } else if (type === '1') {
      this.end('namespace disconnect from the server');
      this.ws.close();
    }
  }

  dispatch(event, args) {
    const fns = this.listeners[event];
    if (fns) for (const fn of fns) fn(...args);
    if (this.handlers.any) this.handlers.any(event, args);
  }

  // Counts the end of the socket exactly once: any end before the connect is a connect failure
  // (close() and connect_error call this before marking the close as ours), any end after it
  // is an unexpected disconnect unless we closed it ourselves.
  end(reason) {
    if (this.done) return;
    this.done = true;
    if (!this.connected && !this.closing && this.handlers.retry && this.handlers.retry(reason)) {
      connectRetries.add(1);
      warn(`connect failed, trying again: ${reason}`);
    } else if (!this.connected) {
      connectFailures.add(1);
      warn(`connect failed: ${reason}`);
    } else if (!this.closing) {
      unexpectedDisconnects.add(1);
      warn(`unexpected disconnect of ${this.sid}: ${reason}`);
    }
    const wasConnected = this.connected;
    this.connected = false;
    if (this.handlers.disconnect) this.handlers.disconnect(reason, wasConnected);
  }
}

export function connect(url, token, handlers) {
  return new Socket(url, token, handlers);
}
