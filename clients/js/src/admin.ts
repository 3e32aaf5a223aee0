// The operators' side: `connectAdmin` connects to the admin-only namespace `/admin` with the same
// machinery as a player's client (token in the handshake, in-band refresh, jittered reconnect,
// `session:ended`), exposes its `online` snapshots and credited `payment`s typed, and carries the
// admin HTTP calls the console makes (`AdminApi`), typed from the generated OpenAPI types. A
// refusal of the token's role (`forbidden`) is final; so is `kicked` or `blocked`. The operators'
// console (/console) is built on it.

import { Connection, type ConnectionEvents, type ConnectionOptions, type SessionEndReason } from "./connection.js";
import { CyberHubApi, queryString, type Body, type Ok, type Query, type Schemas } from "./http.js";
import { Store, type Readable } from "./store.js";

/** One replica's counts in an `online` snapshot. */
export interface ReplicaCounts {
  replica: string;
  sockets: number;
  users: number;
  /** RFC 3339. */
  updatedAt: string;
}

/** `online` on `/admin`, every second from each replica a console socket is on (x-socketio `adminNamespace`). */
export interface OnlineSnapshot {
  /** The replica that sent it (`eventsPerSecond` and `lag` are this replica's). */
  replica: string;
  /** RFC 3339. */
  at: string;
  /** Sockets on every live replica. */
  sockets: number;
  /** Distinct authenticated users across the cluster. */
  users: number;
  replicas: ReplicaCounts[];
  /** False when Redis could not be read: the counts are then the sending replica's alone. */
  clusterKnown: boolean;
  /** The bus state: `disabled` without Redis, `up`, or `down`/`reconnecting` while it is lost. */
  bus: string;
  eventsPerSecond: { published: number; delivered: number };
  /** Remote delivery lag over the last `windowSeconds`; `meanMs`/`p99Ms` null without remote deliveries. */
  lag: { samples: number; meanMs: number | null; p99Ms: number | null; windowSeconds: number };
  draining: boolean;
}

/** `payment` on `/admin`: a payment was credited (the first `success` of its `paymentId`). */
export interface PaymentEvent {
  userId: string;
  paymentId: string;
  /** Major units, as everywhere in the API. */
  amount: number;
  /** RFC 3339. */
  at: string;
}

export interface AdminEvents extends ConnectionEvents {
  /** Every snapshot as it arrives (also in `online`, the latest one). */
  online: OnlineSnapshot;
  /** A payment credited anywhere in the cluster. */
  payment: PaymentEvent;
}

export interface AdminConnectOptions extends ConnectionOptions {
  /** Returns an admin JWT (`cyberhub token --role admin`); called before every connect and refresh. */
  getToken: NonNullable<ConnectionOptions["getToken"]>;
  /** Per-request timeout of the HTTP calls, default 10 s. */
  httpTimeoutMs?: number;
  /** Another `fetch` for the HTTP calls. */
  fetch?: typeof fetch;
}

export type AdminUser = Schemas["AdminUser"];
export type CaseInput = Body<"createCase">;
export type CaseResult = Ok<"createCase">;
export type WithdrawalRequest = Schemas["WithdrawalRequest"];
export type WithdrawalsPage = Ok<"listWithdrawals">;
export type WithdrawalsQuery = NonNullable<Query<"listWithdrawals">>;
export type TransactionsPage = Ok<"listUserTransactions">;
export type TransactionsQuery = NonNullable<Query<"listUserTransactions">>;
export type UserInventoryPage = Ok<"listUserInventory">;
export type UserInventoryQuery = NonNullable<Query<"listUserInventory">>;
export type UserFairHistoryPage = Ok<"getUserFairHistory">;
export type UserFairHistoryQuery = NonNullable<Query<"getUserFairHistory">>;
export type SessionsResult = Ok<"userSessions">;
export type DisconnectResult = Ok<"disconnectUser">;
export type BlockRequest = Body<"blockUser">;
export type InventoryStatusResult = Ok<"setInventoryStatus">;

const id = (value: string) => encodeURIComponent(value);

/** The player API plus the admin calls (tag `Admin`); every one needs an admin token. */
export class AdminApi extends CyberHubApi {
  createCase(draft: CaseInput): Promise<CaseResult> {
    return this.request("POST", "/api/admin/cases", { body: draft });
  }

  replaceCase(caseId: string, draft: Body<"replaceCase">): Promise<Ok<"replaceCase">> {
    return this.request("PUT", `/api/admin/cases/${id(caseId)}`, { body: draft });
  }

  setCasePrice(caseId: string, price: Body<"setCasePrice">["price"]): Promise<Ok<"setCasePrice">> {
    return this.request("PUT", `/api/admin/cases/${id(caseId)}/price`, { body: { price } });
  }

  deleteCase(caseId: string): Promise<Ok<"deleteCase">> {
    return this.request("DELETE", `/api/admin/cases/${id(caseId)}`);
  }

  /** The `withdraw_requested` queue, oldest request first. */
  withdrawals(query: WithdrawalsQuery = {}): Promise<WithdrawalsPage> {
    return this.request("GET", `/api/admin/withdrawals${queryString(query)}`);
  }

  /** Settles a withdrawal (`delivered`, or back to `owned`) or moves any item along its flow. */
  setInventoryStatus(inventoryItemId: string, status: Body<"setInventoryStatus">["status"]): Promise<InventoryStatusResult> {
    return this.request("PUT", `/api/inventory/${id(inventoryItemId)}/status`, { body: { status } });
  }

  async user(userId: string): Promise<AdminUser> {
    return (await this.request<Ok<"getUser">>("GET", `/api/admin/users/${id(userId)}`)).user;
  }

  userTransactions(userId: string, query: TransactionsQuery = {}): Promise<TransactionsPage> {
    return this.request("GET", `/api/admin/users/${id(userId)}/transactions${queryString(query)}`);
  }

  userInventory(userId: string, query: UserInventoryQuery = {}): Promise<UserInventoryPage> {
    return this.request("GET", `/api/admin/users/${id(userId)}/inventory${queryString(query)}`);
  }

  userFairHistory(userId: string, query: UserFairHistoryQuery = {}): Promise<UserFairHistoryPage> {
    return this.request("GET", `/api/admin/users/${id(userId)}/fair/history${queryString(query)}`);
  }

  /** The user's live sockets across the cluster. */
  userSessions(userId: string): Promise<SessionsResult> {
    return this.request("GET", `/api/admin/users/${id(userId)}/sessions`);
  }

  /** Ends the user's sessions (`session:ended` `kicked`) on every replica. */
  disconnectUser(userId: string): Promise<DisconnectResult> {
    return this.request("POST", `/api/admin/users/${id(userId)}/disconnect`);
  }

  /** Blocks (ending their sessions with `blocked`) or unblocks the user. */
  async blockUser(userId: string, request: BlockRequest): Promise<AdminUser> {
    return (await this.request<Ok<"blockUser">>("PUT", `/api/admin/users/${id(userId)}/block`, { body: request })).user;
  }
}

const ADMIN = {
  namespace: "/admin",
  finalEnds: new Set<SessionEndReason>(["kicked", "blocked"]),
  // `forbidden`: the token is valid but not an admin's; asking again with it changes nothing.
  finalRefusals: new Set(["forbidden", "blocked"]),
};

export class AdminClient extends Connection<AdminEvents> {
  /** The latest `online` snapshot, or null until the first. */
  readonly online: Readable<OnlineSnapshot | null>;
  /** Typed admin HTTP calls with the same URL and token. */
  readonly api: AdminApi;

  readonly #online = new Store<OnlineSnapshot | null>(null);

  constructor(options: AdminConnectOptions) {
    super(options, ADMIN);
    this.online = this.#online;
    this.api = new AdminApi({ url: options.url, getToken: options.getToken, timeoutMs: options.httpTimeoutMs, fetch: options.fetch });
    this.start();
  }

  protected override onServerEvent(event: string, payload: unknown): void {
    if (typeof payload !== "object" || payload === null) return;
    if (event === "online") {
      const snapshot = payload as OnlineSnapshot;
      this.#online.set(snapshot);
      this.emit("online", snapshot);
    } else if (event === "payment") {
      this.emit("payment", payload as PaymentEvent);
    }
  }
}

/**
 * Connects to `/admin` at once with an admin token; see `AdminConnectOptions`. Call `close()`
 * when done (at sign-out).
 */
export function connectAdmin(options: AdminConnectOptions): AdminClient {
  return new AdminClient(options);
}

/** The admin HTTP calls alone, without a socket. */
export function createAdminApi(options: ConstructorParameters<typeof AdminApi>[0]): AdminApi {
  return new AdminApi(options);
}
