// Typed calls of the player API. Every type comes from src/api.gen.ts, which openapi-typescript
// generates from the server's docs/openapi.json (a test fails while it is stale).
var __classPrivateFieldSet = (this && this.__classPrivateFieldSet) || function (receiver, state, value, kind, f) {
    if (kind === "m") throw new TypeError("Private method is not writable");
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a setter");
    if (typeof state === "function" ? receiver !== state || !f : !state.has(receiver)) throw new TypeError("Cannot write private member to an object whose class did not declare it");
    return (kind === "a" ? f.call(receiver, value) : f ? f.value = value : state.set(receiver, value)), value;
};
var __classPrivateFieldGet = (this && this.__classPrivateFieldGet) || function (receiver, state, kind, f) {
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a getter");
    if (typeof state === "function" ? receiver !== state || !f : !state.has(receiver)) throw new TypeError("Cannot read private member from an object whose class did not declare it");
    return kind === "m" ? f : kind === "a" ? f.call(receiver) : f ? f.value : state.get(receiver);
};
var _CyberHubApi_instances, _CyberHubApi_base, _CyberHubApi_getToken, _CyberHubApi_timeoutMs, _CyberHubApi_fetch, _CyberHubApi_onBalance, _CyberHubApi_noticeBalance, _CyberHubApi_pages;
/** Every failed call rejects with this: the server's error envelope, typed. */
export class ApiError extends Error {
    constructor(status, code, message, retryAfter, envelope, cause) {
        super(message, cause === undefined ? undefined : { cause });
        this.name = "ApiError";
        this.status = status;
        this.code = code;
        this.retryAfter = retryAfter;
        this.envelope = envelope;
    }
}
export function isApiError(value, code) {
    return value instanceof ApiError && (code === undefined || value.code === code);
}
function isEnvelope(body) {
    return (typeof body === "object" &&
        body !== null &&
        body.success === false &&
        typeof body.code === "string" &&
        typeof body.error === "string");
}
export function queryString(query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
        if (value !== undefined && value !== null && value !== "")
            params.set(key, String(value));
    }
    const text = params.toString();
    return text ? `?${text}` : "";
}
export class CyberHubApi {
    constructor(options) {
        _CyberHubApi_instances.add(this);
        _CyberHubApi_base.set(this, void 0);
        _CyberHubApi_getToken.set(this, void 0);
        _CyberHubApi_timeoutMs.set(this, void 0);
        _CyberHubApi_fetch.set(this, void 0);
        _CyberHubApi_onBalance.set(this, void 0);
        __classPrivateFieldSet(this, _CyberHubApi_base, options.url.replace(/\/+$/, ""), "f");
        __classPrivateFieldSet(this, _CyberHubApi_getToken, options.getToken, "f");
        __classPrivateFieldSet(this, _CyberHubApi_timeoutMs, options.timeoutMs ?? 10000, "f");
        __classPrivateFieldSet(this, _CyberHubApi_fetch, options.fetch ?? globalThis.fetch.bind(globalThis), "f");
        __classPrivateFieldSet(this, _CyberHubApi_onBalance, options.onBalance, "f");
    }
    /** One call: resolves with the answer's body (without `success`), rejects with an `ApiError`. */
    async request(method, path, options = {}) {
        const headers = { accept: "application/json" };
        if (options.auth !== false && __classPrivateFieldGet(this, _CyberHubApi_getToken, "f")) {
            const token = await __classPrivateFieldGet(this, _CyberHubApi_getToken, "f").call(this);
            if (token)
                headers.authorization = `Bearer ${token}`;
        }
        let body;
        if (options.body !== undefined) {
            headers["content-type"] = "application/json";
            body = JSON.stringify(options.body);
        }
        const where = `${method} ${path}`;
        let response;
        try {
            response = await __classPrivateFieldGet(this, _CyberHubApi_fetch, "f").call(this, `${__classPrivateFieldGet(this, _CyberHubApi_base, "f")}${path}`, {
                method,
                headers,
                body,
                signal: AbortSignal.timeout(__classPrivateFieldGet(this, _CyberHubApi_timeoutMs, "f")),
            });
        }
        catch (err) {
            throw new ApiError(0, "network_error", `${where}: no answer (${err?.message ?? err})`, null, null, err);
        }
        const text = await response.text().catch(() => "");
        let parsed;
        try {
            parsed = text ? JSON.parse(text) : undefined;
        }
        catch {
            parsed = undefined;
        }
        if (response.ok && typeof parsed === "object" && parsed !== null && parsed.success === true) {
            const { success: _success, ...rest } = parsed;
            __classPrivateFieldGet(this, _CyberHubApi_instances, "m", _CyberHubApi_noticeBalance).call(this, rest);
            return rest;
        }
        const retryHeader = response.headers.get("retry-after");
        const retryAfter = retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : null;
        if (isEnvelope(parsed)) {
            throw new ApiError(response.status, parsed.code, `${where}: ${parsed.error}`, retryAfter, parsed);
        }
        throw new ApiError(response.status, "bad_response", `${where}: HTTP ${response.status} without the error envelope`, retryAfter, null);
    }
    /** The caller: id, role, balance with its version, inventory version. */
    async me() {
        return (await this.request("GET", "/api/me")).user;
    }
    /** Every active case with its items. */
    async cases() {
        return (await this.request("GET", "/api/cases", { auth: false })).cases;
    }
    async case(id) {
        return (await this.request("GET", `/api/cases/${encodeURIComponent(id)}`, { auth: false })).case;
    }
    /** Opens a case: the item won, the new balance and the `fair` record to verify it with later. */
    openCase(caseId) {
        return this.request("POST", "/api/cases/open", { body: { caseId } });
    }
    /** One page of the inventory, newest first; pass the page's `nextCursor` for the next. */
    inventory(query = {}) {
        return this.request("GET", `/api/inventory${queryString(query)}`);
    }
    /** Every page of the inventory in turn, from the newest, until `nextCursor` is null. */
    inventoryPages(query = {}) {
        return __classPrivateFieldGet(this, _CyberHubApi_instances, "m", _CyberHubApi_pages).call(this, (cursor) => this.inventory({ ...query, cursor }));
    }
    /** Turns an owned money item into balance. */
    claim(inventoryItemId) {
        return this.request("POST", "/api/inventory/claim", { body: { inventoryItemId } });
    }
    /** The active seed pair (its server seed still secret) and the next pair's commitment. */
    fair() {
        return this.request("GET", "/api/fair");
    }
    /** Starts a new pair with this client seed; the answer reveals the retired pair's server seed. */
    setClientSeed(clientSeed) {
        return this.request("PUT", "/api/fair/client-seed", { body: { clientSeed } });
    }
    /** Retires the active pair (revealing its server seed) and starts the pre-committed next one. */
    rotateSeed() {
        return this.request("POST", "/api/fair/rotate");
    }
    fairHistory(query = {}) {
        return this.request("GET", `/api/fair/history${queryString(query)}`);
    }
    fairHistoryPages(query = {}) {
        return __classPrivateFieldGet(this, _CyberHubApi_instances, "m", _CyberHubApi_pages).call(this, (cursor) => this.fairHistory({ ...query, cursor }));
    }
    /** The revealed server seed of the pair committed to by `serverSeedHash`; null while that pair is active. */
    async revealedServerSeed(serverSeedHash) {
        for await (const page of this.fairHistoryPages({ limit: 100 })) {
            const pair = page.pairs.find((p) => p.serverSeedHash === serverSeedHash);
            if (pair)
                return pair.serverSeed ?? null;
        }
        return null;
    }
}
_CyberHubApi_base = new WeakMap(), _CyberHubApi_getToken = new WeakMap(), _CyberHubApi_timeoutMs = new WeakMap(), _CyberHubApi_fetch = new WeakMap(), _CyberHubApi_onBalance = new WeakMap(), _CyberHubApi_instances = new WeakSet(), _CyberHubApi_noticeBalance = function _CyberHubApi_noticeBalance(body) {
    const source = (typeof body.user === "object" && body.user !== null ? body.user : body);
    if (__classPrivateFieldGet(this, _CyberHubApi_onBalance, "f") && typeof source.balance === "number" && typeof source.balanceVersion === "number") {
        __classPrivateFieldGet(this, _CyberHubApi_onBalance, "f").call(this, source.balance, source.balanceVersion);
    }
}, _CyberHubApi_pages = async function* _CyberHubApi_pages(fetchPage) {
    let cursor;
    for (;;) {
        const page = await fetchPage(cursor);
        yield page;
        if (!page.nextCursor)
            return;
        cursor = page.nextCursor;
    }
};
export function createApi(options) {
    return new CyberHubApi(options);
}
//# sourceMappingURL=http.js.map