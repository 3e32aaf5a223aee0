// The operators' side: `connectAdmin` connects to the admin-only namespace `/admin` with the same
// machinery as a player's client (token in the handshake, in-band refresh, jittered reconnect,
// `session:ended`), exposes its `online` snapshots and credited `payment`s typed, and carries the
// admin HTTP calls the console makes (`AdminApi`), typed from the generated OpenAPI types. A
// refusal of the token's role (`forbidden`) is final; so is `kicked` or `blocked`. The operators'
// console (/console) is built on it.
var __classPrivateFieldGet = (this && this.__classPrivateFieldGet) || function (receiver, state, kind, f) {
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a getter");
    if (typeof state === "function" ? receiver !== state || !f : !state.has(receiver)) throw new TypeError("Cannot read private member from an object whose class did not declare it");
    return kind === "m" ? f : kind === "a" ? f.call(receiver) : f ? f.value : state.get(receiver);
};
var _AdminClient_online;
import { Connection } from "./connection.js";
import { CyberHubApi, queryString } from "./http.js";
import { Store } from "./store.js";
const id = (value) => encodeURIComponent(value);
/** The player API plus the admin calls (tag `Admin`); every one needs an admin token. */
export class AdminApi extends CyberHubApi {
    createCase(draft) {
        return this.request("POST", "/api/admin/cases", { body: draft });
    }
    replaceCase(caseId, draft) {
        return this.request("PUT", `/api/admin/cases/${id(caseId)}`, { body: draft });
    }
    setCasePrice(caseId, price) {
        return this.request("PUT", `/api/admin/cases/${id(caseId)}/price`, { body: { price } });
    }
    deleteCase(caseId) {
        return this.request("DELETE", `/api/admin/cases/${id(caseId)}`);
    }
    /** The `withdraw_requested` queue, oldest request first. */
    withdrawals(query = {}) {
        return this.request("GET", `/api/admin/withdrawals${queryString(query)}`);
    }
    /** Settles a withdrawal (`delivered`, or back to `owned`) or moves any item along its flow. */
    setInventoryStatus(inventoryItemId, status) {
        return this.request("PUT", `/api/inventory/${id(inventoryItemId)}/status`, { body: { status } });
    }
    async user(userId) {
        return (await this.request("GET", `/api/admin/users/${id(userId)}`)).user;
    }
    userTransactions(userId, query = {}) {
        return this.request("GET", `/api/admin/users/${id(userId)}/transactions${queryString(query)}`);
    }
    userInventory(userId, query = {}) {
        return this.request("GET", `/api/admin/users/${id(userId)}/inventory${queryString(query)}`);
    }
    userFairHistory(userId, query = {}) {
        return this.request("GET", `/api/admin/users/${id(userId)}/fair/history${queryString(query)}`);
    }
    /** The user's live sockets across the cluster. */
    userSessions(userId) {
        return this.request("GET", `/api/admin/users/${id(userId)}/sessions`);
    }
    /** Ends the user's sessions (`session:ended` `kicked`) on every replica. */
    disconnectUser(userId) {
        return this.request("POST", `/api/admin/users/${id(userId)}/disconnect`);
    }
    /** Blocks (ending their sessions with `blocked`) or unblocks the user. */
    async blockUser(userId, request) {
        return (await this.request("PUT", `/api/admin/users/${id(userId)}/block`, { body: request })).user;
    }
}
const ADMIN = {
    namespace: "/admin",
    finalEnds: new Set(["kicked", "blocked"]),
    // `forbidden`: the token is valid but not an admin's; asking again with it changes nothing.
    finalRefusals: new Set(["forbidden", "blocked"]),
};
export class AdminClient extends Connection {
    constructor(options) {
        super(options, ADMIN);
        _AdminClient_online.set(this, new Store(null));
        this.online = __classPrivateFieldGet(this, _AdminClient_online, "f");
        this.api = new AdminApi({ url: options.url, getToken: options.getToken, timeoutMs: options.httpTimeoutMs, fetch: options.fetch });
        this.start();
    }
    onServerEvent(event, payload) {
        if (typeof payload !== "object" || payload === null)
            return;
        if (event === "online") {
            const snapshot = payload;
            __classPrivateFieldGet(this, _AdminClient_online, "f").set(snapshot);
            this.emit("online", snapshot);
        }
        else if (event === "payment") {
            this.emit("payment", payload);
        }
    }
}
_AdminClient_online = new WeakMap();
/**
 * Connects to `/admin` at once with an admin token; see `AdminConnectOptions`. Call `close()`
 * when done (at sign-out).
 */
export function connectAdmin(options) {
    return new AdminClient(options);
}
/** The admin HTTP calls alone, without a socket. */
export function createAdminApi(options) {
    return new AdminApi(options);
}
//# sourceMappingURL=admin.js.map