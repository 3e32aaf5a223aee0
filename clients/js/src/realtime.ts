// The players' live connection (namespace `/`): on top of the shared machinery in connection.ts
// (token in the handshake, in-band refresh, jittered reconnect, `session:ended`), it sends the
// versions it already shows on every reconnect (the server then sends only what is behind), keeps
// the highest balance version, and stops for good after `kicked` or `blocked`. The wire protocol
// is the `x-socketio` part of docs/openapi.json.

import type { components } from "./api.gen.js";
import { Connection, type ConnectionEvents, type ConnectionOptions, type SessionEndReason } from "./connection.js";
import { CyberHubApi } from "./http.js";
import { Store, type Readable } from "./store.js";

export type { ConnectionState, ConnectionStatus, SessionEndReason } from "./connection.js";

type Schemas = components["schemas"];

/** A balance as shown: the server's major units, the same in exact cents, and its version. */
export interface Balance {
  /** Major units as the server sends them (12.5 is 12.50). */
  balance: number;
  /** The same amount in integer cents: use this for arithmetic and formatting. */
  cents: number;
  /** Grows by one with every change; a lower one than shown is never applied. */
  version: number;
}

export interface ClientEvents extends ConnectionEvents {
  /** The inventory changed: refetch it (`api.inventory()`). `version` is null from old replicas. */
  inventory: { version: number | null };
  /** The case catalogue changed: refetch it (`api.cases()`). */
  cases: undefined;
  /** After a reconnect: `recovered` is true when nothing had been missed. */
  sync: { recovered: boolean };
}

export interface ConnectOptions extends ConnectionOptions {
  /**
   * Returns the player's JWT. Called before every connect and before every refresh, so return a
   * fresh one when the current one is close to its `exp`. Leave it out to connect anonymously
   * (`cases` events only).
   */
  getToken?: ConnectionOptions["getToken"];
  /** Per-request timeout of the HTTP calls, default 10 s. */
  httpTimeoutMs?: number;
  /** Another `fetch` for the HTTP calls. */
  fetch?: typeof fetch;
}

const PLAYER = {
  namespace: "/",
  finalEnds: new Set<SessionEndReason>(["kicked", "blocked"]),
  finalRefusals: new Set(["blocked"]),
};

export class CyberHubClient extends Connection<ClientEvents> {
  /** The balance shown, or null until the first snapshot. Never goes back to an older version. */
  readonly balance: Readable<Balance | null>;
  /** The highest inventory version seen (also the position sent on reconnect), or null. */
  readonly inventoryVersion: Readable<number | null>;
  /** Typed HTTP calls with the same URL and token; balances they return update `balance` too. */
  readonly api: CyberHubApi;

  readonly #balance = new Store<Balance | null>(null);
  readonly #inventory = new Store<number | null>(null);

  constructor(options: ConnectOptions) {
    super(options, PLAYER);
    this.balance = this.#balance;
    this.inventoryVersion = this.#inventory;
    this.api = new CyberHubApi({
      url: options.url,
      getToken: options.getToken,
      timeoutMs: options.httpTimeoutMs,
      fetch: options.fetch,
      onBalance: (balance, version) => this.#applyBalance(balance, version),
    });
    this.start();
  }

  // Always sent, empty at first: then the first connect also brings the inventory version
  // (`inventory:updated`) besides the balance, and every later one only what was missed.
  protected override handshakeExtras(): Record<string, unknown> {
    const positions: Record<string, number> = {};
    const shown = this.#balance.get();
    if (shown) positions.balance = shown.version;
    const inventory = this.#inventory.get();
    if (inventory !== null) positions.inventory = inventory;
    return { positions };
  }

  protected override userChanged(): void {
    this.#balance.set(null);
    this.#inventory.set(null);
  }

  protected override onServerEvent(event: string, payload: unknown): void {
    if (event === "cases:updated") {
      this.emit("cases", undefined);
    } else if (event.startsWith("balance:updated:")) {
      if (!this.#isMine(event, "balance:updated:")) return;
      const body = payload as Partial<Schemas["BalanceUpdatedEvent"]> | undefined;
      if (typeof body?.balance === "number" && typeof body.version === "number") this.#applyBalance(body.balance, body.version);
    } else if (event.startsWith("inventory:updated:")) {
      if (!this.#isMine(event, "inventory:updated:")) return;
      const version = (payload as Partial<Schemas["InventoryUpdatedEvent"]> | undefined)?.version;
      const known = typeof version === "number" ? version : null;
      const shown = this.#inventory.get();
      if (known !== null && (shown === null || known > shown)) this.#inventory.set(known);
      this.emit("inventory", { version: known });
    } else if (event === "sync") {
      this.emit("sync", { recovered: (payload as { recovered?: unknown } | undefined)?.recovered === true });
    }
  }

  #isMine(event: string, prefix: string): boolean {
    return this.userId === null || event.slice(prefix.length) === this.userId;
  }

  #applyBalance(balance: number, version: number): void {
    const shown = this.#balance.get();
    if (shown && version <= shown.version) return;
    this.#balance.set({ balance, cents: Math.round(balance * 100), version });
  }
}

/** Connects at once; see `ConnectOptions`. Call `close()` when done (e.g. at logout). */
export function connect(options: ConnectOptions): CyberHubClient {
  return new CyberHubClient(options);
}
