// Shared by the client's tests: test tokens, admin calls and waits. The server comes from the
// Rust test that runs these (tests/api/js_client.rs, tests/cluster/js_client.rs), which passes
// CYBERHUB_URL, JWT_SECRET and PAYMENT_WEBHOOK_SECRET.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

export { sleep };

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests against a live CyberHub (see tests/api/js_client.rs)`);
  return value;
}

export const BASE_URL = () => env("CYBERHUB_URL").replace(/\/+$/, "");

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An HS256 JWT signed with JWT_SECRET; `ttl` in seconds from now. */
export function token({ sub = randomUUID(), role = "user", ttl = 3600, secret = env("JWT_SECRET") } = {}) {
  const header = b64url({ alg: "HS256", typ: "JWT" });
  const claims = b64url({ sub, role, exp: Math.floor(Date.now() / 1000) + ttl });
  const signature = createHmac("sha256", secret).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${signature}`;
}

export const adminId = randomUUID();
export const adminToken = () => token({ sub: adminId, role: "admin" });

/** An admin (or any) call that must succeed; returns the body. */
export async function call(method, path, body, bearer = adminToken(), base = BASE_URL()) {
  const init = { method, headers: { authorization: `Bearer ${bearer}` }, signal: AbortSignal.timeout(10_000) };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

export const credit = (userId, amount, base) => call("POST", "/api/admin/balance/add", { userId, amount, reason: "client test" }, undefined, base);

/** A case whose every open wins a money item of `value`, priced `price`. */
export async function moneyCase(price = 0.5, value = 0.25) {
  const body = await call("POST", "/api/admin/cases", {
    name: `client test ${randomUUID().slice(0, 8)}`,
    price,
    items: [
      { name: "coin", rarity: "common", kind: "money", value, weight: 3 },
      { name: "gem", rarity: "rare", kind: "skin", value: value * 4, weight: 1 },
    ],
  });
  return body.case;
}

/** Resolves once `predicate(store.get())` holds, else fails after `ms`. */
export function until(store, predicate, what, ms = 10_000) {
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`not within ${ms} ms: ${what} (now ${JSON.stringify(store.get())})`));
    }, ms);
    let done = false;
    unsubscribe = store.subscribe((value) => {
      if (done || !predicate(value)) return;
      done = true;
      clearTimeout(timer);
      queueMicrotask(() => unsubscribe());
      resolve(value);
    });
  });
}

/** Resolves with the next `event` of the client. */
export function next(client, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no "${event}" within ${ms} ms`));
    }, ms);
    const off = client.on(event, (payload) => {
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/**
 * Records every balance the client showed, and asserts the versions only ever went up: the
 * "never an older version" property, checked on everything a UI would have rendered.
 */
export function recordBalances(client) {
  const seen = [];
  client.balance.subscribe((value) => {
    if (value) seen.push(value);
  });
  return {
    seen,
    assertMonotonic() {
      for (let i = 1; i < seen.length; i++) {
        assert.ok(
          seen[i].version > seen[i - 1].version,
          `balance went from version ${seen[i - 1].version} to ${seen[i].version}: ${JSON.stringify(seen)}`,
        );
      }
    },
  };
}
