// Cross-replica delivery with the official socket.io-client: a socket on replica B hears what an
// HTTP call on replica A caused, and cases:updated from an admin edit on replica C; other users
// hear nothing. Run by tests/cluster with CYBERHUB_URL = replica A and REPLICA_URLS = "A B C".
// (Not named *.test.mjs: it needs a cluster, so only the cluster test runs it, explicitly.)
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { admin, closeAll, connect, expectBalance, newUser, noEvent, signWebhook, TRANSPORTS, waitFor } from "./helpers.mjs";

const replicas = (process.env.REPLICA_URLS ?? "").split(/\s+/).filter(Boolean);
if (replicas.length < 3) throw new Error("REPLICA_URLS must name three replicas");
const [A, B, C] = replicas;

async function call(base, method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const json = await res.json();
  assert.equal(json.success, true, `${method} ${base}${path}: ${JSON.stringify(json)}`);
  return json;
}

afterEach(() => closeAll());

for (const transport of Object.keys(TRANSPORTS)) {
  describe(`across replicas over ${transport}`, () => {
    test("events reach the right sockets on other replicas, and only them", { timeout: 30_000 }, async () => {
      const [alice, bob] = [newUser(), newUser()];
      await call(A, "GET", "/api/me", alice.token);
      const aliceOnB = await connect(transport, alice.token, "alice on B", B);
      const bobOnC = await connect(transport, bob.token, "bob on C", C);
      const anonymousOnA = await connect(transport, undefined, "anonymous on A", A);
      await expectBalance(aliceOnB, alice.id, 0, 0);

      await call(A, "POST", "/api/admin/balance/add", admin.token, { userId: alice.id, amount: 3 });
      await expectBalance(aliceOnB, alice.id, 3, 1);

      const created = await call(C, "POST", "/api/admin/cases", admin.token, {
        name: "Cross", image: "", price: 1,
        items: [{ name: "Coins", image: "", rarity: "common", kind: "money", value: 0.5, weight: 1 }],
      });
      for (const socket of [aliceOnB, bobOnC, anonymousOnA]) {
        assert.equal(await waitFor(socket, "cases:updated"), undefined);
      }
      await call(A, "POST", "/api/cases/open", alice.token, { caseId: created.case.id });
      await expectBalance(aliceOnB, alice.id, 2, 2);
      assert.deepEqual(await waitFor(aliceOnB, `inventory:updated:${alice.id}`), { version: 1 });

      const raw = JSON.stringify({ paymentId: `cross-${transport}-${alice.id}`, userId: alice.id, amount: 1, status: "success" });
      const paid = await fetch(`${C}/api/payment/callback`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-signature": signWebhook(raw) },
        body: raw,
      });
      assert.equal(paid.status, 200);
      await expectBalance(aliceOnB, alice.id, 3, 3);

      await noEvent(bobOnC, new RegExp(alice.id));
      await noEvent(anonymousOnA, /^(balance|inventory):updated/);
    });
  });
}
