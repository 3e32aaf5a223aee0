// Live sessions with the official socket.io-client: a socket ends at its token's exp + grace with
// session:ended, an in-band auth:refresh keeps it (and its events) alive, and a refresh with
// somebody else's token is refused and leaks nothing. Run by tests/api/js_client.rs against a
// server started with TOKEN_EXPIRY_GRACE=1s (not named *.test.mjs: the default suite runs with
// the default grace).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { afterEach, describe, test } from "node:test";

import {
  adminAddBalance,
  apiOk,
  closeAll,
  connect,
  emitWithAck,
  expectBalance,
  noEvent,
  sleep,
  token,
  TRANSPORTS,
  waitFor,
} from "./helpers.mjs";

const GRACE_S = Number(process.env.TOKEN_EXPIRY_GRACE_S ?? "1");
const nowS = () => Date.now() / 1000;
const expOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url")).exp;

afterEach(() => closeAll());

/** A player known to the server, and a socket of theirs whose token expires in `ttl` seconds. */
async function playerWithShortToken(transport, ttl) {
  const id = randomUUID();
  await apiOk("GET", "/api/me", { token: token({ sub: id }) });
  const short = token({ sub: id, expiresIn: ttl });
  const socket = await connect(transport, short, `player over ${transport}`);
  await expectBalance(socket, id, 0, 0);
  return { id, socket, exp: expOf(short) };
}

for (const transport of Object.keys(TRANSPORTS)) {
  describe(`live sessions over ${transport}`, () => {
    test("a socket ends at its token's exp + grace, with the reason first", { timeout: 20_000 }, async () => {
      const { socket, exp } = await playerWithShortToken(transport, 2);
      const ended = await waitFor(socket, "session:ended", 8_000);
      const at = nowS();
      assert.deepEqual(ended, { reason: "token_expired" });
      assert.ok(at >= exp + GRACE_S - 0.05, `ended ${(exp + GRACE_S - at).toFixed(2)} s before exp + grace`);
      assert.ok(at <= exp + GRACE_S + 1.5, `ended ${(at - exp - GRACE_S).toFixed(2)} s after exp + grace`);
      for (let i = 0; socket.connected && i < 20; i++) await sleep(50);
      assert.equal(socket.connected, false, "the server disconnected the socket");
    });

    test("auth:refresh keeps the socket and its events past the old deadline", { timeout: 20_000 }, async () => {
      const { id, socket, exp } = await playerWithShortToken(transport, 2);
      const fresh = token({ sub: id, expiresIn: 3600 });
      const ack = await emitWithAck(socket, "auth:refresh", { token: fresh });
      assert.deepEqual(ack, { ok: true, exp: expOf(fresh) });
      // Well past the old exp + grace.
      await sleep(Math.max(0, (exp + GRACE_S + 1.5 - nowS()) * 1000));
      assert.equal(socket.connected, true, "still connected after the old deadline");
      await noEvent(socket, "session:ended");
      await adminAddBalance(id, 2);
      await expectBalance(socket, id, 2, 1);
    });

    test("a refresh with another player's token or a bad one is refused and leaks nothing", { timeout: 20_000 }, async () => {
      const { id, socket, exp } = await playerWithShortToken(transport, 3);
      const other = randomUUID();
      await apiOk("GET", "/api/me", { token: token({ sub: other }) });
      const stolen = await emitWithAck(socket, "auth:refresh", { token: token({ sub: other }) });
      assert.deepEqual(stolen, { ok: false, error: "forbidden" });
      const forged = await emitWithAck(socket, "auth:refresh", { token: token({ sub: id, secret: "x".repeat(40) }) });
      assert.deepEqual(forged, { ok: false, error: "unauthorized" });
      const malformed = await emitWithAck(socket, "auth:refresh", { token: 42 });
      assert.equal(malformed.ok, false);

      // The socket is still the same player's: the other player's money is not shown to it.
      await adminAddBalance(other, 5);
      await adminAddBalance(id, 1);
      await expectBalance(socket, id, 1, 1);
      await noEvent(socket, new RegExp(other));
      // And it keeps its old deadline.
      const ended = await waitFor(socket, "session:ended", Math.max(1, exp + GRACE_S + 2 - nowS()) * 1000);
      assert.deepEqual(ended, { reason: "token_expired" });
    });
  });
}
