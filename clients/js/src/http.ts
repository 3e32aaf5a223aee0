// Typed calls of the player API. Every type comes from src/api.gen.ts, which openapi-typescript
// generates from the server's docs/openapi.json (a test fails while it is stale).

import type { components, operations } from "./api.gen.js";

export type Schemas = components["schemas"];
export type Case = Schemas["Case"];
export type Item = Schemas["Item"];
export type User = Schemas["User"];
export type Fair = Schemas["Fair"];
export type InventoryEntry = Schemas["InventoryEntry"];
export type InventoryStatus = Schemas["InventoryStatus"];
export type ActiveSeedPair = Schemas["ActiveSeedPair"];
export type RevealedSeedPair = Schemas["RevealedSeedPair"];
export type SeedPairHistoryEntry = Schemas["SeedPairHistoryEntry"];
export type ErrorEnvelope = Schemas["Error"];

/** The body of an operation's 200 (or 201) answer, without the `success: true` every one carries. */
export type Ok<Op extends keyof operations> = operations[Op]["responses"] extends {
  200: { content: { "application/json": infer Body } };
}
  ? Omit<Body, "success">
  : operations[Op]["responses"] extends { 201: { content: { "application/json": infer Body } } }
    ? Omit<Body, "success">
    : never;
/** An operation's query parameters. */
export type Query<Op extends keyof operations> = operations[Op]["parameters"]["query"];
/** An operation's JSON request body. */
export type Body<Op extends keyof operations> = operations[Op] extends {
  requestBody: { content: { "application/json": infer B } };
}
  ? B
  : never;

export type OpenCaseResult = Ok<"openCase">;
export type ClaimResult = Ok<"claimItem">;
export type InventoryPage = Ok<"listInventory">;
export type InventoryQuery = NonNullable<Query<"listInventory">>;
export type FairHistoryPage = Ok<"getFairHistory">;
export type FairHistoryQuery = NonNullable<Query<"getFairHistory">>;
export type FairRotation = Ok<"rotateServerSeed">;

/**
 * The `code` of the error envelope. The documented ones are listed for completion in editors;
 * branch on `code`, never on the message. `network_error` (no answer at all, or a timeout) and
 * `bad_response` (an answer that is not the envelope, e.g. a proxy's HTML page) are the client's own.
 */
export type ErrorCode =
  | "invalid_json"
  | "invalid_body"
  | "invalid_id"
  | "invalid_query"
  | "invalid_cursor"
  | "unauthorized"
  | "forbidden"
  | "blocked"
  | "not_found"
  | "not_owned"
  | "invalid_transition"
  | "payload_too_large"
  | "insufficient_balance"
  | "rate_limited"
  | "unavailable"
  | "network_error"
  | "bad_response"
  | (string & {});

/** Every failed call rejects with this: the server's error envelope, typed. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  /** HTTP status; 0 when no answer came (`network_error`). */
  readonly status: number;
  readonly code: ErrorCode;
  /** Seconds, from `Retry-After` (429 `rate_limited`, 503 `unavailable`); null when absent. */
  readonly retryAfter: number | null;
  /** The parsed envelope, when the server sent one. */
  readonly envelope: ErrorEnvelope | null;

  constructor(status: number, code: ErrorCode, message: string, retryAfter: number | null, envelope: ErrorEnvelope | null, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.envelope = envelope;
  }
}

export function isApiError(value: unknown, code?: ErrorCode): value is ApiError {
  return value instanceof ApiError && (code === undefined || value.code === code);
}

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface ApiOptions {
  /** The server (or nginx) base URL, e.g. `https://club.example.com`. */
  url: string;
  /** Returns the player's JWT; called for every request that needs one. */
  getToken?: TokenSource;
  /** Per-request timeout, default 10 s. */
  timeoutMs?: number;
  /** Another `fetch` (tests, SSR). */
  fetch?: typeof fetch;
  /** Called with every balance an answer carries (open, claim, me), so a live view can use it at once. */
  onBalance?: (balance: number, version: number) => void;
}

function isEnvelope(body: unknown): body is ErrorEnvelope {
  return (
    typeof body === "object" &&
    body !== null &&
    (body as ErrorEnvelope).success === false &&
    typeof (body as ErrorEnvelope).code === "string" &&
    typeof (body as ErrorEnvelope).error === "string"
  );
}

export function queryString(query: Record<string, string | number | undefined | null> | undefined): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export class CyberHubApi {
  readonly #base: string;
  readonly #getToken: TokenSource | undefined;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #onBalance: ((balance: number, version: number) => void) | undefined;

  constructor(options: ApiOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#getToken = options.getToken;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#onBalance = options.onBalance;
  }

  /** One call: resolves with the answer's body (without `success`), rejects with an `ApiError`. */
  async request<T>(method: string, path: string, options: { body?: unknown; auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (options.auth !== false && this.#getToken) {
      const token = await this.#getToken();
      if (token) headers.authorization = `Bearer ${token}`;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const where = `${method} ${path}`;
    let response: Response;
    try {
      response = await this.#fetch(`${this.#base}${path}`, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new ApiError(0, "network_error", `${where}: no answer (${(err as Error)?.message ?? err})`, null, null, err);
    }
    const text = await response.text().catch(() => "");
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.ok && typeof parsed === "object" && parsed !== null && (parsed as { success?: unknown }).success === true) {
      const { success: _success, ...rest } = parsed as Record<string, unknown>;
      this.#noticeBalance(rest);
      return rest as T;
    }
    const retryHeader = response.headers.get("retry-after");
    const retryAfter = retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : null;
    if (isEnvelope(parsed)) {
      throw new ApiError(response.status, parsed.code, `${where}: ${parsed.error}`, retryAfter, parsed);
    }
    throw new ApiError(response.status, "bad_response", `${where}: HTTP ${response.status} without the error envelope`, retryAfter, null);
  }

  #noticeBalance(body: Record<string, unknown>): void {
    const source = (typeof body.user === "object" && body.user !== null ? body.user : body) as Record<string, unknown>;
    if (this.#onBalance && typeof source.balance === "number" && typeof source.balanceVersion === "number") {
      this.#onBalance(source.balance, source.balanceVersion);
    }
  }

  /** The caller: id, role, balance with its version, inventory version. */
  async me(): Promise<User> {
    return (await this.request<Ok<"getMe">>("GET", "/api/me")).user;
  }

  /** Every active case with its items. */
  async cases(): Promise<Case[]> {
    return (await this.request<Ok<"listCases">>("GET", "/api/cases", { auth: false })).cases;
  }

  async case(id: string): Promise<Case> {
    return (await this.request<Ok<"getCase">>("GET", `/api/cases/${encodeURIComponent(id)}`, { auth: false })).case;
  }

  /** Opens a case: the item won, the new balance and the `fair` record to verify it with later. */
  openCase(caseId: string): Promise<OpenCaseResult> {
    return this.request("POST", "/api/cases/open", { body: { caseId } });
  }

  /** One page of the inventory, newest first; pass the page's `nextCursor` for the next. */
  inventory(query: InventoryQuery = {}): Promise<InventoryPage> {
    return this.request("GET", `/api/inventory${queryString(query)}`);
  }

  /** Every page of the inventory in turn, from the newest, until `nextCursor` is null. */
  inventoryPages(query: Omit<InventoryQuery, "cursor"> = {}): AsyncGenerator<InventoryPage> {
    return this.#pages((cursor) => this.inventory({ ...query, cursor }));
  }

  /** Turns an owned money item into balance. */
  claim(inventoryItemId: string): Promise<ClaimResult> {
    return this.request("POST", "/api/inventory/claim", { body: { inventoryItemId } });
  }

  /** The active seed pair (its server seed still secret) and the next pair's commitment. */
  fair(): Promise<ActiveSeedPair> {
    return this.request("GET", "/api/fair");
  }

  /** Starts a new pair with this client seed; the answer reveals the retired pair's server seed. */
  setClientSeed(clientSeed: string): Promise<FairRotation> {
    return this.request("PUT", "/api/fair/client-seed", { body: { clientSeed } });
  }

  /** Retires the active pair (revealing its server seed) and starts the pre-committed next one. */
  rotateSeed(): Promise<FairRotation> {
    return this.request("POST", "/api/fair/rotate");
  }

  fairHistory(query: FairHistoryQuery = {}): Promise<FairHistoryPage> {
    return this.request("GET", `/api/fair/history${queryString(query)}`);
  }

  fairHistoryPages(query: Omit<FairHistoryQuery, "cursor"> = {}): AsyncGenerator<FairHistoryPage> {
    return this.#pages((cursor) => this.fairHistory({ ...query, cursor }));
  }

  /** The revealed server seed of the pair committed to by `serverSeedHash`; null while that pair is active. */
  async revealedServerSeed(serverSeedHash: string): Promise<string | null> {
    for await (const page of this.fairHistoryPages({ limit: 100 })) {
      const pair = page.pairs.find((p) => p.serverSeedHash === serverSeedHash);
      if (pair) return pair.serverSeed ?? null;
    }
    return null;
  }

  async *#pages<P extends { nextCursor?: string | null }>(fetchPage: (cursor: string | undefined) => Promise<P>): AsyncGenerator<P> {
    let cursor: string | undefined;
    for (;;) {
      const page = await fetchPage(cursor);
      yield page;
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }
}

export function createApi(options: ApiOptions): CyberHubApi {
  return new CyberHubApi(options);
}
