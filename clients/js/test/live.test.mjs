// cyberhub-client against a real single node (started by tests/api/js_client.rs with
// TOKEN_EXPIRY_GRACE=1s): a live balance through in-band token refreshes, resume after a lost
// transport, kick and block, paging, typed errors, and a fairness proof.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";

import { ApiError, connect, createApi, isApiError, verifyOpen } from "cyberhub-client";
import { BASE_URL, call, credit, moneyCase, next, recordBalances, sleep, token, until } from "./support.mjs";

const clients = [];
function open(options) {
  const client = connect({ url: BASE_URL(), reconnectDelayMs: 200, reconnectDelayMaxMs: 1000, ...options });
  clients.push(client);
  return client;
}
after(() => clients.forEach((client) => client.close()));

const connected = (client) => until(client.connection, (c) => c.status === "connected", "connected");

test("the balance stays live through in-band refreshes of 3-second tokens, never going back", { timeout: 30_000 }, async () => {
  const id = randomUUID();
  let issued = 0;
  const client = open({
    getToken: () => {
      issued += 1;
      return token({ sub: id, ttl: 3 });
    },
    refreshLeewaySeconds: 1,
  });
  const shown = recordBalances(client);
  const refreshes = [];
  const ends = [];
  client.on("refreshed", ({ exp }) => refreshes.push(exp));
  client.on("ended", (e) => ends.push(e));
  await until(client.balance, (b) => b?.version === 0, "the connect snapshot");

  // 8 s of credits: well past the first token's exp + grace (3 s + 1 s), twice over.
  const started = Date.now();
  let credits = 0;
  while (Date.now() - started < 8_000) {
    await credit(id, 0.25);
    credits += 1;
    await sleep(400);
  }
  const me = await createApi({ url: BASE_URL(), getToken: () => token({ sub: id }) }).me();
  assert.equal(me.balanceVersion, credits);
  const last = await until(client.balance, (b) => b?.version === credits, `version ${credits}`);
  assert.equal(last.cents, credits * 25);
  assert.equal(last.balance, me.balance);

  shown.assertMonotonic();
  assert.deepEqual(ends, [], "no session:ended: the token was refreshed in band");
  assert.equal(client.connection.get().connects, 1, "one connection throughout");
  assert.ok(refreshes.length >= 3, `refreshed in band ${refreshes.length} times`);
  assert.ok(issued >= refreshes.length + 1, `getToken was asked for each refresh (${issued})`);
  assert.ok(refreshes.every((exp, i) => i === 0 || exp >= refreshes[i - 1]), `deadlines only move on: ${refreshes}`);
});

test("when a refresh is refused, the session ends token_expired and comes back with a fresh token", { timeout: 20_000 }, async () => {
  const id = randomUUID();
  // The handshake's token lives 2 s; every token before the session ends is signed with another
  // key (refused by auth:refresh), every token after it is good.
  let calls = 0;
  let expired = false;
  const client = open({
    getToken: () => {
      calls += 1;
      if (calls === 1) return token({ sub: id, ttl: 2 });
      return expired ? token({ sub: id }) : token({ sub: id, secret: "another-secret-0123456789abcdef" });
    },
    refreshLeewaySeconds: 1,
  });
  const shown = recordBalances(client);
  const errors = [];
  client.on("error", (err) => errors.push(err.message));
  client.on("ended", ({ reason }) => (expired = reason === "token_expired"));
  await connected(client);
  const ended = await next(client, "ended", 8_000);
  assert.deepEqual(ended, { reason: "token_expired", final: false });
  assert.ok(errors.some((m) => m === "auth:refresh refused: unauthorized"), `the refusal was reported: ${errors}`);
  await until(client.connection, (c) => c.status === "connected" && c.connects === 2, "connected again");
  assert.equal(client.connection.get().reason, "token_expired");
  await credit(id, 2.25);
  await until(client.balance, (b) => b?.cents === 225 && b.version === 1, "the credit after the reconnect");
  shown.assertMonotonic();
});

test("after a lost transport it resumes from its positions and gets what it missed", { timeout: 20_000 }, async () => {
  const id = randomUUID();
  const client = open({ getToken: () => token({ sub: id }) });
  const shown = recordBalances(client);
  await until(client.balance, (b) => b?.version === 0, "the connect snapshot");
  await connected(client);

  // Nothing missed: the server answers the positions with sync { recovered: true } only.
  const firstSync = next(client, "sync");
  client.socket.io.engine.close();
  assert.deepEqual(await firstSync, { recovered: true });
  assert.equal(client.connection.get().connects, 2);

  // A credit while the transport is gone: the reconnect's positions are behind, so the server
  // sends the balance snapshot, then sync { recovered: false }.
  const secondSync = next(client, "sync");
  client.socket.io.engine.close();
  await credit(id, 1.5);
  assert.deepEqual(await secondSync, { recovered: false });
  assert.deepEqual(client.balance.get(), { balance: 1.5, cents: 150, version: 1 });
  assert.equal(client.connection.get().connects, 3);
  shown.assertMonotonic();
});

test("a kick ends the session for good: no reconnect", { timeout: 20_000 }, async () => {
  const id = randomUUID();
  let handshakes = 0;
  const client = open({
    getToken: () => {
      handshakes += 1;
      return token({ sub: id });
    },
  });
  await connected(client);
  const ended = next(client, "ended");
  await call("POST", `/api/admin/users/${id}/disconnect`);
  assert.deepEqual(await ended, { reason: "kicked", final: true });
  assert.equal(client.connection.get().status, "ended");
  assert.equal(client.connection.get().reason, "kicked");
  // Two seconds is ten times the first reconnect delay.
  await sleep(2_000);
  assert.equal(handshakes, 1, "no new handshake after the kick");
  assert.equal(client.socket.connected, false);
  const { sessions } = await call("GET", `/api/admin/users/${id}/sessions`);
  assert.deepEqual(sessions, [], "no socket of the player is left on the server");
});

test("a block ends the session and the next connect is refused for good", { timeout: 20_000 }, async () => {
  const id = randomUUID();
  const client = open({ getToken: () => token({ sub: id }) });
  await connected(client);
  const ended = next(client, "ended");
  await call("PUT", `/api/admin/users/${id}/block`, { blocked: true, reason: "client test" });
  assert.deepEqual(await ended, { reason: "blocked", final: true });
  assert.equal(client.connection.get().status, "ended");

  let handshakes = 0;
  const again = open({
    getToken: () => {
      handshakes += 1;
      return token({ sub: id });
    },
  });
  const refused = await until(again.connection, (c) => c.status === "ended", "the refused client ends");
  assert.equal(refused.reason, "blocked");
  assert.equal(refused.connects, 0);
  await sleep(1_500);
  assert.equal(handshakes, 1, "a blocked player's client does not retry");
});

test("inventory pages: every item once, newest first, until nextCursor is null", { timeout: 30_000 }, async () => {
  const id = randomUUID();
  const client = open({ getToken: () => token({ sub: id }) });
  const shown = recordBalances(client);
  await until(client.balance, (b) => b !== null, "the connect snapshot");
  const kase = await moneyCase(0.5, 0.25);
  await credit(id, 5);
  const opened = [];
  for (let i = 0; i < 7; i++) opened.push((await client.api.openCase(kase.id)).inventoryItemId);
  // The open answers carry the balance: the live view has it without waiting for the event.
  assert.equal(client.balance.get().version, 8);
  assert.equal(client.inventoryVersion.get() === null || client.inventoryVersion.get() <= 7, true);
  await until(client.inventoryVersion, (v) => v === 7, "inventory version 7 from the events");

  const pages = [];
  for await (const page of client.api.inventoryPages({ limit: 3 })) pages.push(page);
  assert.deepEqual(pages.map((p) => p.items.length), [3, 3, 1]);
  assert.equal(pages.at(-1).nextCursor, null);
  const ids = pages.flatMap((p) => p.items.map((e) => e.id));
  assert.deepEqual(ids, [...opened].reverse(), "every open once, newest first");
  const owned = await client.api.inventory({ status: "claimed" });
  assert.deepEqual(owned.items, []);
  shown.assertMonotonic();
});

test("errors are ApiError with the envelope's code and status", { timeout: 20_000 }, async () => {
  const id = randomUUID();
  const api = createApi({ url: BASE_URL(), getToken: () => token({ sub: id }) });
  const kase = await moneyCase(1, 0.5);
  const failure = async (promise) => {
    try {
      await promise;
    } catch (err) {
      return err;
    }
    assert.fail("expected the call to fail");
  };

  const broke = await failure(api.openCase(kase.id));
  assert.ok(broke instanceof ApiError && isApiError(broke, "insufficient_balance"), String(broke));
  assert.equal(broke.status, 422);
  assert.equal(broke.envelope.success, false);
  assert.equal(broke.retryAfter, null);

  const missing = await failure(api.openCase(randomUUID()));
  assert.deepEqual([missing.status, missing.code], [404, "not_found"]);
  const malformed = await failure(api.openCase("not-a-uuid"));
  assert.equal(malformed.status, 400);
  const cursor = await failure(api.inventory({ cursor: "made-up" }));
  assert.deepEqual([cursor.status, cursor.code], [400, "invalid_cursor"]);
  const limit = await failure(api.inventory({ limit: 0 }));
  assert.deepEqual([limit.status, limit.code], [400, "invalid_query"]);
  const anonymous = await failure(createApi({ url: BASE_URL() }).me());
  assert.deepEqual([anonymous.status, anonymous.code], [401, "unauthorized"]);
  const nobody = await failure(createApi({ url: "http://127.0.0.1:9" }).cases());
  assert.deepEqual([nobody.status, nobody.code], [0, "network_error"]);
  // Nothing changed: the failed calls left the balance and inventory as they were.
  const me = await api.me();
  assert.deepEqual([me.balance, me.balanceVersion, me.inventoryVersion], [0, 0, 0]);
});

test("an open verifies against its revealed server seed; a wrong seed does not", { timeout: 20_000 }, async () => {
  const id = randomUUID();
  const api = createApi({ url: BASE_URL(), getToken: () => token({ sub: id }) });
  const kase = await moneyCase(0.5, 0.25);
  await api.me(); // the player exists from their first authenticated call
  await credit(id, 2);
  const before = await api.fair();
  const opened = await api.openCase(kase.id);
  assert.equal(opened.fair.serverSeedHash, before.serverSeedHash);
  assert.equal(await api.revealedServerSeed(opened.fair.serverSeedHash), null, "not revealed while active");
  const rotation = await api.rotateSeed();
  assert.equal(rotation.previous.serverSeedHash, opened.fair.serverSeedHash);
  assert.equal(await api.revealedServerSeed(opened.fair.serverSeedHash), rotation.previous.serverSeed);

  const proof = await verifyOpen(opened.fair, rotation.previous.serverSeed, { itemId: opened.item.id });
  assert.deepEqual(proof.problems, []);
  assert.equal(proof.verified, true);
  assert.equal(proof.itemId, opened.item.id);

  const forged = await verifyOpen(opened.fair, "00".repeat(32), { itemId: opened.item.id });
  assert.equal(forged.verified, false);
  assert.equal(forged.commitmentMatches, false);
  const otherItem = await verifyOpen(opened.fair, rotation.previous.serverSeed, { itemId: randomUUID() });
  assert.equal(otherItem.verified, false);
  assert.equal(otherItem.itemMatches, false);
});
