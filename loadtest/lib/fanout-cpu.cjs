// Replica CPU per `cases:updated` delivery: opens N authenticated websockets to one replica,
// measures the replica's idle CPU for a while, then edits a case price EDITS times (GAP_MS apart)
// and reads the replica's CPU (utime+stime from /proc/<pid>/stat) again once every socket got
// every event. CPU per delivery = (CPU during the edits − idle CPU for as long) / deliveries.
//   node fanout-cpu.cjs URL N SECRET PID [EDITS=40] [GAP_MS=250]
// Also prints the client-side delivery latency (edit sent → event at the socket).
const fs = require('fs');
const { token, openWebsocket } = require('./raw-socketio.cjs');
const [url, n, secret, pid] = [process.argv[2], +process.argv[3], process.argv[4], process.argv[5]];
const edits = +(process.argv[6] || 40), gap = +(process.argv[7] || 250);
const http = url.replace(/^ws/, 'http');
const ticksPerSec = 100; // CLK_TCK on Linux
// [utime, stime] of the replica (fields 14 and 15 of /proc/<pid>/stat), in ticks.
function cpuTicks() {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return [+f[11], +f[12]];
}
const ticksSince = (c0) => cpuTicks().map((t, i) => t - c0[i]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let connected = 0, arrivals = 0, lat = [], t0 = 0;
async function open() {
  const onEvent = (frame) => {
    if (frame.startsWith('42["cases:updated"')) { arrivals++; lat.push(performance.now() - t0); }
  };
  if (await openWebsocket(url, secret, { onEvent })) connected++;
}
(async () => {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token(secret, undefined, 'admin')}` };
  const created = await fetch(`${http}/api/admin/cases`, {
    method: 'POST', headers,
    body: JSON.stringify({ name: 'fanout-cpu', image: '', price: 1,
      items: [{ name: 'coin', image: '', rarity: 'common', kind: 'money', value: 1, weight: 1 }] }),
  });
  if (created.status !== 201) throw new Error(`create case: ${created.status} ${await created.text()}`);
  const caseId = (await created.json()).case.id;
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => open()));
  if (connected !== n) throw new Error(`only ${connected}/${n} connected`);
  await sleep(3000);
  const window = edits * gap + 2000;
  let c0 = cpuTicks();
  await sleep(window);
  const idle = ticksSince(c0);
  arrivals = 0; lat = [];
  c0 = cpuTicks();
  const start = performance.now();
  for (let k = 0; k < edits; k++) {
    t0 = performance.now();
    const res = await fetch(`${http}/api/admin/cases/${caseId}/price`, {
      method: 'PUT', headers, body: JSON.stringify({ price: k % 2 ? 1 : 1.01 }) });
    if (res.status !== 200) throw new Error(`price edit: ${res.status}`);
    await sleep(Math.max(0, t0 + gap - performance.now()));
  }
  while (arrivals < n * edits && performance.now() - start < window) await sleep(50);
  await sleep(Math.max(0, start + window - performance.now()));
  const busy = ticksSince(c0);
  const deliveries = n * edits;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
  const us = (i) => (((busy[i] - idle[i]) / ticksPerSec) * 1e6 / deliveries).toFixed(2);
  const total = ((busy[0] + busy[1] - idle[0] - idle[1]) / ticksPerSec) * 1e6 / deliveries;
  console.log(`sockets=${n} edits=${edits} deliveries=${arrivals}/${deliveries} window=${window}ms ` +
    `cpu_busy=${busy[0] + busy[1]}ticks cpu_idle=${idle[0] + idle[1]}ticks ` +
    `cpu_per_delivery=${total.toFixed(2)}us user=${us(0)}us system=${us(1)}us ` +
    `latency_p50=${q(0.5)}ms latency_p99=${q(0.99)}ms`);
  process.exit(arrivals === deliveries ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(2); });
