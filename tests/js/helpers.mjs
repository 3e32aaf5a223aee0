// Shared helpers for the CyberHub Socket.IO acceptance suite.
//
// The suite is driven by a Rust integration test that has already started the
// server and passes its address and secrets through the environment.

import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { io } from "socket.io-client";

export { sleep };

/** Default timeout for every wait in the suite. */
export const TIMEOUT_MS = 5_000;

/** How long to listen before concluding that an event did NOT arrive. */
export const QUIET_MS = 300;

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: this suite must be run against a live CyberHub server ` +
        "(CYBERHUB_URL, JWT_SECRET and PAYMENT_WEBHOOK_SECRET are required)",
    );
  }
  return value;
}

export const BASE_URL = requireEnv("CYBERHUB_URL").replace(/\/+$/, "");
const JWT_SECRET = requireEnv("JWT_SECRET");
const PAYMENT_WEBHOOK_SECRET = requireEnv("PAYMENT_WEBHOOK_SECRET");

/** Transport settings the realtime tests are repeated over. */
export const TRANSPORTS = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"], upgrade: false },
};

// ---------------------------------------------------------------------------
// Tokens and signatures
// ---------------------------------------------------------------------------

const b64url = (value) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/**
 * An HS256 JWT signed with JWT_SECRET (or `secret`).
 * `expiresIn` is in seconds from now; a negative value gives an expired token.
 */
export function token({ sub = randomUUID(), role = "user", expiresIn = 3600, secret = JWT_SECRET } = {}) {
  const header = b64url({ alg: "HS256", typ: "JWT" });
  const claims = b64url({ sub, role, exp: Math.floor(Date.now() / 1000) + expiresIn });
  const signature = createHmac("sha256", secret).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${signature}`;
}

/** A fresh identity (not yet known to the server). */
export function newUser(role = "user") {
  const id = randomUUID();
  return { id, token: token({ sub: id, role }) };
}

/** An admin identity shared by the whole run. */
export const admin = newUser("admin");

/** Lowercase hex HMAC-SHA256 of the exact raw body, as the payment provider sends it. */
export function signWebhook(rawBody, secret = PAYMENT_WEBHOOK_SECRET) {
  return createHmac("sha256", secret).update(rawBody).digest("hex");
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/**
 * Calls the REST API and returns { status, body }.
 * `body` is JSON-encoded unless `rawBody` (a string sent byte-for-byte) is given.
 */
export async function api(method, path, { token: bearer, body, rawBody, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(TIMEOUT_MS) };
  if (bearer) init.headers.authorization = `Bearer ${bearer}`;
  if (rawBody !== undefined || body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = rawBody ?? JSON.stringify(body);
  }

  let res;
  try {
    res = await fetch(`${BASE_URL}${path}`, init);
  } catch (err) {
    const detail = err.cause ? ` (${err.cause.code ?? err.cause.message})` : "";
    throw new Error(`${method} ${BASE_URL}${path} failed: ${err.message}${detail}`, { cause: err });
  }
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/** Like api() but asserts the expected status and `success: true`; returns the body. */
export async function apiOk(method, path, options = {}, expectedStatus = 200) {
  const res = await api(method, path, options);
  const where = `${method} ${path} -> ${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, expectedStatus, `unexpected status: ${where}`);
  assert.equal(res.body?.success, true, `expected success:true: ${where}`);
  return res.body;
}

/** Asserts an error response of the shape { success:false, error, code }. */
export function assertApiError(res, status, code) {
  const where = `got ${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, `expected HTTP ${status}: ${where}`);
  assert.equal(res.body?.success, false, `expected success:false: ${where}`);
  assert.equal(typeof res.body?.error, "string", `expected an error message: ${where}`);
  assert.equal(typeof res.body?.code, "string", `expected an error code: ${where}`);
  if (code) assert.equal(res.body.code, code, `expected code ${code}: ${where}`);
}

export const adminAddBalance = (userId, amount, reason = "acceptance test") =>
  apiOk("POST", "/api/admin/balance/add", { token: admin.token, body: { userId, amount, reason } });

export const createCase = (spec) =>
  apiOk("POST", "/api/admin/cases", { token: admin.token, body: spec }, 201);

/** Posts a signed payment callback and returns { status, body }. */
export function sendPayment(payment, { signature } = {}) {
  const rawBody = JSON.stringify(payment);
  return api("POST", "/api/payment/callback", {
    rawBody,
    headers: { "x-signature": signature ?? signWebhook(rawBody) },
  });
}

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

const openSockets = new Set();

/**
 * Wraps a socket so that every incoming event is buffered from the very first
 * packet on: waitFor() can then never miss an event that arrived before it was
 * called (e.g. the balance snapshot sent right after connecting).
 */
function instrument(socket, label) {
  socket.label = label;
  socket.inbox = new Map(); // event name -> queued argument arrays
  socket.waiters = new Set(); // { event, resolve, reject, timer }
  socket.received = []; // every event name, in arrival order
  socket.problems = []; // disconnects and errors seen after connecting

  socket.onAny((event, ...args) => {
    socket.received.push(event);
    for (const waiter of socket.waiters) {
      if (waiter.event === event) {
        socket.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.resolve(args);
        return;
      }
    }
    if (!socket.inbox.has(event)) socket.inbox.set(event, []);
    socket.inbox.get(event).push(args);
  });

  const fail = (problem) => {
    socket.problems.push(problem);
    for (const waiter of socket.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`${label}: ${problem} while waiting for "${waiter.event}"`));
    }
    socket.waiters.clear();
  };
  socket.on("disconnect", (reason) => {
    if (!socket.closedByTest) fail(`disconnect (${reason})`);
  });
  socket.on("connect_error", (err) => {
    if (socket.wasConnected) fail(`connect_error (${err.message})`);
  });
  socket.io.on("error", (err) => {
    if (socket.wasConnected) fail(`manager error (${err?.message ?? err})`);
  });
  return socket;
}

function makeSocket(transport, authToken, label, url = BASE_URL) {
  const options = {
    ...TRANSPORTS[transport],
    forceNew: true,
    reconnection: false,
    timeout: TIMEOUT_MS,
  };
  if (authToken !== undefined) options.auth = { token: authToken };
  const socket = instrument(io(url, options), label);
  openSockets.add(socket);
  return socket;
}

/**
 * Connects over the given transport ("websocket" | "polling").
 * `authToken` undefined means an anonymous socket. Resolves once connected.
 */
export function connect(transport, authToken, label = authToken ? "user socket" : "anonymous socket", url = BASE_URL) {
  const socket = makeSocket(transport, authToken, label, url);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${label}: not connected over ${transport} within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.wasConnected = true;
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${label}: connect_error over ${transport}: ${err.message}`, { cause: err }));
    });
  });
}

/** Expects the connection to be refused; resolves with the connect_error. */
export function connectError(transport, authToken, label = "rejected socket") {
  const socket = makeSocket(transport, authToken, label);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${label}: neither connected nor refused within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      reject(new Error(`${label}: connected over ${transport} but should have been refused`));
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

/**
 * Resolves with the first argument of the next (or already buffered) `event`;
 * fails after `timeout` ms or if the socket drops meanwhile.
 */
export function waitFor(socket, event, timeout = TIMEOUT_MS) {
  const queued = socket.inbox.get(event);
  if (queued?.length) return Promise.resolve(queued.shift()[0]);
  if (socket.problems.length) {
    return Promise.reject(new Error(`${socket.label}: ${socket.problems.join(", ")} before "${event}"`));
  }
  return new Promise((resolve, reject) => {
    const waiter = { event, resolve: (args) => resolve(args[0]), reject };
    waiter.timer = setTimeout(() => {
      socket.waiters.delete(waiter);
      const seen = socket.received.length ? socket.received.join(", ") : "nothing";
      reject(new Error(`${socket.label}: no "${event}" within ${timeout} ms (received so far: ${seen})`));
    }, timeout);
    socket.waiters.add(waiter);
  });
}

/**
 * Listens for `ms` and asserts that no unconsumed `event` is there at the end.
 * `event` is an event name or a RegExp over event names.
 */
export async function noEvent(socket, event, ms = QUIET_MS) {
  await sleep(ms);
  const matches = (name) => (event instanceof RegExp ? event.test(name) : name === event);
  const unexpected = [...socket.inbox]
    .filter(([name, queue]) => matches(name) && queue.length)
    .map(([name, queue]) => `${name} ${JSON.stringify(queue.map((args) => args[0]))}`);
  assert.deepEqual(unexpected, [], `${socket.label} must not receive ${event}, but got: ${unexpected.join("; ")}`);
}

/** Waits for a `balance:updated:<userId>` event and checks its payload. */
export async function expectBalance(socket, userId, balance, version) {
  const payload = await waitFor(socket, `balance:updated:${userId}`);
  assert.deepEqual(
    { balance: payload?.balance, version: payload?.version },
    { balance, version },
    `${socket.label}: unexpected balance:updated:${userId} payload ${JSON.stringify(payload)}`,
  );
  return payload;
}

/** Emits with an ack callback, failing after `timeout` ms without an answer. */
export async function emitWithAck(socket, event, data, timeout = TIMEOUT_MS) {
  try {
    return await socket.timeout(timeout).emitWithAck(event, data);
  } catch (err) {
    throw new Error(`${socket.label}: no ack for "${event}" within ${timeout} ms (${err.message})`, { cause: err });
  }
}

/** Fails if the socket saw a disconnect or an error after connecting. */
export function assertHealthy(socket) {
  assert.deepEqual(socket.problems, [], `${socket.label} had problems: ${socket.problems.join(", ")}`);
  assert.equal(socket.connected, true, `${socket.label} is no longer connected`);
}

/** Closes every socket opened so far (call after each test). */
export function closeAll() {
  for (const socket of openSockets) {
    socket.closedByTest = true;
    for (const waiter of socket.waiters) clearTimeout(waiter.timer);
    socket.waiters.clear();
    socket.close();
  }
  openSockets.clear();
}
