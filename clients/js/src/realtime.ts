// The live connection: authenticates in the handshake, refreshes the token in band before it
// expires, reconnects with jittered backoff sending the versions it already shows (the server then
// sends only what is behind), keeps the highest balance version, and stops for good after
// `kicked` or `blocked`. The wire protocol is the `x-socketio` part of docs/openapi.json.

import { io, type Socket } from "socket.io-client";
import type { components } from "./api.gen.js";
import { CyberHubApi, type TokenSource } from "./http.js";
import { Emitter, Store, type Readable } from "./store.js";
import { readClaims } from "./token.js";

type Schemas = components["schemas"];
export type SessionEndReason = Schemas["SessionEndedEvent"]["reason"];

/** A balance as shown: the server's major units, the same in exact cents, and its version. */
export interface Balance {
  /** Major units as the server sends them (12.5 is 12.50). */
  balance: number;
  /** The same amount in integer cents: use this for arithmetic and formatting. */
  cents: number;
  /** Grows by one with every change; a lower one than shown is never applied. */
  version: number;
}

export type ConnectionStatus =
  /** The first connect is under way. */
  | "connecting"
  | "connected"
  /** Lost or ended by the server (drain, expiry, refusal); trying again. */
  | "reconnecting"
  /** For good: `kicked`, `blocked`, or `close()`. */
  | "ended";

export interface ConnectionState {
  status: ConnectionStatus;
  /**
   * Why the last session ended: a `session:ended` reason, `closed` after `close()`, or null.
   * With status `ended` it is the final reason.
   */
  reason: SessionEndReason | "closed" | null;
  /** The last connect refusal or error message (`unauthorized`, `rate_limited`, `xhr poll error`…), or null. */
  error: string | null;
  /** How many times the socket has connected so far. */
  connects: number;
}

export interface ClientEvents {
  /** The inventory changed: refetch it (`api.inventory()`). `version` is null from old replicas. */
  inventory: { version: number | null };
  /** The case catalogue changed: refetch it (`api.cases()`). */
  cases: undefined;
  /** After a reconnect: `recovered` is true when nothing had been missed. */
  sync: { recovered: boolean };
  /** The server ended the session (`session:ended`); `final` when the client will not reconnect. */
  ended: { reason: SessionEndReason; final: boolean };
  /** The token was refreshed in band; `exp` is the new deadline (Unix seconds). */
  refreshed: { exp: number };
  /** Something went wrong that the client handles by itself (a refresh refused, a refused connect). */
  error: Error;
}

export interface ConnectOptions {
  /** The server (or nginx) base URL, e.g. `https://club.example.com`. */
  url: string;
  /**
   * Returns the player's JWT. Called before every connect and before every refresh, so return a
   * fresh one when the current one is close to its `exp`. Leave it out to connect anonymously
   * (`cases` events only).
   */
  getToken?: TokenSource;
  /** Refresh this many seconds before `exp` (at the latest at half the token's remaining life). Default 60. */
  refreshLeewaySeconds?: number;
  /** First reconnect delay, default 500 ms; doubles per failed attempt, with ±50% jitter. */
  reconnectDelayMs?: number;
  /** Largest reconnect delay, default 10 s. */
  reconnectDelayMaxMs?: number;
  /** Default websocket first, then polling. */
  transports?: ("websocket" | "polling" | "webtransport")[];
  /** Socket.IO path, default `/socket.io/`. */
  path?: string;
  /** Cross-origin polling through nginx needs the stickiness cookie: set true (and `CORS_ORIGINS`). */
  withCredentials?: boolean;
  /** Per-request timeout of the HTTP calls, default 10 s. */
  httpTimeoutMs?: number;
  /** Another `fetch` for the HTTP calls. */
  fetch?: typeof fetch;
}

const FINAL_REASONS: ReadonlySet<SessionEndReason> = new Set(["kicked", "blocked"]);
const ACK_TIMEOUT_MS = 10_000;

function jitter(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()));
}

export class CyberHubClient extends Emitter<ClientEvents> {
  /** The balance shown, or null until the first snapshot. Never goes back to an older version. */
  readonly balance: Readable<Balance | null>;
  /** The highest inventory version seen (also the position sent on reconnect), or null. */
  readonly inventoryVersion: Readable<number | null>;
  readonly connection: Readable<ConnectionState>;
  /** Typed HTTP calls with the same URL and token; balances they return update `balance` too. */
  readonly api: CyberHubApi;

  readonly #balance = new Store<Balance | null>(null);
  readonly #inventory = new Store<number | null>(null);
  readonly #connection = new Store<ConnectionState>({ status: "connecting", reason: null, error: null, connects: 0 });
  readonly #socket: Socket;
  readonly #options: Required<Pick<ConnectOptions, "refreshLeewaySeconds" | "reconnectDelayMs" | "reconnectDelayMaxMs">>;
  readonly #getToken: TokenSource | undefined;
  #token: string | null = null;
  #userId: string | null = null;
  #exp: number | null = null;
  #attempt = 0;
  #ended = false;
  #lastEnd: SessionEndReason | null = null;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ConnectOptions) {
    super();
    this.balance = this.#balance;
    this.inventoryVersion = this.#inventory;
    this.connection = this.#connection;
    this.#getToken = options.getToken;
    this.#options = {
      refreshLeewaySeconds: options.refreshLeewaySeconds ?? 60,
      reconnectDelayMs: options.reconnectDelayMs ?? 500,
      reconnectDelayMaxMs: options.reconnectDelayMaxMs ?? 10_000,
    };
    this.api = new CyberHubApi({
      url: options.url,
      getToken: options.getToken,
      timeoutMs: options.httpTimeoutMs,
      fetch: options.fetch,
      onBalance: (balance, version) => this.#applyBalance(balance, version),
    });
    this.#socket = io(options.url, {
      path: options.path,
      transports: options.transports ?? ["websocket", "polling"],
      withCredentials: options.withCredentials,
      forceNew: true,
      autoConnect: false,
      // Transport losses (a replica killed, the network gone) are retried by socket.io's manager
      // with the same jittered backoff; what the server ends or refuses is retried below.
      reconnection: true,
      reconnectionDelay: this.#options.reconnectDelayMs,
      reconnectionDelayMax: this.#options.reconnectDelayMaxMs,
      randomizationFactor: 0.5,
      // Called on every (re)connect: a fresh token and the versions shown, so the server sends
      // only what this client lacks.
      auth: (send) => {
        void this.#handshake().then(send);
      },
    });
    this.#socket.on("connect", () => this.#onConnect());
    this.#socket.on("disconnect", (reason) => this.#onDisconnect(reason));
    this.#socket.on("connect_error", (err) => this.#onConnectError(err));
    this.#socket.onAny((event: string, payload: unknown) => this.#onEvent(event, payload));
    this.#socket.connect();
  }

  /** The socket.io-client socket underneath, for diagnostics. Do not emit on it. */
  get socket(): Socket {
    return this.#socket;
  }

  /** The user id the current token is for (its `sub`), or null when anonymous. */
  get userId(): string | null {
    return this.#userId;
  }

  /** Stops for good: no more reconnects or refreshes. */
  close(): void {
    this.#end("closed");
  }

  async #handshake(): Promise<Record<string, unknown>> {
    if (this.#getToken) {
      try {
        this.#useToken((await this.#getToken()) ?? null);
      } catch (err) {
        // The last token is tried: a refusal comes back as `unauthorized` and is retried.
        this.emit("error", new Error(`getToken failed before connecting: ${(err as Error)?.message ?? err}`, { cause: err }));
      }
    }
    if (!this.#token) return {};
    // Always sent, empty at first: then the first connect also brings the inventory version
    // (`inventory:updated`) besides the balance, and every later one only what was missed.
    const positions: Record<string, number> = {};
    const shown = this.#balance.get();
    if (shown) positions.balance = shown.version;
    const inventory = this.#inventory.get();
    if (inventory !== null) positions.inventory = inventory;
    return { token: this.#token, positions };
  }

  #useToken(token: string | null): void {
    this.#token = token;
    const claims = token ? readClaims(token) : { sub: null, exp: null };
    if (this.#userId !== null && claims.sub !== null && claims.sub !== this.#userId) {
      // Another player on this client: nothing shown belongs to them.
      this.#balance.set(null);
      this.#inventory.set(null);
    }
    this.#userId = claims.sub;
    this.#exp = claims.exp;
  }

  #setConnection(patch: Partial<ConnectionState>): void {
    this.#connection.set({ ...this.#connection.get(), ...patch });
  }

  #onConnect(): void {
    this.#attempt = 0;
    const { connects } = this.#connection.get();
    this.#setConnection({ status: "connected", error: null, connects: connects + 1 });
    this.#scheduleRefresh();
  }

  #onDisconnect(reason: Socket.DisconnectReason): void {
    clearTimeout(this.#refreshTimer);
    if (this.#ended) return;
    const ended = this.#lastEnd;
    this.#lastEnd = null;
    this.#setConnection({ status: "reconnecting", reason: ended ?? this.#connection.get().reason });
    if (reason !== "io server disconnect") return; // the manager reconnects by itself
    // socket.io-client treats a disconnect by the server as final: reconnect here. A drain
    // already spreads its sockets over its window, so only a little jitter is added.
    const delay = ended === "draining" || ended === "token_expired" ? Math.random() * this.#options.reconnectDelayMs : this.#backoff();
    this.#reconnectLater(delay);
  }

  #onConnectError(err: Error): void {
    if (this.#ended) return;
    this.#setConnection({ status: this.#connection.get().connects ? "reconnecting" : "connecting", error: err.message });
    // `active`: the manager is retrying a transport failure by itself. Otherwise the server's
    // middleware refused the connect, and socket.io-client leaves the retry to us.
    if (this.#socket.active) return;
    if (err.message === "blocked") {
      this.emit("ended", { reason: "blocked", final: true });
      this.#end("blocked");
      return;
    }
    this.emit("error", new Error(`connect refused: ${err.message}`, { cause: err }));
    this.#reconnectLater(this.#backoff());
  }

  #backoff(): number {
    const delay = Math.min(this.#options.reconnectDelayMaxMs, this.#options.reconnectDelayMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return jitter(delay);
  }

  #reconnectLater(delayMs: number): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      if (!this.#ended && !this.#socket.connected && !this.#socket.active) this.#socket.connect();
    }, delayMs);
  }

  #onEvent(event: string, payload: unknown): void {
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
    } else if (event === "session:ended") {
      const reason = (payload as { reason?: SessionEndReason } | undefined)?.reason;
      if (typeof reason !== "string") return;
      const final = FINAL_REASONS.has(reason);
      this.#lastEnd = reason;
      this.emit("ended", { reason, final });
      if (final) this.#end(reason);
    }
  }

  #isMine(event: string, prefix: string): boolean {
    return this.#userId === null || event.slice(prefix.length) === this.#userId;
  }

  #applyBalance(balance: number, version: number): void {
    const shown = this.#balance.get();
    if (shown && version <= shown.version) return;
    this.#balance.set({ balance, cents: Math.round(balance * 100), version });
  }

  #scheduleRefresh(): void {
    clearTimeout(this.#refreshTimer);
    if (!this.#getToken || this.#exp === null || this.#ended) return;
    const remainingMs = this.#exp * 1000 - Date.now();
    const delay = Math.max(remainingMs - this.#options.refreshLeewaySeconds * 1000, remainingMs / 2, 1000);
    // setTimeout's limit is 2^31-1 ms (24.8 days).
    this.#refreshTimer = setTimeout(() => void this.#refresh(), Math.min(delay, 2 ** 31 - 1));
  }

  async #refresh(): Promise<void> {
    if (this.#ended || !this.#socket.connected || !this.#getToken) return;
    const previous = this.#token;
    try {
      const token = (await this.#getToken()) ?? null;
      if (!token) throw new Error("getToken returned no token");
      const answer = (await this.#socket.timeout(ACK_TIMEOUT_MS).emitWithAck("auth:refresh", { token })) as Schemas["AuthRefreshAck"];
      if (!answer.ok) throw new Error(`auth:refresh refused: ${answer.error}`);
      this.#useToken(token);
      this.#exp = answer.exp;
      this.emit("refreshed", { exp: answer.exp });
      this.#scheduleRefresh();
    } catch (err) {
      this.#token = previous;
      this.emit("error", err instanceof Error ? err : new Error(String(err)));
      // Try again soon; should the deadline pass meanwhile, the server ends the session with
      // `token_expired` and the reconnect brings a fresh token.
      clearTimeout(this.#refreshTimer);
      if (!this.#ended) this.#refreshTimer = setTimeout(() => void this.#refresh(), jitter(5_000));
    }
  }

  #end(reason: SessionEndReason | "closed"): void {
    this.#ended = true;
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#reconnectTimer);
    this.#socket.disconnect();
    this.#setConnection({ status: "ended", reason });
  }
}

/** Connects at once; see `ConnectOptions`. Call `close()` when done (e.g. at logout). */
export function connect(options: ConnectOptions): CyberHubClient {
  return new CyberHubClient(options);
}
