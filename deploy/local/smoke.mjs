// Checks a running cluster end to end through nginx: health, /metrics kept inside, websocket
// connections spread over the replicas, and polling sessions that stay on their replica.
//
//   deploy/local/cluster.sh up
//   set -a; . .cluster/env; set +a
//   node deploy/local/smoke.mjs
//
// Reads CYBERHUB_URL and REPLICA_URLS (from $CLUSTER_DIR/env). Uses the socket.io-client of the
// acceptance tests (tests/js: `npm ci` there once). Exits 1 if any check fails.
import { createRequire } from "node:module";

const require = createRequire(new URL("../../tests/js/package.json", import.meta.url));
const { io } = require("socket.io-client");

const entry = process.env.CYBERHUB_URL ?? die("CYBERHUB_URL is not set (source $CLUSTER_DIR/env)");
const replicas = (process.env.REPLICA_URLS ?? die("REPLICA_URLS is not set")).split(/\s+/).filter(Boolean);
const WS_CLIENTS = Number(process.env.SMOKE_WS_CLIENTS ?? 30);
const POLLING_CLIENTS = Number(process.env.SMOKE_POLLING_CLIENTS ?? 5);
const HOLD_MS = Number(process.env.SMOKE_HOLD_MS ?? 10_000);

let failures = 0;

function die(message) {
  console.error(message);
  process.exit(2);
}

function check(ok, message) {
  console.log(`${ok ? "ok  " : "FAIL"} ${message}`);
  if (!ok) failures += 1;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function clientsPerReplica(baseline) {
  const now = await Promise.all(
    replicas.map(async (url) => {
      const health = await (await fetch(`${url}/health`)).json();
      return { replica: health.replica, clients: health.clients };
    }),
  );
  return baseline ? now.map((r, i) => ({ replica: r.replica, clients: r.clients - baseline[i].clients })) : now;
}

const show = (placement) => placement.map((r) => `${r.replica}=${r.clients}`).join(" ");

function connect(options) {
  return new Promise((resolve, reject) => {
    const socket = io(entry, { reconnection: false, timeout: 5000, forceNew: true, ...options });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
  });
}

async function checkHttp() {
  const health = await fetch(`${entry}/health`);
  const body = await health.json();
  check(health.status === 200 && body.status === "ok", `GET /health through nginx: ${health.status} ${JSON.stringify(body)}`);

  const metrics = await fetch(`${entry}/metrics`);
  check(metrics.status === 404, `GET /metrics through nginx is ${metrics.status} (want 404)`);
  for (const url of replicas) {
    const direct = await fetch(`${url}/metrics`);
    const text = await direct.text();
    check(direct.status === 200 && text.includes("cyberhub_connected_clients"), `GET ${url}/metrics directly: ${direct.status}`);
  }
}

// Websocket-first connections carry no session, so nginx must spread them (least_conn) even
// though every client here has the same address.
async function checkWebsocketSpread() {
  const before = await clientsPerReplica();
  const sockets = await Promise.all(Array.from({ length: WS_CLIENTS }, () => connect({ transports: ["websocket"] })));
  await sleep(300);
  const added = await clientsPerReplica(before);
  const fair = WS_CLIENTS / replicas.length;
  console.log(`     ${WS_CLIENTS} websocket clients per replica: ${show(added)}`);
  check(
    added.reduce((sum, r) => sum + r.clients, 0) === WS_CLIENTS && added.every((r) => Math.abs(r.clients - fair) <= Math.max(2, fair * 0.2)),
    `websocket clients spread evenly (about ${fair.toFixed(1)} each)`,
  );
  sockets.forEach((socket) => socket.close());
  await sleep(300);
}

// Keeps each socket busy for HOLD_MS: every ack is a polling POST and GET (or websocket frames)
// carrying the sid, so a request routed to the wrong replica shows up as an error at once.
async function holdSessions(label, options) {
  const problems = [];
  let acks = 0;
  const sockets = [];
  const before = await clientsPerReplica();
  for (let i = 0; i < POLLING_CLIENTS; i += 1) {
    const perClient = typeof options === "function" ? options(i) : options;
    try {
      sockets.push(await connect(perClient));
    } catch (error) {
      problems.push(`connect_error: ${error.message}`);
    }
  }
  for (const socket of sockets) {
    socket.on("disconnect", (reason) => problems.push(`disconnect: ${reason}`));
    socket.on("connect_error", (error) => problems.push(`connect_error: ${error.message}`));
    socket.io.engine.on("error", (error) => problems.push(`engine error: ${error.message ?? error}`));
  }
  const deadline = Date.now() + HOLD_MS;
  while (Date.now() < deadline) {
    const answers = await Promise.allSettled(
      sockets.map((socket) => socket.timeout(3000).emitWithAck("user:identify", { userId: "00000000-0000-0000-0000-000000000000" })),
    );
    for (const answer of answers) {
      if (answer.status === "fulfilled") acks += 1;
      else problems.push(`no ack: ${answer.reason?.message ?? answer.reason}`);
    }
    await sleep(250);
  }
  const transports = [...new Set(sockets.map((socket) => socket.io.engine.transport.name))].join(",");
  const placement = await clientsPerReplica(before);
  sockets.forEach((socket) => socket.removeAllListeners("disconnect").close());
  await sleep(300);
  console.log(`     ${label}: ${acks} acks over ${HOLD_MS / 1000}s, transport now ${transports}, clients ${show(placement)}`);
  check(problems.length === 0 && sockets.length === POLLING_CLIENTS, `${label}: no errors${problems.length ? ` (${[...new Set(problems)].join("; ")})` : ""}`);
  return placement;
}

async function checkStickiness() {
  // No cookie jar: the remote address hash keeps them on one replica.
  await holdSessions("polling only, no cookies", { transports: ["polling"], upgrade: false });
  // Cookie jar on: the replica's cyberhub_replica cookie (when it sets one) takes over.
  await holdSessions("polling only, with cookies", { transports: ["polling"], upgrade: false, withCredentials: true });
  await holdSessions("default transports (polling, then upgrade)", { withCredentials: true });
  // A cookie naming each replica in turn: the per-replica upstream groups must honour it.
  const placement = await holdSessions("default transports, cookie per replica", (i) => ({
    extraHeaders: { cookie: `cyberhub_replica=${replicaIdAt(i)}` },
  }));
  const want = replicas.map((_, r) => Array.from({ length: POLLING_CLIENTS }, (_, i) => i % replicas.length).filter((x) => x === r).length);
  check(
    placement.every((r, i) => r.clients === want[i] && r.replica === replicaIdAt(i)),
    `cookie cyberhub_replica=<id> routes to that replica (want ${want.join("/")})`,
  );
}

// Each replica's REPLICA_ID, in REPLICA_URLS order: the values its cookie carries.
const replicaIds = (await clientsPerReplica()).map((r) => r.replica);
const replicaIdAt = (i) => replicaIds[i % replicaIds.length];

await checkHttp();
await checkWebsocketSpread();
await checkStickiness();
console.log(failures === 0 ? "all checks passed" : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
