// The connection machinery every live client shares, on whichever namespace: authenticates in the
// handshake, refreshes the token in band before it expires (`auth:refresh`), reconnects with
// jittered backoff, reports `session:ended` and stops for good after a final one. The player
// client (`connect`, namespace `/`) and the operators' one (`connectAdmin`, namespace `/admin`)
// add their own handshake fields and events on top.

import { io, type Socket } from "socket.io-client";
import type { components } from "./api.gen.js";
import type { TokenSource } from "./http.js";
import { Emitter, Store, type Readable } from "./store.js";
import { readClaims } from "./token.js";

type Schemas = components["schemas"];
export type SessionEndReason = Schemas["SessionEndedEvent"]["reason"];

export type ConnectionStatus =
  /** The first connect is under way. */
  | "connecting"
  | "connected"
  /** Lost or ended by the server (drain, expiry, refusal); trying again. */
  | "reconnecting"
  /** For good: `kicked`, `blocked`, a final refusal (`forbidden` on `/admin`), or `close()`. */
  | "ended";

export interface ConnectionState {
  status: ConnectionStatus;
  /**
   * Why the last session ended: a `session:ended` reason, `forbidden` (an `/admin` connect refused
   * to a token without the admin role), `closed` after `close()`, or null. With status `ended` it
   * is the final reason.
   */
  reason: SessionEndReason | "forbidden" | "closed" | null;
  /** The last connect refusal or error message (`unauthorized`, `rate_limited`, `xhr poll error`…), or null. */
  error: string | null;
  /** How many times the socket has connected so far. */
  connects: number;
}

/** The events every live client emits. */
export interface ConnectionEvents {
  /** The server ended the session (`session:ended`); `final` when the client will not reconnect. */
  ended: { reason: SessionEndReason; final: boolean };
  /** The token was refreshed in band; `exp` is the new deadline (Unix seconds). */
  refreshed: { exp: number };
  /** Something went wrong that the client handles by itself (a refresh refused, a refused connect). */
  error: Error;
}

/** The options every live client takes. */
export interface ConnectionOptions {
  /** The server (or nginx) base URL, e.g. `https://club.example.com`; `""` for the page's own origin. */
  url: string;
  /**
   * Returns the JWT. Called before every connect and before every refresh, so return a fresh one
   * when the current one is close to its `exp`.
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
}

/** What a subclass decides: its namespace, and which endings and refusals are final. */
export interface ConnectionSetup {
  /** `/` for players, `/admin` for the operators' console. */
  namespace: string;
  /** `session:ended` reasons after which the client does not reconnect. */
  finalEnds: ReadonlySet<SessionEndReason>;
  /** `connect_error` messages after which the client does not retry. */
  finalRefusals: ReadonlySet<string>;
}

const ACK_TIMEOUT_MS = 10_000;

export function jitter(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()));
}

function withNamespace(url: string, namespace: string): string {
  if (namespace === "/" || namespace === "") return url;
  return `${url.replace(/\/+$/, "")}${namespace.startsWith("/") ? namespace : `/${namespace}`}`;
}

export abstract class Connection<Events extends ConnectionEvents> extends Emitter<Events> {
  readonly connection: Readable<ConnectionState>;

  readonly #connection = new Store<ConnectionState>({ status: "connecting", reason: null, error: null, connects: 0 });
  readonly #socket: Socket;
  readonly #setup: ConnectionSetup;
  readonly #options: Required<Pick<ConnectionOptions, "refreshLeewaySeconds" | "reconnectDelayMs" | "reconnectDelayMaxMs">>;
  readonly #getToken: TokenSource | undefined;
  #token: string | null = null;
  #userId: string | null = null;
  #exp: number | null = null;
  #attempt = 0;
  #ended = false;
  #lastEnd: SessionEndReason | null = null;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  protected constructor(options: ConnectionOptions, setup: ConnectionSetup) {
    super();
    this.connection = this.#connection;
    this.#setup = setup;
    this.#getToken = options.getToken;
    this.#options = {
      refreshLeewaySeconds: options.refreshLeewaySeconds ?? 60,
      reconnectDelayMs: options.reconnectDelayMs ?? 500,
      reconnectDelayMaxMs: options.reconnectDelayMaxMs ?? 10_000,
    };
    this.#socket = io(withNamespace(options.url, setup.namespace), {
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
      // Called on every (re)connect: a fresh token, plus what the subclass adds (a player's
      // positions, so the server sends only what this client lacks).
      auth: (send) => {
        void this.#handshake().then(send);
      },
    });
    this.#socket.on("connect", () => this.#onConnect());
    this.#socket.on("disconnect", (reason) => this.#onDisconnect(reason));
    this.#socket.on("connect_error", (err) => this.#onConnectError(err));
    this.#socket.onAny((event: string, payload: unknown) => this.#onEvent(event, payload));
  }

  /** Connects; called by the subclass once its own fields are set. */
  protected start(): void {
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

  /** The handshake fields besides `token` (only sent with a token). */
  protected handshakeExtras(): Record<string, unknown> {
    return {};
  }

  /** The token changed to another user's (`from` was not null): drop what belonged to `from`. */
  protected userChanged(_from: string, _to: string): void {}

  /** Every server event other than `session:ended`. */
  protected abstract onServerEvent(event: string, payload: unknown): void;

  /** Emits one of the events every client has (the subclass's event map includes them). */
  protected emitConnectionEvent<K extends keyof ConnectionEvents>(event: K, payload: ConnectionEvents[K]): void {
    (this.emit as (event: K, payload: ConnectionEvents[K]) => void).call(this, event, payload);
  }

  async #handshake(): Promise<Record<string, unknown>> {
    if (this.#getToken) {
      try {
        this.#useToken((await this.#getToken()) ?? null);
      } catch (err) {
        // The last token is tried: a refusal comes back as `unauthorized` and is retried.
        this.emitConnectionEvent("error", new Error(`getToken failed before connecting: ${(err as Error)?.message ?? err}`, { cause: err }));
      }
    }
    if (!this.#token) return {};
    return { token: this.#token, ...this.handshakeExtras() };
  }

  #useToken(token: string | null): void {
    this.#token = token;
    const claims = token ? readClaims(token) : { sub: null, exp: null };
    if (this.#userId !== null && claims.sub !== null && claims.sub !== this.#userId) {
      // Another user on this client: nothing shown belongs to them.
      this.userChanged(this.#userId, claims.sub);
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
    if (this.#setup.finalRefusals.has(err.message)) {
      if (err.message === "blocked") {
        this.emitConnectionEvent("ended", { reason: "blocked", final: true });
        this.#end("blocked");
      } else {
        this.emitConnectionEvent("error", new Error(`connect refused for good: ${err.message}`, { cause: err }));
        this.#end(err.message === "forbidden" ? "forbidden" : "closed");
      }
      return;
    }
    this.emitConnectionEvent("error", new Error(`connect refused: ${err.message}`, { cause: err }));
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
    if (event !== "session:ended") {
      this.onServerEvent(event, payload);
      return;
    }
    const reason = (payload as { reason?: SessionEndReason } | undefined)?.reason;
    if (typeof reason !== "string") return;
    const final = this.#setup.finalEnds.has(reason);
    this.#lastEnd = reason;
    this.emitConnectionEvent("ended", { reason, final });
    if (final) this.#end(reason);
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
      this.emitConnectionEvent("refreshed", { exp: answer.exp });
      this.#scheduleRefresh();
    } catch (err) {
      this.#token = previous;
      this.emitConnectionEvent("error", err instanceof Error ? err : new Error(String(err)));
      // Try again soon; should the deadline pass meanwhile, the server ends the session with
      // `token_expired` and the reconnect brings a fresh token.
      clearTimeout(this.#refreshTimer);
      if (!this.#ended) this.#refreshTimer = setTimeout(() => void this.#refresh(), jitter(5_000));
    }
  }

  #end(reason: ConnectionState["reason"] & string): void {
    this.#ended = true;
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#reconnectTimer);
    this.#socket.disconnect();
    this.#setConnection({ status: "ended", reason });
  }
}
