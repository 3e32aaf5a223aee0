// Player and payment-provider traffic: case opens, inventory reads, claims, signed payment
// callbacks with a share of duplicates (resent later, or raced in pairs).

import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL, duration, int, num } from './config.js';
import { uuid } from './auth.js';
import { createCase, createPlayers, headers, paymentRequest } from './api.js';

export const opensOk = new Counter('opens_ok');
export const opensInsufficient = new Counter('opens_insufficient');
export const claimsOk = new Counter('claims_ok');
export const inventoryReads = new Counter('inventory_reads');
export const paymentsSent = new Counter('payments_sent');
export const paymentsCredited = new Counter('payments_credited');
export const paymentsCreditedCents = new Counter('payments_credited_cents');
export const paymentsDuplicates = new Counter('payments_duplicates');
export const paymentMismatches = new Counter('payment_mismatches');

export function apiConfig(defaults = {}) {
  const d = { API_VUS: 4, API_DURATION: '10s', API_USERS: 32, PAY_RATE: 5, DUP_SHARE: 0.2, ...defaults };
  return {
    vus: int('API_VUS', d.API_VUS),
    durationMs: duration('API_DURATION', d.API_DURATION),
    users: Math.max(1, int('API_USERS', d.API_USERS)),
    payRate: num('PAY_RATE', d.PAY_RATE),
    dupShare: num('DUP_SHARE', d.DUP_SHARE),
    claimShare: num('CLAIM_SHARE', 0.5),
    inventoryShare: num('INVENTORY_SHARE', 0.3),
    fundCents: int('API_FUND_CENTS', 1000000),
    p99: int('API_P99_MS', 1000),
    maxErrorRate: num('MAX_ERROR_RATE', 0.001),
  };
}

export function apiScenarios(c, start = '0s') {
  const s = {};
  const d = `${Math.ceil(c.durationMs / 1000)}s`;
  if (c.vus > 0) s.players = { executor: 'constant-vus', exec: 'players', vus: c.vus, duration: d, startTime: start };
  if (c.payRate > 0) {
    s.payments = {
      executor: 'constant-arrival-rate',
      exec: 'payments',
      rate: Math.round(c.payRate * 100),
      timeUnit: '100s',
      duration: d,
      preAllocatedVUs: Math.max(2, Math.ceil(c.payRate / 10)),
      maxVUs: Math.max(8, Math.ceil(c.payRate)),
      startTime: start,
    };
  }
  return s;
}

export function apiThresholds(c) {
  const t = {};
  const err = [`rate<${c.maxErrorRate}`];
  const p99 = [`p(99)<${c.p99}`];
  if (c.vus > 0) {
    Object.assign(t, {
      'http_req_duration{name:open}': p99,
      'http_req_duration{name:inventory}': p99,
      'http_req_duration{name:claim}': p99,
      'http_req_failed{name:open}': err,
      'http_req_failed{name:inventory}': err,
      'http_req_failed{name:claim}': err,
      opens_ok: ['count>0'],
    });
  }
  if (c.payRate > 0) {
    Object.assign(t, {
      'http_req_duration{name:payment}': p99,
      'http_req_failed{name:payment}': err,
      payment_mismatches: ['count==0'],
      payments_credited: ['count>0'],
    });
    if (c.dupShare > 0) t.payments_duplicates = ['count>0'];
  }
  return t;
}

export function apiSetup(c, admin, runId) {
  const kase = createCase(admin, `loadtest-open-${runId}`, 100);
  const players = c.vus > 0 || c.payRate > 0 ? createPlayers(admin, c.users, c.fundCents) : [];
  return { caseId: kase.id, players };
}

function touch() {
  for (const m of [opensOk, opensInsufficient, claimsOk, inventoryReads, paymentsSent, paymentsCredited, paymentsCreditedCents, paymentsDuplicates, paymentMismatches]) m.add(0);
}
let touched = false;

// One player action: open a case, sometimes read the inventory, sometimes claim a money win.
export function players(c, data) {
  if (!touched) touched = (touch(), true);
  const p = data.players[Math.floor(Math.random() * data.players.length)];
  const h = { headers: headers(p.token) };
  const res = http.post(`${BASE_URL}/api/cases/open`, JSON.stringify({ caseId: data.caseId }), {
    ...h,
    tags: { name: 'open' },
    responseCallback: http.expectedStatuses(200),
  });
  if (res.status === 422) opensInsufficient.add(1);
  if (!check(res, { 'open 200': (r) => r.status === 200 })) return;
  opensOk.add(1);
  const won = res.json();
  if (Math.random() < c.inventoryShare) {
    const inv = http.get(`${BASE_URL}/api/inventory`, { ...h, tags: { name: 'inventory' } });
    if (check(inv, { 'inventory 200': (r) => r.status === 200 })) inventoryReads.add(1);
  }
  if (won.item && won.item.kind === 'money' && Math.random() < c.claimShare) {
    const claim = http.post(`${BASE_URL}/api/inventory/claim`, JSON.stringify({ inventoryItemId: won.inventoryItemId }), {
      ...h,
      tags: { name: 'claim' },
    });
    if (check(claim, { 'claim 200': (r) => r.status === 200 })) claimsOk.add(1);
  }
}

const credited = []; // this VU's credited payments, to resend as duplicates
let serial = 0;

function freshPayment(data, runId) {
  const users = data.players;
  // One in ten pays for a user never seen: the payment creates them.
  const userId = users.length && Math.random() >= 0.1 ? users[Math.floor(Math.random() * users.length)].id : uuid();
  const cents = 100 + Math.floor(Math.random() * 9900);
  return { paymentId: `lt-${runId}-${__VU}-${serial++}-${uuid().slice(0, 8)}`, userId, cents };
}

function send(pay) {
  const r = paymentRequest(pay.paymentId, pay.userId, pay.cents);
  return [r.method, r.url, r.body, r.params];
}

function outcome(res) {
  paymentsSent.add(1);
  if (res.status !== 200) return 'error';
  const body = res.json();
  if (body.duplicate === true) return 'duplicate';
  if (body.duplicate === false && typeof body.balanceVersion === 'number') return 'credited';
  return 'other';
}

export function payments(c, data, runId) {
  if (!touched) touched = (touch(), true);
  if (Math.random() < c.dupShare) {
    if (credited.length > 0 && Math.random() < 0.5) {
      // A late resend of a payment that was credited.
      const pay = credited[Math.floor(Math.random() * credited.length)];
      const [, url, body, params] = send(pay);
      const o = outcome(http.post(url, body, params));
      if (o === 'duplicate') paymentsDuplicates.add(1);
      else paymentMismatches.add(1, { case: `resend_${o}` });
      return;
    }
    // Two identical notifications at once: exactly one credits.
    const pay = freshPayment(data, runId);
    const rs = http.batch([send(pay), send(pay)]).map(outcome);
    const n = (o) => rs.filter((x) => x === o).length;
    if (n('credited') === 1 && n('duplicate') === 1) {
      paymentsCredited.add(1);
      paymentsCreditedCents.add(pay.cents);
      paymentsDuplicates.add(1);
      credited.push(pay);
    } else {
      paymentMismatches.add(1, { case: `race_${rs.join('_')}` });
      // Whatever was credited is still money check_db.sh must find.
      const c2 = n('credited');
      if (c2 > 0) {
        paymentsCredited.add(c2);
        paymentsCreditedCents.add(pay.cents * c2);
      }
    }
    return;
  }
  const pay = freshPayment(data, runId);
  const [, url, body, params] = send(pay);
  const o = outcome(http.post(url, body, params));
  if (o === 'credited') {
    paymentsCredited.add(1);
    paymentsCreditedCents.add(pay.cents);
    credited.push(pay);
    if (credited.length > 200) credited.shift();
  } else {
    paymentMismatches.add(1, { case: `first_${o}` });
  }
}
