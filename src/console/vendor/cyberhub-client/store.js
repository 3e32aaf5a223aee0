// The tiny subscribe API every piece of state uses: `get()` now, `subscribe(listener)` for changes.
// It fits any UI framework: React's `useSyncExternalStore(store.subscribe, store.get)`, a Svelte
// store (subscribe calls the listener at once with the current value), Vue's `shallowRef` fed by
// `subscribe`, or plain DOM code.
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
var _Store_value, _Store_listeners, _Emitter_listeners;
export class Store {
    constructor(value) {
        _Store_value.set(this, void 0);
        _Store_listeners.set(this, new Set());
        this.get = () => __classPrivateFieldGet(this, _Store_value, "f");
        this.subscribe = (listener) => {
            __classPrivateFieldGet(this, _Store_listeners, "f").add(listener);
            listener(__classPrivateFieldGet(this, _Store_value, "f"));
            return () => {
                __classPrivateFieldGet(this, _Store_listeners, "f").delete(listener);
            };
        };
        __classPrivateFieldSet(this, _Store_value, value, "f");
    }
    set(value) {
        if (Object.is(value, __classPrivateFieldGet(this, _Store_value, "f")))
            return;
        __classPrivateFieldSet(this, _Store_value, value, "f");
        for (const listener of [...__classPrivateFieldGet(this, _Store_listeners, "f")]) {
            try {
                listener(value);
            }
            catch (err) {
                // One UI's broken listener must not stop the others nor the client.
                queueMicrotask(() => {
                    throw err;
                });
            }
        }
    }
}
_Store_value = new WeakMap(), _Store_listeners = new WeakMap();
/** A typed event emitter: `on(name, listener)` returns the unsubscribe. */
export class Emitter {
    constructor() {
        _Emitter_listeners.set(this, new Map());
    }
    on(event, listener) {
        let set = __classPrivateFieldGet(this, _Emitter_listeners, "f").get(event);
        if (!set)
            __classPrivateFieldGet(this, _Emitter_listeners, "f").set(event, (set = new Set()));
        set.add(listener);
        return () => {
            set.delete(listener);
        };
    }
    emit(event, payload) {
        for (const listener of [...(__classPrivateFieldGet(this, _Emitter_listeners, "f").get(event) ?? [])]) {
            try {
                listener(payload);
            }
            catch (err) {
                queueMicrotask(() => {
                    throw err;
                });
            }
        }
    }
}
_Emitter_listeners = new WeakMap();
//# sourceMappingURL=store.js.map