// Independent checker for CyberHub provably fair rolls (see provably-fair.md).
// No dependencies, so a player can read all of it before trusting it.
//
// Node >= 18:
//   node fair-verify.js <serverSeedHex> <clientSeed> <nonce> <w1,w2,...> [commitment] [nextServerSeedHash]
// Browser: paste into the console, then
//   await verifyRoll({ serverSeed, clientSeed, nonce, weights, commitment, nextServerSeedHash })
//
// commitment: the serverSeedHash shown on every open of the pair.
// nextServerSeedHash: the one GET /api/fair showed BEFORE you set the client seed (or rotated)
// that started the pair; a match proves the server seed was fixed before it saw your seed.
"use strict";

// Node 18 only has WebCrypto under node:crypto; later Node and browsers
// have it on globalThis, so both run the very same code below.
function subtle() {
  if (globalThis.crypto && globalThis.crypto.subtle) return globalThis.crypto.subtle;
  return require("node:crypto").webcrypto.subtle;
}

const toHex = (buf) =>
  Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(hex, what) {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${what} must be exactly 64 hexadecimal characters`);
  return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
}

async function verifyRoll({ serverSeed, clientSeed, nonce, weights = [], commitment, nextServerSeedHash }) {
  const seed = fromHex(serverSeed, "server seed");
  if (!/^[\x20-\x7e]{1,64}$/.test(clientSeed)) {
    throw new Error("client seed must be 1-64 printable ASCII characters");
  }
  // BigInt keeps nonces above 2^53 exact; String() of it is plain decimal.
  const n = BigInt(nonce);
  if (n < 0n || n >= 2n ** 64n) throw new Error("nonce must be an integer in [0, 2^64)");

  // Commitment = SHA-256 of the 32 raw seed bytes, not of the hex text.
  const commitmentHex = toHex(await subtle().digest("SHA-256", seed));
  // An absent or empty hash is not checked (null), so the CLI can skip the first with "".
  const matches = (hash, what) => (hash == null || hash === "" ? null : commitmentHex === toHex(fromHex(hash, what)));
  const commitmentMatches = matches(commitment, "commitment");
  const nextServerSeedHashMatches = matches(nextServerSeedHash, "nextServerSeedHash");

  const key = await subtle().importKey("raw", seed, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const message = new TextEncoder().encode(`${clientSeed}:${n}`);
  const hmac = toHex(await subtle().sign("HMAC", key, message));

  // First 13 hex digits = 52 bits, exact both as a double and as a BigInt.
  const k = BigInt("0x" + hmac.slice(0, 13));
  const roll = Number(k) / 2 ** 52;

  // Integer pick: target = (k * W) >> 52, first item whose running sum exceeds it.
  let index = null;
  const w = weights.map((x) => BigInt(x));
  if (w.length > 0 && w.every((x) => x > 0n)) {
    const target = (k * w.reduce((a, b) => a + b, 0n)) >> 52n;
    let sum = 0n;
    index = w.findIndex((x) => target < (sum += x));
  }
  return { commitment: commitmentHex, commitmentMatches, nextServerSeedHashMatches, hmac, roll, index };
}

globalThis.verifyRoll = verifyRoll;

if (typeof require !== "undefined" && typeof module !== "undefined" && require.main === module) {
  const [serverSeed, clientSeed, nonce, weights, commitment, nextServerSeedHash] = process.argv.slice(2);
  if (weights === undefined) {
    console.error(
      "usage: node fair-verify.js <serverSeedHex> <clientSeed> <nonce> <w1,w2,...> [commitment] [nextServerSeedHash]",
    );
    process.exit(2);
  }
  if (!/^\d+$/.test(nonce) || !/^\d+(,\d+)*$/.test(weights)) {
    console.error("nonce must be a decimal integer and weights a comma-separated list of integers");
    process.exit(2);
  }
  const options = { serverSeed, clientSeed, nonce, weights: weights.split(","), commitment, nextServerSeedHash };
  verifyRoll(options).then(
    (result) => {
      console.log(JSON.stringify(result, null, 2));
      if (result.commitmentMatches === false || result.nextServerSeedHashMatches === false) process.exitCode = 1;
    },
    (err) => {
      console.error(err.message);
      process.exit(2);
    },
  );
}
