// Never a stale screen, with the official socket.io-client: players whose sockets (half over
// websocket, half over polling) sit on the surviving replicas while tests/cluster/stale.rs SIGKILLs
// the replica committing their balance changes. Each socket keeps the highest balance version it
// saw, as a real front end does; once the Rust test says the rounds are over, every one must show
// the balance the database holds. Run by that test only (it needs a cluster):
//   STALE_USERS = "id:token id:token …", STALE_URLS = "B C", STALE_READY / STALE_DONE = file paths.
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { after, test } from "node:test";

import { closeAll, connect, sleep } from "./helpers.mjs";

const users = (process.env.STALE_USERS ?? "").split(/\s+/).filter(Boolean).map((pair) => {
  const [id, token] = pair.split(":");
  return { id, token };
});
const urls = (process.env.STALE_URLS ?? "").split(/\s+/).filter(Boolean);
if (users.length < 2 || urls.length < 1) throw new Error("STALE_USERS and STALE_URLS are required");
const transports = ["websocket", "polling"];

after(() => closeAll());

test(`screens stay true over websocket and polling while the committing replica dies`, { timeout: 180_000 }, async () => {
  const screens = await Promise.all(
    users.map(async (user, i) => {
      const transport = transports[i % 2];
      const url = urls[i % urls.length];
      const socket = await connect(transport, user.token, `${user.id} over ${transport}`, url);
      const screen = { user, transport, url, socket, version: -1 };
      const event = `balance:updated:${user.id}`;
      const seen = ({ version }) => {
        screen.version = Math.max(screen.version, version);
      };
      // The snapshot may have come in before this listener: the helpers queued it.
      for (const [payload] of socket.inbox.get(event) ?? []) seen(payload);
      socket.inbox.delete(event);
      socket.on(event, seen);
      return screen;
    }),
  );
  writeFileSync(process.env.STALE_READY, "ready");
  while (!existsSync(process.env.STALE_DONE)) await sleep(100);

  let stale = 0;
  for (const screen of screens) {
    const res = await fetch(`${screen.url}/api/me`, { headers: { authorization: `Bearer ${screen.user.token}` } });
    const { user } = await res.json();
    if (user.balanceVersion !== screen.version) {
      stale += 1;
      console.log(`stale: ${screen.user.id} over ${screen.transport} shows ${screen.version}, database ${user.balanceVersion}`);
    }
    assert.deepEqual(screen.socket.problems, [], `${screen.user.id} over ${screen.transport} stayed connected`);
  }
  console.log(`official clients (websocket and polling): ${stale} of ${screens.length} stale`);
  assert.equal(stale, 0);
});
