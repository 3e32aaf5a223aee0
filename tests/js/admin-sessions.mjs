// Admin control of live sessions with the official socket.io-client, across replicas: a kick
// from replica A reaches the player's sockets on A, B and C with session:ended { reason:
// "kicked" } and disconnects them; another player's socket is left alone. Run by tests/cluster
// with CYBERHUB_URL = replica A and REPLICA_URLS = "A B C".
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { admin, apiOk, closeAll, connect, newUser, noEvent, TRANSPORTS, waitFor } from "./helpers.mjs";

const replicas = (process.env.REPLICA_URLS ?? "").split(/\s+/).filter(Boolean);
if (replicas.length < 3) throw new Error("REPLICA_URLS must name three replicas");

/** Resolves with [payload of session:ended, ms from `since`] once the socket is also disconnected. */
function ended(socket, since) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${socket.label}: not ended within 5 s`)), 5000);
    let payload;
    socket.on("session:ended", (p) => {
      payload = [p, Date.now() - since];
    });
    socket.on("disconnect", (reason) => {
      clearTimeout(timer);
      if (!payload) return reject(new Error(`${socket.label}: disconnected (${reason}) without session:ended`));
      assert.equal(reason, "io server disconnect");
      resolve(payload);
    });
  });
}

afterEach(() => closeAll());

for (const transport of Object.keys(TRANSPORTS)) {
  describe(`admin sessions over ${transport}`, () => {
    test("a kick ends the player's sockets on every replica, and only them", { timeout: 30_000 }, async () => {
      const [alice, bob] = [newUser(), newUser()];
      await apiOk("GET", "/api/me", { token: alice.token });
      const aliceSockets = [];
      const bobSockets = [];
      for (const [i, url] of replicas.entries()) {
        aliceSockets.push(await connect(transport, alice.token, `alice on ${i}`, url));
        bobSockets.push(await connect(transport, bob.token, `bob on ${i}`, url));
      }
      for (const socket of aliceSockets) await waitFor(socket, `balance:updated:${alice.id}`);

      const since = Date.now();
      const endings = aliceSockets.map((socket) => ended(socket, since));
      const kicked = await apiOk("POST", `/api/admin/users/${alice.id}/disconnect`, { token: admin.token, body: {} });
      assert.equal(kicked.disconnected, 1);
      const results = await Promise.all(endings);
      console.log(`kick over ${transport}: ms to session:ended on each replica`, results.map(([, ms]) => ms));
      for (const [payload, ms] of results) {
        assert.deepEqual(payload, { reason: "kicked" });
        assert.ok(ms < 1000, `within 1 s: ${ms} ms`);
      }
      for (const socket of bobSockets) {
        await noEvent(socket, "session:ended");
        assert.equal(socket.connected, true, `${socket.label} still connected`);
      }
    });
  });
}
