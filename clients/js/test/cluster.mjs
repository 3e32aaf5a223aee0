// cyberhub-client through nginx on the real local cluster (three replicas, Redis, PostgreSQL),
// while credits keep coming over HTTP: the replica holding the socket is SIGTERMed (drain), then
// Redis is killed and restarted. The balance shown must stay live and never go back to an older
// version, with tokens of a few seconds refreshed in band all along.
//
// Run by tests/cluster/web_client.rs as `node test/cluster.mjs` (not *.test.mjs: it needs the
// cluster), which does the faults: this script prints `FAULT <what>` and waits for `DONE` on stdin.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { test } from "node:test";

import { connect } from "cyberhub-client";
import { BASE_URL, call, credit, next, recordBalances, sleep, token, until } from "./support.mjs";

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function fault(what) {
  console.log(`FAULT ${what}`);
  const { value, done } = await answers.next();
  assert.ok(!done && value === "DONE", `the test runner did ${what}: ${value}`);
}

/** The replica holding the player's one socket (the sessions list may lag a connect a little). */
async function replicaOf(userId, not = null) {
  let sessions = [];
  for (let i = 0; i < 50; i++) {
    ({ sessions } = await call("GET", `/api/admin/users/${userId}/sessions`));
    if (sessions.length === 1 && sessions[0].replica !== not) return sessions[0].replica;
    await sleep(100);
  }
  assert.fail(`one socket of the player${not ? ` elsewhere than ${not}` : ""}: ${JSON.stringify(sessions)}`);
}

test("through a drain and a Redis restart, the balance stays live and never goes back", { timeout: 120_000 }, async () => {
  const id = randomUUID();
  const client = connect({
    url: BASE_URL(),
    getToken: () => token({ sub: id, ttl: 4 }),
    refreshLeewaySeconds: 2,
    reconnectDelayMs: 200,
    reconnectDelayMaxMs: 2000,
  });
  const shown = recordBalances(client);
  const ends = [];
  let refreshes = 0;
  client.on("ended", (e) => ends.push(e));
  client.on("refreshed", () => (refreshes += 1));
  await until(client.balance, (b) => b?.version === 0, "the connect snapshot");

  // Credits through nginx all along; some may fail while a replica stops or Redis restarts.
  let crediting = true;
  let failed = 0;
  const credits = (async () => {
    while (crediting) {
      await credit(id, 0.01).catch(() => (failed += 1));
      await sleep(150);
    }
  })();
  const truth = () => call("GET", "/api/me", undefined, token({ sub: id })).then((b) => b.user);
  const caughtUp = async (what) => {
    const { balanceVersion } = await truth();
    await until(client.balance, (b) => b?.version >= balanceVersion, `${what}: version ${balanceVersion} shown`, 15_000);
  };

  try {
    await sleep(1_500);
    await caughtUp("before the faults");

    const drained = await replicaOf(id);
    const ended = next(client, "ended", 30_000);
    await fault(`stop-replica ${drained}`);
    assert.deepEqual(await ended, { reason: "draining", final: false });
    await until(client.connection, (c) => c.status === "connected" && c.connects === 2, "connected again after the drain", 15_000);
    await replicaOf(id, drained);
    await sleep(1_000);
    await caughtUp("after the drain");

    await fault("restart-redis");
    await sleep(2_000);
    await caughtUp("after the Redis restart");
    // Tokens last 4 s and are refreshed 2 s before they end; a reconnect brings a fresh token, so
    // how many refreshes the faults leave room for varies: keep the credits coming until three
    // refreshes have happened on live connections.
    for (let waited = 0; refreshes < 3 && waited < 20_000; waited += 100) await sleep(100);
    await caughtUp("after three refreshes");

    crediting = false;
    await credits;
    const final = await truth();
    await until(client.balance, (b) => b?.version === final.balanceVersion, `the final version ${final.balanceVersion}`, 15_000);
    assert.equal(client.balance.get().balance, final.balance);
    assert.ok(final.balanceVersion >= 30, `credits kept coming (${final.balanceVersion}, ${failed} failed)`);
    shown.assertMonotonic();
    assert.deepEqual(ends, [{ reason: "draining", final: false }], "no session ended but by the drain");
    assert.ok(refreshes >= 3, `tokens were refreshed in band (${refreshes} times)`);
    assert.equal(client.connection.get().status, "connected");
    console.log(`# ${shown.seen.length} balances shown, ${final.balanceVersion} credits, ${failed} failed, ${refreshes} refreshes, ${client.connection.get().connects} connects`);
  } finally {
    crediting = false;
    client.close();
    process.stdin.destroy();
  }
});
