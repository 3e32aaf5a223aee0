// The tiny subscribe API every piece of state uses: `get()` now, `subscribe(listener)` for changes.
// It fits any UI framework: React's `useSyncExternalStore(store.subscribe, store.get)`, a Svelte
// store (subscribe calls the listener at once with the current value), Vue's `shallowRef` fed by
// `subscribe`, or plain DOM code.

export interface Readable<T> {
  /** The current value. */
  get(): T;
  /** Calls `listener` now with the current value, then on every change; returns the unsubscribe. */
  subscribe(listener: (value: T) => void): () => void;
}

export class Store<T> implements Readable<T> {
  #value: T;
  readonly #listeners = new Set<(value: T) => void>();

  constructor(value: T) {
    this.#value = value;
  }

  get = (): T => this.#value;

  subscribe = (listener: (value: T) => void): (() => void) => {
    this.#listeners.add(listener);
    listener(this.#value);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  set(value: T): void {
    if (Object.is(value, this.#value)) return;
    this.#value = value;
    for (const listener of [...this.#listeners]) {
      try {
        listener(value);
      } catch (err) {
        // One UI's broken listener must not stop the others nor the client.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** A typed event emitter: `on(name, listener)` returns the unsubscribe. */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>();

  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as (payload: Events[K]) => void)(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
