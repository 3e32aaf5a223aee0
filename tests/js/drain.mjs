// A crowd of official socket.io-client sockets through nginx while a replica drains: records when
// each socket got session:ended, when it was connected again, and every failed connect. Run by
// tests/cluster/sessions.rs, which SIGTERMs a replica once this prints READY; prints one JSON line,
// then holds its sockets until its stdin closes.
// Env: CYBERHUB_URL (nginx), SOCKETS (default 300), QUIET_MS (how long nothing must happen
// before it reports, default 3000). Not named *.test.mjs: only the cluster test runs it.
import { io } from "socket.io-client";

const url = process.env.CYBERHUB_URL;
const count = Number(process.env.SOCKETS ?? "300");
const quietMs = Number(process.env.QUIET_MS ?? "3000");
const sockets = [];
const ended = [];
const reconnected = [];
const reasons = {};
let connectErrors = 0;
let lastActivity = Date.now();

function open() {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnectionDelay: 200 });
  socket.on("session:ended", ({ reason }) => {
    socket.endedAt = Date.now();
    ended.push(socket.endedAt);
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    lastActivity = Date.now();
  });
  // A server-side disconnect is final for socket.io-client: a front end reconnects itself.
  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("connect", () => {
    if (socket.endedAt && !socket.back) {
      socket.back = Date.now();
      reconnected.push(socket.back);
      lastActivity = Date.now();
    }
  });
  socket.on("connect_error", () => {
    connectErrors += 1;
    lastActivity = Date.now();
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`initial connect failed: ${err.message}`)));
  });
}

for (let i = 0; i < count; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, count - i) }, open));
}
connectErrors = 0;
console.log(`READY ${count}`);

const started = Date.now();
await new Promise((resolve) => {
  const timer = setInterval(() => {
    const settled = ended.length > 0 && reconnected.length === ended.length && Date.now() - lastActivity > quietMs;
    if (settled || Date.now() - started > 90_000) {
      clearInterval(timer);
      resolve();
    }
  }, 100);
});

const perSecond = new Map();
for (const at of reconnected) {
  const second = Math.floor((at - reconnected[0]) / 1000);
  perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
}
const peak = (times, windowMs) => {
  let best = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= windowMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
};
ended.sort((a, b) => a - b);
reconnected.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    sockets: count,
    ended: ended.length,
    reasons,
    spreadMs: ended.length ? ended[ended.length - 1] - ended[0] : 0,
    reconnected: reconnected.length,
    peakReconnectsPerSecond: peak(reconnected, 1000),
    peakReconnectsPer100ms: peak(reconnected, 100),
    connectErrors,
    allConnected: sockets.every((s) => s.connected),
  }),
);
// Hold every socket until the test has counted them on the replicas (it closes our stdin).
process.stdin.resume();
await new Promise((resolve) => process.stdin.once("end", resolve));
for (const socket of sockets) socket.close();
process.exit(0);
