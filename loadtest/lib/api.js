// HTTP helpers for the CyberHub API: admin setup, players, payment callbacks.

import http from 'k6/http';
import { BASE_URL } from './config.js';
import { token, uuid, webhookSignature } from './auth.js';

export function headers(bearer) {
  const h = { 'content-type': 'application/json' };
  if (bearer) h.authorization = `Bearer ${bearer}`;
  return h;
}

function must(res, what, status = 200) {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${String(res.body).slice(0, 300)}`);
  }
  return res.json();
}

export function adminToken() {
  return token(uuid(), 'admin');
}

// Integer cents to the wire's major units (at most two decimals).
export function major(cents) {
  return Math.round(cents) / 100;
}

export function createCase(admin, name, priceCents = 100) {
  const body = {
    name,
    image: 'loadtest.png',
    price: major(priceCents),
    items: [
      { name: 'Half back', image: '', rarity: 'common', kind: 'money', value: major(priceCents / 2), weight: 60 },
      { name: 'Double', image: '', rarity: 'uncommon', kind: 'money', value: major(priceCents * 2), weight: 20 },
      { name: 'Loadtest skin', image: '', rarity: 'rare', kind: 'skin', value: major(priceCents * 5), weight: 20 },
    ],
  };
  const res = http.post(`${BASE_URL}/api/admin/cases`, JSON.stringify(body), {
    headers: headers(admin),
    tags: { name: 'admin_create_case' },
  });
  const json = must(res, 'POST /api/admin/cases', 201);
  return json.case || json;
}

// Creates players (GET /api/me makes a user known) and funds them, `batch` requests at a time.
export function createPlayers(admin, count, fundCents, batch = 32) {
  const players = [];
  for (let i = 0; i < count; i++) {
    const id = uuid();
    players.push({ id, token: token(id) });
  }
  for (let i = 0; i < count; i += batch) {
    const slice = players.slice(i, i + batch);
    const me = http.batch(slice.map((p) => ['GET', `${BASE_URL}/api/me`, null, { headers: headers(p.token), tags: { name: 'setup_me' } }]));
    me.forEach((r) => must(r, 'GET /api/me'));
    if (fundCents > 0) {
      const add = http.batch(
        slice.map((p) => [
          'POST',
          `${BASE_URL}/api/admin/balance/add`,
          JSON.stringify({ userId: p.id, amount: major(fundCents), reason: 'loadtest funding' }),
          { headers: headers(admin), tags: { name: 'setup_fund' } },
        ]),
      );
      add.forEach((r) => must(r, 'POST /api/admin/balance/add'));
    }
  }
  return players;
}

// The exact body that is signed is the body that is sent.
export function paymentRequest(paymentId, userId, cents, status = 'success') {
  const body = JSON.stringify({ paymentId, userId, amount: major(cents), status });
  return {
    method: 'POST',
    url: `${BASE_URL}/api/payment/callback`,
    body,
    params: { headers: { 'content-type': 'application/json', 'x-signature': webhookSignature(body) }, tags: { name: 'payment' } },
  };
}
