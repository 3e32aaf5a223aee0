// A second opinion on cases:updated fan-out latency, from a lighter client than k6.
//
//   set -a; . .cluster/env; set +a
//   node --experimental-websocket loadtest/tools/fanout-check.mjs <socket base URL> <edit base URL> <sockets> <edits>
//   e.g. ... fanout-check.mjs http://127.0.0.1:8080 http://127.0.0.1:8080 2000 5
//
// Opens <sockets> authenticated raw Engine.IO websockets (answering pings) from one Node process,
// then edits a case price <edits> times, 1.5 s apart, and prints, per edit and overall, the time
// from sending the edit to each socket's cases:updated (performance.now(), sub-millisecond).
// Node 20 needs --experimental-websocket; Node 22+ has WebSocket built in. Loopback only.
import crypto from 'node:crypto';

const [base, editBase, nStr, kStr] = process.argv.slice(2);
const N = Number(nStr || 100);
const K = Number(kStr || 5);
for (const u of [base, editBase]) {
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|localhost)(:\d+)?$/.test(u || '')) throw new Error(`${u}: loopback http://host:port only`);
}
const secret = process.env.JWT_SECRET;
if (!secret) throw new Error('JWT_SECRET must be set (the cluster secret)');

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(sub, role = 'user') {
  const now = Math.floor(Date.now() / 1000);
  const signed = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, role, exp: now + 3600 })}`;
  return `${signed}.${crypto.createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

const headers = { 'content-type': 'application/json', authorization: `Bearer ${token(crypto.randomUUID(), 'admin')}` };
const created = await fetch(`${editBase}/api/admin/cases`, {
  method: 'POST',
  headers,
  body: JSON.stringify({
    name: 'fanout-check',
    image: '',
    price: 1,
    items: [{ name: 'coin', image: '', rarity: 'common', kind: 'money', value: 1, weight: 1 }],
  }),
});
if (created.status !== 201) throw new Error(`create case: ${created.status} ${await created.text()}`);
const caseId = (await created.json()).case.id;

let connected = 0;
let failed = 0;
let arrivals = [];
const url = `${base.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
const sockets = [];
for (let i = 0; i < N; i++) {
  const ws = new WebSocket(url);
  ws.onmessage = (e) => {
    const d = e.data;
    if (d[0] === '0') ws.send(`40${JSON.stringify({ token: token(crypto.randomUUID()) })}`);
    else if (d === '2') ws.send('3');
    else if (d.startsWith('40')) connected++;
    else if (d.startsWith('44')) failed++;
    else if (d.startsWith('42["cases:updated"')) arrivals.push(performance.now());
  };
  ws.onerror = () => failed++;
  sockets.push(ws);
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
}
while (connected + failed < N) await new Promise((r) => setTimeout(r, 100));
if (failed) throw new Error(`${failed} sockets failed to connect`);
await new Promise((r) => setTimeout(r, 1000));

const all = [];
for (let k = 0; k < K; k++) {
  arrivals = [];
  const t0 = performance.now();
  const res = await fetch(`${editBase}/api/admin/cases/${caseId}/price`, {
    method: 'PUT',
    headers,
    body: JSON.stringify({ price: k % 2 ? 1 : 1.01 }),
  });
  if (res.status !== 200) throw new Error(`price edit: ${res.status}`);
  await new Promise((r) => setTimeout(r, 1500));
  const lat = arrivals.map((a) => a - t0).sort((a, b) => a - b);
  all.push(...lat);
  console.log(`edit ${k}: ${lat.length}/${N} sockets, first ${lat[0]?.toFixed(1)} ms, p50 ${lat[lat.length >> 1]?.toFixed(1)} ms, last ${lat[lat.length - 1]?.toFixed(1)} ms`);
}
all.sort((a, b) => a - b);
const q = (p) => all[Math.min(all.length - 1, Math.floor(p * all.length))].toFixed(1);
console.log(`all ${all.length} deliveries (expected ${N * K}): p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${all[all.length - 1].toFixed(1)} ms`);
for (const ws of sockets) ws.close();
process.exit(all.length === N * K ? 0 : 1);
