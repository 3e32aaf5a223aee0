// Holding sockets, and the realtime measurements made while they are held.
//
// Each VU of the scenario holds SOCKETS_PER_VU authenticated sockets (one new player each). Socket
// number g of SOCKETS opens at start + g/SOCKETS × RAMP, everything is held until start + RAMP +
// HOLD, then closed by us (any other close is an unexpected disconnect).
//
// With EVENT_RATE > 0 the VUs also credit their own players through the admin API (via nginx, so
// with N replicas about (N-1)/N of the requests land on a replica other than the socket's) and time
// request start → the balance:updated carrying the returned balanceVersion at that player's socket.
// With CASE_EDIT_EVERY > 0 one VU edits a case price on a fixed schedule that every VU knows, and
// each socket times schedule slot → cases:updated.

import http from 'k6/http';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { BASE_URL, WS_URL, duration, int, num, seconds } from './config.js';
import { token, uuid } from './auth.js';
import { createCase, headers, major } from './api.js';
import { connect, touchCounters } from './socketio.js';

export const eventLatency = new Trend('event_latency', true);
export const eventsMatched = new Counter('events_matched');
export const eventsMissing = new Counter('events_missing');
export const eventRequestsFailed = new Counter('event_requests_failed');
export const casesLatency = new Trend('cases_fanout_latency', true);
export const casesReceived = new Counter('cases_received');
export const casesMissing = new Counter('cases_missing');
export const caseEditFailures = new Counter('case_edit_failures');
export const caseEditSkew = new Trend('case_edit_send_skew', true);
// The first socket of each VU also checks an ack round trip: user:identify for its own id.
export const identifyFailures = new Counter('identify_failures');

export function holdConfig(defaults = {}) {
  const d = { SOCKETS: 40, SOCKETS_PER_VU: 20, RAMP: '5s', HOLD: '10s', EVENT_RATE: 0, CASE_EDIT_EVERY: '0s', ...defaults };
  const c = {
    sockets: int('SOCKETS', d.SOCKETS),
    perVu: Math.max(1, int('SOCKETS_PER_VU', d.SOCKETS_PER_VU)),
    rampMs: duration('RAMP', d.RAMP),
    holdMs: duration('HOLD', d.HOLD),
    eventRate: num('EVENT_RATE', d.EVENT_RATE),
    caseEditMs: duration('CASE_EDIT_EVERY', d.CASE_EDIT_EVERY),
    eventTimeoutMs: duration('EVENT_TIMEOUT', '5s'),
    connectRetries: int('CONNECT_RETRIES', 0),
    leadMs: 2000,
  };
  c.vus = Math.max(1, Math.ceil(c.sockets / c.perVu));
  return c;
}

export function holdScenario(c, exec = 'sockets') {
  return {
    executor: 'per-vu-iterations',
    exec,
    vus: c.vus,
    iterations: 1,
    maxDuration: seconds(c.leadMs + c.rampMs + c.holdMs + c.eventTimeoutMs + 60000),
    gracefulStop: '30s',
  };
}

export function holdThresholds(c, p99 = {}) {
  const t = {
    sio_connect_failures: ['count==0'],
    sio_unexpected_disconnects: ['count==0'],
    sio_connects: [`count>=${c.sockets}`],
    identify_failures: ['count==0'],
  };
  if (c.eventRate > 0) {
    t.events_missing = ['count==0'];
    t.event_requests_failed = ['count==0'];
    t.events_matched = ['count>0'];
    t.event_latency = [`p(99)<${p99.event || 1000}`];
  }
  if (c.caseEditMs > 0) {
    t.cases_missing = ['count==0'];
    t.case_edit_failures = ['count==0'];
    t.cases_received = ['count>0'];
    t.cases_fanout_latency = [`p(99)<${p99.cases || 1000}`];
  }
  return t;
}

// Part of setup(): the shared clock and, for price edits, the case to edit.
export function holdSetup(c, admin, runId) {
  const editCaseId = c.caseEditMs > 0 ? createCase(admin, `loadtest-edit-${runId}`, 100).id : null;
  const start = Date.now() + c.leadMs;
  const loadEnd = start + c.rampMs + c.holdMs;
  const edits = { first: start + c.rampMs + 1000, every: c.caseEditMs, count: 0, caseId: editCaseId };
  if (c.caseEditMs > 0) {
    // The last edit leaves a full event timeout before the sockets close.
    edits.count = Math.max(0, Math.floor((loadEnd - c.eventTimeoutMs - edits.first) / c.caseEditMs) + 1);
  }
  return { start, loadEnd, edits, admin };
}

export function holdSockets(c, data) {
  touchCounters();
  identifyFailures.add(0);
  if (c.eventRate > 0) for (const m of [eventsMatched, eventsMissing, eventRequestsFailed]) m.add(0);
  if (c.caseEditMs > 0) for (const m of [casesReceived, casesMissing, caseEditFailures]) m.add(0);

  const vuIndex = exec.scenario.iterationInTest;
  const first = vuIndex * c.perVu;
  const mine = Math.max(0, Math.min(c.perVu, c.sockets - first));
  const { start, loadEnd, edits } = data;
  const players = [];

  for (let j = 0; j < mine; j++) {
    const g = first + j;
    const at = start + (c.sockets > 1 ? (g / c.sockets) * c.rampMs : 0);
    setTimeout(() => players.push(openPlayer(j === 0)), Math.max(0, at - Date.now()));
  }

  function openPlayer(identify) {
    const id = uuid();
    const p = { id, seen: {}, pending: {}, connectedAt: 0, lostAt: 0, slots: {}, retries: c.connectRetries };
    openSocket(p, identify);
    return p;
  }

  // A failed connect is tried again (after a second) up to CONNECT_RETRIES times, as a real
  // client's reconnection would; each retry is counted in sio_connect_retries.
  function openSocket(p, identify) {
    const id = p.id;
    p.socket = connect(WS_URL, token(id), {
      retry() {
        if (p.retries <= 0 || Date.now() >= loadEnd) return false;
        p.retries--;
        setTimeout(() => openSocket(p, identify), 1000);
        return true;
      },
      connect(socket) {
        p.connectedAt = Date.now();
        if (identify) {
          p.identifyPending = true;
          socket.emit('user:identify', { userId: id }, (reply) => {
            p.identifyPending = false;
            if (!reply || reply.ok !== true) identifyFailures.add(1);
          });
        }
      },
      disconnect(_reason, wasConnected) {
        if (wasConnected) p.lostAt = Date.now();
      },
    });
    p.socket.on(`balance:updated:${id}`, (payload) => onBalance(p, payload));
    p.socket.on('cases:updated', () => onCasesUpdated(p));
  }

  function onBalance(p, payload) {
    const now = Date.now();
    const v = payload && payload.version;
    const req = p.pending[v];
    if (req) {
      delete p.pending[v];
      eventLatency.add(now - req.startedAt);
      eventsMatched.add(1);
    } else {
      p.seen[v] = now;
    }
  }

  function onCasesUpdated(p) {
    const now = Date.now();
    if (edits.count === 0) return;
    const k = Math.floor((now - edits.first) / edits.every);
    if (k < 0 || k >= edits.count || p.slots[k]) return;
    p.slots[k] = true;
    casesLatency.add(now - (edits.first + k * edits.every));
    casesReceived.add(1);
  }

  // Balance events: this VU's share of EVENT_RATE, to its own connected players.
  if (c.eventRate > 0 && mine > 0) {
    const rate = (c.eventRate * mine) / c.sockets;
    const every = 1000 / rate;
    const stopAt = loadEnd - c.eventTimeoutMs;
    // Spread the VUs' ticks over one interval so they do not fire together.
    const offset = (vuIndex / c.vus) * every;
    setTimeout(() => {
      let next = Date.now();
      const tick = () => {
        if (Date.now() >= stopAt) return;
        credit();
        next += every;
        setTimeout(tick, Math.max(0, next - Date.now()));
      };
      tick();
    }, Math.max(0, start + c.rampMs + offset - Date.now()));
  }

  function credit() {
    const live = players.filter((p) => p.socket.connected);
    if (live.length === 0) return;
    const p = live[Math.floor(Math.random() * live.length)];
    const body = JSON.stringify({ userId: p.id, amount: major(1 + Math.floor(Math.random() * 999)), reason: 'loadtest event' });
    const startedAt = Date.now();
    http
      .asyncRequest('POST', `${BASE_URL}/api/admin/balance/add`, body, { headers: headers(data.admin), tags: { name: 'admin_add' } })
      .then((res) => {
        if (res.status !== 200) {
          eventRequestsFailed.add(1);
          return;
        }
        const v = res.json().balanceVersion;
        if (p.seen[v] !== undefined) {
          eventLatency.add(p.seen[v] - startedAt);
          eventsMatched.add(1);
          delete p.seen[v];
          return;
        }
        const req = { startedAt };
        // Not cleared when the event arrives (see lib/socketio.js on clearTimeout in k6 1.1.0).
        setTimeout(() => {
          if (p.pending[v] === req) {
            delete p.pending[v];
            eventsMissing.add(1);
          }
        }, c.eventTimeoutMs);
        p.pending[v] = req;
      }, () => eventRequestsFailed.add(1));
  }

  // Case price edits: one VU, on the shared schedule.
  if (edits.count > 0 && vuIndex === 0) {
    for (let k = 0; k < edits.count; k++) {
      const at = edits.first + k * edits.every;
      setTimeout(() => {
        caseEditSkew.add(Date.now() - at);
        const price = major(k % 2 === 0 ? 101 : 100);
        http
          .asyncRequest('PUT', `${BASE_URL}/api/admin/cases/${edits.caseId}/price`, JSON.stringify({ price }), {
            headers: headers(data.admin),
            tags: { name: 'admin_price' },
          })
          .then((res) => { if (res.status !== 200) caseEditFailures.add(1); }, () => caseEditFailures.add(1));
      }, Math.max(0, at - Date.now()));
    }
  }

  setTimeout(() => {
    // A socket connected before a slot and still up a full timeout after it must have seen it.
    for (const p of players) {
      for (let k = 0; k < edits.count; k++) {
        const at = edits.first + k * edits.every;
        const alive = p.connectedAt > 0 && p.connectedAt <= at && (p.lostAt === 0 || p.lostAt >= at + c.eventTimeoutMs);
        if (alive && !p.slots[k]) casesMissing.add(1);
      }
      // An ack that never came is a failure too.
      if (p.identifyPending) identifyFailures.add(1);
      p.socket.close();
    }
  }, Math.max(0, loadEnd - Date.now()));
}
