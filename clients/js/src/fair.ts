// Provably fair verification in the browser (or Node), with the very code of docs/fair-verify.js:
// the build copies that file, unchanged, next to this module as dist/fair-verify.js, and importing
// it defines `globalThis.verifyRoll`. One implementation for players, front ends and the docs.

import "./fair-verify.js";
import type { Fair } from "./http.js";

/** What docs/fair-verify.js computes for one roll. */
export interface RollCheck {
  /** Lowercase hex SHA-256 of the server seed's 32 bytes. */
  commitment: string;
  /** Whether `commitment` equals the given one; null when none was given. */
  commitmentMatches: boolean | null;
  nextServerSeedHashMatches: boolean | null;
  hmac: string;
  roll: number;
  /** The index of the item picked by the weights; null without weights. */
  index: number | null;
}

export interface RollInput {
  serverSeed: string;
  clientSeed: string;
  nonce: number | bigint | string;
  weights?: (number | bigint | string)[];
  commitment?: string;
  nextServerSeedHash?: string;
}

declare global {
  // Defined by docs/fair-verify.js.
  // eslint-disable-next-line no-var
  var verifyRoll: ((input: RollInput) => Promise<RollCheck>) | undefined;
}

/** docs/fair-verify.js's `verifyRoll`, typed. Rejects on malformed seeds or nonces. */
export function verifyRoll(input: RollInput): Promise<RollCheck> {
  const verify = globalThis.verifyRoll;
  if (typeof verify !== "function") {
    return Promise.reject(new Error("fair-verify.js did not load (dist/fair-verify.js is missing from the build)"));
  }
  return verify(input);
}

/** The outcome of checking one open against its revealed server seed. */
export interface OpenProof {
  /** True when every check below passed. */
  verified: boolean;
  /** SHA-256 of the revealed seed is the commitment the open showed (`fair.serverSeedHash`). */
  commitmentMatches: boolean;
  /** The roll recomputed from the seeds and nonce is the one the server recorded. */
  rollMatches: boolean;
  /** The weights pick the item the server recorded as won; null when no item id was given. */
  itemMatches: boolean | null;
  /** The recomputed pick: its index in `fair.itemIds`, and that item's id. */
  index: number | null;
  itemId: string | null;
  roll: number;
  /** Why `verified` is false, in words. */
  problems: string[];
}

/**
 * Checks one open: `fair` is the record the open returned (or its inventory entry's `fair`),
 * `serverSeed` the pair's server seed once revealed (`rotateSeed()`'s `previous.serverSeed`, or
 * `api.revealedServerSeed(fair.serverSeedHash)`), `itemId` the id of the item the open gave.
 */
export async function verifyOpen(fair: Fair, serverSeed: string, options: { itemId?: string } = {}): Promise<OpenProof> {
  const check = await verifyRoll({
    serverSeed,
    clientSeed: fair.clientSeed,
    nonce: fair.nonce,
    weights: fair.weights,
    commitment: fair.serverSeedHash,
  });
  const problems: string[] = [];
  const commitmentMatches = check.commitmentMatches === true;
  if (!commitmentMatches) problems.push("the revealed server seed is not the one committed to");
  const rollMatches = check.roll === fair.roll;
  if (!rollMatches) problems.push(`the roll recomputes to ${check.roll}, the server recorded ${fair.roll}`);
  const itemId = check.index === null || check.index < 0 ? null : (fair.itemIds[check.index] ?? null);
  let itemMatches: boolean | null = null;
  if (options.itemId !== undefined) {
    itemMatches = itemId === options.itemId;
    if (!itemMatches) problems.push(`the weights pick item ${itemId}, the open gave ${options.itemId}`);
  }
  return {
    verified: problems.length === 0,
    commitmentMatches,
    rollMatches,
    itemMatches,
    index: check.index,
    itemId,
    roll: check.roll,
    problems,
  };
}
