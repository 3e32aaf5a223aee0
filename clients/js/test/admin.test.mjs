// cyberhub-client's operators' side against a real single node (TOKEN_EXPIRY_GRACE=1s, started by
// tests/api/web_client.rs): `connectAdmin` on `/admin` (typed `online` snapshots and `payment`s,
// in-band refresh of short admin tokens, a player's token refused for good) and the typed admin
// HTTP calls the operators' console (/console) makes, with their errors.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { after, test } from "node:test";

import { ApiError, connect, connectAdmin, createAdminApi, isApiError } from "cyberhub-client";
import { adminId, adminToken, BASE_URL, env, next, sleep, token, until } from "./support.mjs";

const clients = [];
function open(make, options) {
  const client = make({ url: BASE_URL(), reconnectDelayMs: 200, reconnectDelayMaxMs: 1000, ...options });
  clients.push(client);
  return client;
}
after(() => clients.forEach((client) => client.close()));

async function pay(payment) {
  const body = JSON.stringify(payment);
  const signature = createHmac("sha256", env("PAYMENT_WEBHOOK_SECRET")).update(body).digest("hex");
  const res = await fetch(`${BASE_URL()}/api/payment/callback`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-signature": signature },
    body,
  });
  assert.equal(res.status, 200, await res.text());
}

test("connectAdmin: typed online snapshots follow a player's socket, payments arrive as credited", { timeout: 30_000 }, async () => {
  const console_ = open(connectAdmin, { getToken: adminToken });
  await until(console_.connection, (c) => c.status === "connected", "the console connected");
  const first = await until(console_.online, (s) => s !== null, "a first snapshot");
  assert.equal(typeof first.sockets, "number");
  assert.equal(first.bus, "disabled", "a single node has no bus");
  assert.ok(Array.isArray(first.replicas) && first.replicas.length === 1, JSON.stringify(first));
  assert.equal(typeof first.eventsPerSecond.delivered, "number");
  const before = first.sockets;

  const playerId = randomUUID();
  const player = open(connect, { getToken: () => token({ sub: playerId }) });
  await until(player.connection, (c) => c.status === "connected", "the player connected");
  await until(console_.online, (s) => s?.sockets === before + 1, "the player's socket counted");
  player.close();
  await until(console_.online, (s) => s?.sockets === before, "and counted out");

  const paymentId = `admin-test-${randomUUID()}`;
  const seen = next(console_, "payment");
  await pay({ paymentId, userId: playerId, amount: 12.5, status: "success" });
  const payment = await seen;
  assert.deepEqual({ ...payment, at: typeof payment.at }, { paymentId, userId: playerId, amount: 12.5, at: "string" });
  assert.equal(console_.connection.get().connects, 1, "one connect all along");
});

test("connectAdmin refreshes short admin tokens in band: the console stays connected", { timeout: 30_000 }, async () => {
  let issued = 0;
  const ends = [];
  const errors = [];
  const refreshes = [];
  const console_ = open(connectAdmin, {
    getToken: () => {
      issued += 1;
      return token({ sub: adminId, role: "admin", ttl: 3 });
    },
    refreshLeewaySeconds: 1,
  });
  console_.on("ended", (e) => ends.push(e.reason));
  console_.on("error", (e) => errors.push(e.message));
  console_.on("refreshed", ({ exp }) => refreshes.push(exp));
  await until(console_.connection, (c) => c.status === "connected", "connected");
  // Three 3-second tokens' lifetimes, plus the 1 s grace: without refreshes the session ends.
  await sleep(8_000);
  assert.deepEqual(ends, [], `no session:ended (errors: ${errors})`);
  assert.equal(console_.connection.get().status, "connected");
  assert.equal(console_.connection.get().connects, 1, "never reconnected");
  assert.ok(refreshes.length >= 3, `refreshed in band ${refreshes.length} times`);
  assert.ok(issued >= refreshes.length + 1, `getToken asked for each refresh (${issued})`);
  assert.ok(console_.online.get() !== null, "snapshots kept coming");
});

test("connectAdmin with a player's token: forbidden, for good, without retrying", { timeout: 20_000 }, async () => {
  let asked = 0;
  const errors = [];
  const console_ = open(connectAdmin, {
    getToken: () => {
      asked += 1;
      return token();
    },
  });
  console_.on("error", (e) => errors.push(e.message));
  const ended = await until(console_.connection, (c) => c.status === "ended", "ended");
  assert.deepEqual({ reason: ended.reason, error: ended.error, connects: ended.connects }, { reason: "forbidden", error: "forbidden", connects: 0 });
  await sleep(1500);
  assert.equal(asked, 1, "no second attempt");
  assert.deepEqual(errors, ["connect refused for good: forbidden"]);

  // A refusal that a fresh token can get past (here an expired one) is retried with getToken.
  let tries = 0;
  const retrying = open(connectAdmin, {
    getToken: () => (++tries < 3 ? token({ sub: adminId, role: "admin", ttl: -10 }) : adminToken()),
  });
  await until(retrying.connection, (c) => c.status === "connected", "connected on the third token");
  assert.equal(tries, 3);
});

test("AdminApi: the console's calls, typed, and typed errors", { timeout: 30_000 }, async () => {
  const admin = createAdminApi({ url: BASE_URL(), getToken: adminToken });
  const { case: created } = await admin.createCase({
    name: `admin api ${randomUUID().slice(0, 8)}`,
    image: "",
    price: 0.5,
    items: [{ name: "coin", rarity: "common", kind: "money", value: 0.25, weight: 1 }],
  });
  assert.equal(created.price, 0.5);
  assert.equal((await admin.setCasePrice(created.id, 0.75)).case.price, 0.75);
  const replaced = await admin.replaceCase(created.id, {
    name: created.name,
    image: "",
    price: 1,
    items: [{ name: "skin", rarity: "rare", kind: "skin", value: 2, weight: 1 }],
  });
  assert.deepEqual(replaced.case.items.map((i) => i.name), ["skin"]);
  assert.ok((await admin.cases()).some((c) => c.id === created.id));

  // A player opens it twice and asks for both skins; the queue pages oldest first.
  const playerId = randomUUID();
  const playerToken = token({ sub: playerId });
  const player = open(connect, { getToken: () => playerToken });
  // Its first connect makes the user known to the server.
  await until(player.connection, (c) => c.status === "connected", "the player connected");
  const credited = await fetch(`${BASE_URL()}/api/admin/balance/add`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken()}`, "content-type": "application/json" },
    body: JSON.stringify({ userId: playerId, amount: 2, reason: "admin api test" }),
  });
  assert.equal(credited.status, 200);
  const won = [];
  for (let i = 0; i < 2; i++) won.push((await player.api.openCase(created.id)).inventoryItemId);
  for (const id of won) await admin.setInventoryStatus(id, "withdraw_requested");
  const mine = [];
  let cursor;
  do {
    const page = await admin.withdrawals({ limit: 1, cursor });
    mine.push(...page.withdrawals.filter((w) => w.userId === playerId).map((w) => w.item.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  assert.deepEqual(mine, won, "both requests, oldest first");
  assert.equal((await admin.setInventoryStatus(won[0], "delivered")).item.status, "delivered");

  const user = await admin.user(playerId);
  assert.deepEqual({ balance: user.balance, blocked: user.blocked }, { balance: 0, blocked: false });
  assert.equal((await admin.userTransactions(playerId, { limit: 20 })).transactions.length, 3);
  assert.equal((await admin.userInventory(playerId)).items.length, 2);
  assert.equal((await admin.userFairHistory(playerId)).pairs[0].nonce, 2);
  assert.equal((await admin.userSessions(playerId)).sessions.length, 1);

  const blocked = await admin.blockUser(playerId, { blocked: true, reason: "test" });
  assert.deepEqual({ blocked: blocked.blocked, reason: blocked.blockedReason }, { blocked: true, reason: "test" });
  await until(player.connection, (c) => c.status === "ended" && c.reason === "blocked", "the player's client stopped");
  assert.equal((await admin.blockUser(playerId, { blocked: false })).blocked, false);
  assert.equal((await admin.disconnectUser(playerId)).disconnected, 0);
  await admin.deleteCase(created.id);

  // Typed errors: a player's token, a bad cursor, an unknown user.
  const asPlayer = createAdminApi({ url: BASE_URL(), getToken: () => playerToken });
  await assert.rejects(asPlayer.withdrawals(), (err) => err instanceof ApiError && err.status === 403 && err.code === "forbidden");
  await assert.rejects(admin.withdrawals({ cursor: "garbage" }), (err) => isApiError(err, "invalid_cursor") && err.status === 400);
  await assert.rejects(admin.user(randomUUID()), (err) => isApiError(err, "not_found"));
});
