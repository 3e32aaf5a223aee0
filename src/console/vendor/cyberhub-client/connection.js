// The connection machinery every live client shares, on whichever namespace: authenticates in the
// handshake, refreshes the token in band before it expires (`auth:refresh`), reconnects with
// jittered backoff, reports `session:ended` and stops for good after a final one. The player
// client (`connect`, namespace `/`) and the operators' one (`connectAdmin`, namespace `/admin`)
// add their own handshake fields and events on top.
var __classPrivateFieldGet = (this && this.__classPrivateFieldGet) || function (receiver, state, kind, f) {
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a getter");
    if (typeof state === "function" ? receiver !== state || !f : !state.has(receiver)) throw new TypeError("Cannot read private member from an object whose class did not declare it");
    return kind === "m" ? f : kind === "a" ? f.call(receiver) : f ? f.value : state.get(receiver);
};
var __classPrivateFieldSet = (this && this.__classPrivateFieldSet) || function (receiver, state, value, kind, f) {
    if (kind === "m") throw new TypeError("Private method is not writable");
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a setter");
    if (typeof state === "function" ? receiver !== state || !f : !state.has(receiver)) throw new TypeError("Cannot write private member to an object whose class did not declare it");
    return (kind === "a" ? f.call(receiver, value) : f ? f.value = value : state.set(receiver, value)), value;
};
var _Connection_instances, _Connection_connection, _Connection_socket, _Connection_setup, _Connection_options, _Connection_getToken, _Connection_token, _Connection_userId, _Connection_exp, _Connection_attempt, _Connection_ended, _Connection_lastEnd, _Connection_refreshTimer, _Connection_reconnectTimer, _Connection_handshake, _Connection_useToken, _Connection_setConnection, _Connection_onConnect, _Connection_onDisconnect, _Connection_onConnectError, _Connection_backoff, _Connection_reconnectLater, _Connection_onEvent, _Connection_scheduleRefresh, _Connection_refresh, _Connection_end;
import { io } from "socket.io-client";
import { Emitter, Store } from "./store.js";
import { readClaims } from "./token.js";
const ACK_TIMEOUT_MS = 10000;
export function jitter(ms) {
    return Math.round(ms * (0.5 + Math.random()));
}
function withNamespace(url, namespace) {
    if (namespace === "/" || namespace === "")
        return url;
    return `${url.replace(/\/+$/, "")}${namespace.startsWith("/") ? namespace : `/${namespace}`}`;
}
export class Connection extends Emitter {
    constructor(options, setup) {
        super();
        _Connection_instances.add(this);
        _Connection_connection.set(this, new Store({ status: "connecting", reason: null, error: null, connects: 0 }));
        _Connection_socket.set(this, void 0);
        _Connection_setup.set(this, void 0);
        _Connection_options.set(this, void 0);
        _Connection_getToken.set(this, void 0);
        _Connection_token.set(this, null);
        _Connection_userId.set(this, null);
        _Connection_exp.set(this, null);
        _Connection_attempt.set(this, 0);
        _Connection_ended.set(this, false);
        _Connection_lastEnd.set(this, null);
        _Connection_refreshTimer.set(this, void 0);
        _Connection_reconnectTimer.set(this, void 0);
        this.connection = __classPrivateFieldGet(this, _Connection_connection, "f");
        __classPrivateFieldSet(this, _Connection_setup, setup, "f");
        __classPrivateFieldSet(this, _Connection_getToken, options.getToken, "f");
        __classPrivateFieldSet(this, _Connection_options, {
            refreshLeewaySeconds: options.refreshLeewaySeconds ?? 60,
            reconnectDelayMs: options.reconnectDelayMs ?? 500,
            reconnectDelayMaxMs: options.reconnectDelayMaxMs ?? 10000,
        }, "f");
        __classPrivateFieldSet(this, _Connection_socket, io(withNamespace(options.url, setup.namespace), {
            path: options.path,
            transports: options.transports ?? ["websocket", "polling"],
            withCredentials: options.withCredentials,
            forceNew: true,
            autoConnect: false,
            // Transport losses (a replica killed, the network gone) are retried by socket.io's manager
            // with the same jittered backoff; what the server ends or refuses is retried below.
            reconnection: true,
            reconnectionDelay: __classPrivateFieldGet(this, _Connection_options, "f").reconnectDelayMs,
            reconnectionDelayMax: __classPrivateFieldGet(this, _Connection_options, "f").reconnectDelayMaxMs,
            randomizationFactor: 0.5,
            // Called on every (re)connect: a fresh token, plus what the subclass adds (a player's
            // positions, so the server sends only what this client lacks).
            auth: (send) => {
                void __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_handshake).call(this).then(send);
            },
        }), "f");
        __classPrivateFieldGet(this, _Connection_socket, "f").on("connect", () => __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_onConnect).call(this));
        __classPrivateFieldGet(this, _Connection_socket, "f").on("disconnect", (reason) => __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_onDisconnect).call(this, reason));
        __classPrivateFieldGet(this, _Connection_socket, "f").on("connect_error", (err) => __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_onConnectError).call(this, err));
        __classPrivateFieldGet(this, _Connection_socket, "f").onAny((event, payload) => __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_onEvent).call(this, event, payload));
    }
    /** Connects; called by the subclass once its own fields are set. */
    start() {
        __classPrivateFieldGet(this, _Connection_socket, "f").connect();
    }
    /** The socket.io-client socket underneath, for diagnostics. Do not emit on it. */
    get socket() {
        return __classPrivateFieldGet(this, _Connection_socket, "f");
    }
    /** The user id the current token is for (its `sub`), or null when anonymous. */
    get userId() {
        return __classPrivateFieldGet(this, _Connection_userId, "f");
    }
    /** Stops for good: no more reconnects or refreshes. */
    close() {
        __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_end).call(this, "closed");
    }
    /** The handshake fields besides `token` (only sent with a token). */
    handshakeExtras() {
        return {};
    }
    /** The token changed to another user's (`from` was not null): drop what belonged to `from`. */
    userChanged(_from, _to) { }
    /** Emits one of the events every client has (the subclass's event map includes them). */
    emitConnectionEvent(event, payload) {
        this.emit.call(this, event, payload);
    }
}
_Connection_connection = new WeakMap(), _Connection_socket = new WeakMap(), _Connection_setup = new WeakMap(), _Connection_options = new WeakMap(), _Connection_getToken = new WeakMap(), _Connection_token = new WeakMap(), _Connection_userId = new WeakMap(), _Connection_exp = new WeakMap(), _Connection_attempt = new WeakMap(), _Connection_ended = new WeakMap(), _Connection_lastEnd = new WeakMap(), _Connection_refreshTimer = new WeakMap(), _Connection_reconnectTimer = new WeakMap(), _Connection_instances = new WeakSet(), _Connection_handshake = async function _Connection_handshake() {
    if (__classPrivateFieldGet(this, _Connection_getToken, "f")) {
        try {
            __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_useToken).call(this, (await __classPrivateFieldGet(this, _Connection_getToken, "f").call(this)) ?? null);
        }
        catch (err) {
            // The last token is tried: a refusal comes back as `unauthorized` and is retried.
            this.emitConnectionEvent("error", new Error(`getToken failed before connecting: ${err?.message ?? err}`, { cause: err }));
        }
    }
    if (!__classPrivateFieldGet(this, _Connection_token, "f"))
        return {};
    return { token: __classPrivateFieldGet(this, _Connection_token, "f"), ...this.handshakeExtras() };
}, _Connection_useToken = function _Connection_useToken(token) {
    __classPrivateFieldSet(this, _Connection_token, token, "f");
    const claims = token ? readClaims(token) : { sub: null, exp: null };
    if (__classPrivateFieldGet(this, _Connection_userId, "f") !== null && claims.sub !== null && claims.sub !== __classPrivateFieldGet(this, _Connection_userId, "f")) {
        // Another user on this client: nothing shown belongs to them.
        this.userChanged(__classPrivateFieldGet(this, _Connection_userId, "f"), claims.sub);
    }
    __classPrivateFieldSet(this, _Connection_userId, claims.sub, "f");
    __classPrivateFieldSet(this, _Connection_exp, claims.exp, "f");
}, _Connection_setConnection = function _Connection_setConnection(patch) {
    __classPrivateFieldGet(this, _Connection_connection, "f").set({ ...__classPrivateFieldGet(this, _Connection_connection, "f").get(), ...patch });
}, _Connection_onConnect = function _Connection_onConnect() {
    __classPrivateFieldSet(this, _Connection_attempt, 0, "f");
    const { connects } = __classPrivateFieldGet(this, _Connection_connection, "f").get();
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_setConnection).call(this, { status: "connected", error: null, connects: connects + 1 });
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_scheduleRefresh).call(this);
}, _Connection_onDisconnect = function _Connection_onDisconnect(reason) {
    clearTimeout(__classPrivateFieldGet(this, _Connection_refreshTimer, "f"));
    if (__classPrivateFieldGet(this, _Connection_ended, "f"))
        return;
    const ended = __classPrivateFieldGet(this, _Connection_lastEnd, "f");
    __classPrivateFieldSet(this, _Connection_lastEnd, null, "f");
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_setConnection).call(this, { status: "reconnecting", reason: ended ?? __classPrivateFieldGet(this, _Connection_connection, "f").get().reason });
    if (reason !== "io server disconnect")
        return; // the manager reconnects by itself
    // socket.io-client treats a disconnect by the server as final: reconnect here. A drain
    // already spreads its sockets over its window, so only a little jitter is added.
    const delay = ended === "draining" || ended === "token_expired" ? Math.random() * __classPrivateFieldGet(this, _Connection_options, "f").reconnectDelayMs : __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_backoff).call(this);
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_reconnectLater).call(this, delay);
}, _Connection_onConnectError = function _Connection_onConnectError(err) {
    if (__classPrivateFieldGet(this, _Connection_ended, "f"))
        return;
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_setConnection).call(this, { status: __classPrivateFieldGet(this, _Connection_connection, "f").get().connects ? "reconnecting" : "connecting", error: err.message });
    // `active`: the manager is retrying a transport failure by itself. Otherwise the server's
    // middleware refused the connect, and socket.io-client leaves the retry to us.
    if (__classPrivateFieldGet(this, _Connection_socket, "f").active)
        return;
    if (__classPrivateFieldGet(this, _Connection_setup, "f").finalRefusals.has(err.message)) {
        if (err.message === "blocked") {
            this.emitConnectionEvent("ended", { reason: "blocked", final: true });
            __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_end).call(this, "blocked");
        }
        else {
            this.emitConnectionEvent("error", new Error(`connect refused for good: ${err.message}`, { cause: err }));
            __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_end).call(this, err.message === "forbidden" ? "forbidden" : "closed");
        }
        return;
    }
    this.emitConnectionEvent("error", new Error(`connect refused: ${err.message}`, { cause: err }));
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_reconnectLater).call(this, __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_backoff).call(this));
}, _Connection_backoff = function _Connection_backoff() {
    const delay = Math.min(__classPrivateFieldGet(this, _Connection_options, "f").reconnectDelayMaxMs, __classPrivateFieldGet(this, _Connection_options, "f").reconnectDelayMs * 2 ** __classPrivateFieldGet(this, _Connection_attempt, "f"));
    __classPrivateFieldSet(this, _Connection_attempt, Math.min(__classPrivateFieldGet(this, _Connection_attempt, "f") + 1, 30), "f");
    return jitter(delay);
}, _Connection_reconnectLater = function _Connection_reconnectLater(delayMs) {
    clearTimeout(__classPrivateFieldGet(this, _Connection_reconnectTimer, "f"));
    __classPrivateFieldSet(this, _Connection_reconnectTimer, setTimeout(() => {
        if (!__classPrivateFieldGet(this, _Connection_ended, "f") && !__classPrivateFieldGet(this, _Connection_socket, "f").connected && !__classPrivateFieldGet(this, _Connection_socket, "f").active)
            __classPrivateFieldGet(this, _Connection_socket, "f").connect();
    }, delayMs), "f");
}, _Connection_onEvent = function _Connection_onEvent(event, payload) {
    if (event !== "session:ended") {
        this.onServerEvent(event, payload);
        return;
    }
    const reason = payload?.reason;
    if (typeof reason !== "string")
        return;
    const final = __classPrivateFieldGet(this, _Connection_setup, "f").finalEnds.has(reason);
    __classPrivateFieldSet(this, _Connection_lastEnd, reason, "f");
    this.emitConnectionEvent("ended", { reason, final });
    if (final)
        __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_end).call(this, reason);
}, _Connection_scheduleRefresh = function _Connection_scheduleRefresh() {
    clearTimeout(__classPrivateFieldGet(this, _Connection_refreshTimer, "f"));
    if (!__classPrivateFieldGet(this, _Connection_getToken, "f") || __classPrivateFieldGet(this, _Connection_exp, "f") === null || __classPrivateFieldGet(this, _Connection_ended, "f"))
        return;
    const remainingMs = __classPrivateFieldGet(this, _Connection_exp, "f") * 1000 - Date.now();
    const delay = Math.max(remainingMs - __classPrivateFieldGet(this, _Connection_options, "f").refreshLeewaySeconds * 1000, remainingMs / 2, 1000);
    // setTimeout's limit is 2^31-1 ms (24.8 days).
    __classPrivateFieldSet(this, _Connection_refreshTimer, setTimeout(() => void __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_refresh).call(this), Math.min(delay, 2 ** 31 - 1)), "f");
}, _Connection_refresh = async function _Connection_refresh() {
    if (__classPrivateFieldGet(this, _Connection_ended, "f") || !__classPrivateFieldGet(this, _Connection_socket, "f").connected || !__classPrivateFieldGet(this, _Connection_getToken, "f"))
        return;
    const previous = __classPrivateFieldGet(this, _Connection_token, "f");
    try {
        const token = (await __classPrivateFieldGet(this, _Connection_getToken, "f").call(this)) ?? null;
        if (!token)
            throw new Error("getToken returned no token");
        const answer = (await __classPrivateFieldGet(this, _Connection_socket, "f").timeout(ACK_TIMEOUT_MS).emitWithAck("auth:refresh", { token }));
        if (!answer.ok)
            throw new Error(`auth:refresh refused: ${answer.error}`);
        __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_useToken).call(this, token);
        __classPrivateFieldSet(this, _Connection_exp, answer.exp, "f");
        this.emitConnectionEvent("refreshed", { exp: answer.exp });
        __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_scheduleRefresh).call(this);
    }
    catch (err) {
        __classPrivateFieldSet(this, _Connection_token, previous, "f");
        this.emitConnectionEvent("error", err instanceof Error ? err : new Error(String(err)));
        // Try again soon; should the deadline pass meanwhile, the server ends the session with
        // `token_expired` and the reconnect brings a fresh token.
        clearTimeout(__classPrivateFieldGet(this, _Connection_refreshTimer, "f"));
        if (!__classPrivateFieldGet(this, _Connection_ended, "f"))
            __classPrivateFieldSet(this, _Connection_refreshTimer, setTimeout(() => void __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_refresh).call(this), jitter(5000)), "f");
    }
}, _Connection_end = function _Connection_end(reason) {
    __classPrivateFieldSet(this, _Connection_ended, true, "f");
    clearTimeout(__classPrivateFieldGet(this, _Connection_refreshTimer, "f"));
    clearTimeout(__classPrivateFieldGet(this, _Connection_reconnectTimer, "f"));
    __classPrivateFieldGet(this, _Connection_socket, "f").disconnect();
    __classPrivateFieldGet(this, _Connection_instances, "m", _Connection_setConnection).call(this, { status: "ended", reason });
};
//# sourceMappingURL=connection.js.map