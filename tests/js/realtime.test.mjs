// Acceptance tests for CyberHub's realtime API, using the official
// socket.io-client. Run from the repository root as `node --test tests/js/`
// with CYBERHUB_URL, JWT_SECRET and PAYMENT_WEBHOOK_SECRET set.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { afterEach, describe, test } from "node:test";

import {
  TRANSPORTS,
  admin,
  adminAddBalance,
  api,
  apiOk,
  assertApiError,
  assertHealthy,
  closeAll,
  connect,
  connectError,
  createCase,
  emitWithAck,
  expectBalance,
  newUser,
  noEvent,
  sendPayment,
  signWebhook,
  token,
  waitFor,
} from "./helpers.mjs";

const TEST_TIMEOUT_MS = 30_000;

afterEach(closeAll);

/** Connects a fresh user over `transport` and consumes its { 0, 0 } balance snapshot. */
async function freshUserSocket(transport, label) {
  const user = newUser();
  const socket = await connect(transport, user.token, label);
  await expectBalance(socket, user.id, 0, 0);
  return { user, socket };
}

/** A case priced 1.00 whose only item is money worth 0.50. */
const halfMoneyCase = () => ({
  name: `Test case ${randomUUID().slice(0, 8)}`,
  image: "https://example.invalid/case.png",
  price: 1.0,
  items: [
    {
      name: "Half a coin",
      image: "https://example.invalid/coin.png",
      rarity: "common",
      kind: "money",
      value: 0.5,
      weight: 1,
    },
  ],
});

describe("REST contract used by the realtime tests", () => {
  test("GET /api/me creates a fresh user with a zero balance", { timeout: TEST_TIMEOUT_MS }, async () => {
    const user = newUser();
    const body = await apiOk("GET", "/api/me", { token: user.token });
    assert.equal(body.user?.id, user.id);
    assert.equal(body.user?.role, "user");
    assert.equal(body.user?.balance, 0);
    assert.equal(body.user?.balanceVersion, 0);
    assert.equal(body.user?.inventoryVersion, 0);
  });

  test("admin balance add for a user never seen is 404", { timeout: TEST_TIMEOUT_MS }, async () => {
    const res = await api("POST", "/api/admin/balance/add", {
      token: admin.token,
      body: { userId: randomUUID(), amount: 1 },
    });
    assertApiError(res, 404);
  });

  test("an expired token is refused over HTTP", { timeout: TEST_TIMEOUT_MS }, async () => {
    const res = await api("GET", "/api/me", { token: token({ expiresIn: -3600 }) });
    assertApiError(res, 401);
  });

  test("opening a case without enough balance is 422 insufficient_balance", { timeout: TEST_TIMEOUT_MS }, async () => {
    const { case: created } = await createCase(halfMoneyCase());
    const user = newUser();
    const res = await api("POST", "/api/cases/open", { token: user.token, body: { caseId: created.id } });
    assertApiError(res, 422, "insufficient_balance");
  });
});

for (const transport of Object.keys(TRANSPORTS)) {
  describe(`realtime over ${transport}`, () => {
    test("balance snapshot on connect, then admin top-up event for that user only", { timeout: TEST_TIMEOUT_MS }, async () => {
      const { user: alice, socket: aliceSocket } = await freshUserSocket(transport, "alice");
      const { socket: bobSocket } = await freshUserSocket(transport, "bob");

      const res = await adminAddBalance(alice.id, 12.5);
      assert.equal(res.balance, 12.5);
      assert.equal(res.balanceVersion, 1);

      await expectBalance(aliceSocket, alice.id, 12.5, 1);
      await noEvent(bobSocket, /^balance:updated:/);
      await noEvent(aliceSocket, /^balance:updated:/);
    });

    test("cases:updated reaches anonymous and authenticated sockets; anonymous gets no balance events", { timeout: TEST_TIMEOUT_MS }, async () => {
      const anonSocket = await connect(transport, undefined, "anonymous");
      const { user, socket: userSocket } = await freshUserSocket(transport, "user");

      const { case: created } = await createCase(halfMoneyCase());
      assert.equal(typeof created.id, "string");
      assert.equal(created.price, 1);
      assert.equal(created.items.length, 1);
      assert.equal(created.items[0].value, 0.5);

      // No payload at all, as the old backend's io.emit("cases:updated") sent: not even null.
      assert.equal(await waitFor(anonSocket, "cases:updated"), undefined);
      assert.equal(await waitFor(userSocket, "cases:updated"), undefined);

      await adminAddBalance(user.id, 1);
      await expectBalance(userSocket, user.id, 1, 1);
      await noEvent(anonSocket, /^(balance|inventory):updated:/);
    });

    test("bad and expired tokens are refused with connect_error unauthorized", { timeout: TEST_TIMEOUT_MS }, async () => {
      const refused = {
        "garbage token": "not-a-jwt",
        "wrong signature": token({ secret: "definitely-not-the-server-secret" }),
        "expired token": token({ expiresIn: -3600 }),
      };
      for (const [label, badToken] of Object.entries(refused)) {
        const err = await connectError(transport, badToken, label);
        assert.equal(err.message, "unauthorized", `${label}: connect_error message`);
      }
    });

    test("spoofed user:identify is forbidden and leaks nothing; own id is ok", { timeout: TEST_TIMEOUT_MS }, async () => {
      const { user: mallory, socket: mallorySocket } = await freshUserSocket(transport, "mallory");
      const { user: victim, socket: victimSocket } = await freshUserSocket(transport, "victim");

      const spoofed = await emitWithAck(mallorySocket, "user:identify", { userId: victim.id });
      assert.deepEqual(spoofed, { ok: false, error: "forbidden" });

      await adminAddBalance(victim.id, 4.2);
      await expectBalance(victimSocket, victim.id, 4.2, 1);
      await noEvent(mallorySocket, `balance:updated:${victim.id}`);

      const own = await emitWithAck(mallorySocket, "user:identify", { userId: mallory.id });
      assert.deepEqual(own, { ok: true });
    });

    test("opening a case and claiming the item update balance and inventory", { timeout: TEST_TIMEOUT_MS }, async () => {
      const { case: created } = await createCase(halfMoneyCase());
      const { user, socket } = await freshUserSocket(transport, "player");

      await adminAddBalance(user.id, 3);
      await expectBalance(socket, user.id, 3, 1);

      const opened = await apiOk("POST", "/api/cases/open", { token: user.token, body: { caseId: created.id } });
      assert.equal(opened.balance, 2);
      assert.equal(opened.balanceVersion, 2);
      assert.equal(opened.item?.kind, "money");
      assert.equal(opened.item?.value, 0.5);
      assert.ok(opened.inventoryItemId, "open response has an inventoryItemId");
      assert.ok(opened.fair, "open response has provably-fair data");
      await expectBalance(socket, user.id, 2, 2);
      assert.deepEqual(await waitFor(socket, `inventory:updated:${user.id}`), { version: 1 });

      const claimed = await apiOk("POST", "/api/inventory/claim", {
        token: user.token,
        body: { inventoryItemId: opened.inventoryItemId },
      });
      assert.equal(claimed.balance, 2.5);
      assert.equal(claimed.balanceVersion, 3);
      assert.equal(claimed.credited, 0.5);
      await expectBalance(socket, user.id, 2.5, 3);
      assert.deepEqual(await waitFor(socket, `inventory:updated:${user.id}`), { version: 2 });
    });

    test("signed payment webhook credits once; a replay is a duplicate with no event", { timeout: TEST_TIMEOUT_MS }, async () => {
      const { user, socket } = await freshUserSocket(transport, "payer");
      const payment = { paymentId: randomUUID(), userId: user.id, amount: 7.25, status: "success" };

      const forged = await sendPayment(payment, { signature: signWebhook(JSON.stringify(payment), "wrong-secret") });
      assert.ok(forged.status >= 400 && forged.status < 500, `forged signature must be refused, got ${forged.status}`);
      assert.equal(forged.body?.success, false);

      const first = await sendPayment(payment);
      assert.equal(first.status, 200, `first callback: ${JSON.stringify(first.body)}`);
      assert.equal(first.body.success, true);
      assert.equal(first.body.duplicate, false);
      assert.equal(first.body.balance, 7.25);
      assert.equal(first.body.balanceVersion, 1);
      await expectBalance(socket, user.id, 7.25, 1);

      const replay = await sendPayment(payment);
      assert.equal(replay.status, 200, `replayed callback: ${JSON.stringify(replay.body)}`);
      assert.equal(replay.body.success, true);
      assert.equal(replay.body.duplicate, true);
      await noEvent(socket, `balance:updated:${user.id}`);
    });

    test("many events in one session arrive over successive round-trips without a disconnect", { timeout: TEST_TIMEOUT_MS }, async () => {
      const { user, socket } = await freshUserSocket(transport, "steady");
      const sid = socket.id;

      const rounds = 6;
      for (let version = 1; version <= rounds; version++) {
        await adminAddBalance(user.id, 1);
        // Each event ends one long-poll request when polling, so every
        // iteration needs a fresh round-trip on the same engine.io session.
        await expectBalance(socket, user.id, version, version);
        assertHealthy(socket);
      }

      assert.equal(socket.id, sid, "the socket kept its session id");
      assert.equal(socket.io.engine.transport.name, transport, "no transport change happened");
      assertHealthy(socket);
    });
  });
}
