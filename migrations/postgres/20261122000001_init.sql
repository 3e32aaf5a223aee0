-- Money is BIGINT cents. The balance is never written without a ledger row carrying the same
-- version; UNIQUE (user_id, version) makes a lost update impossible to commit.

CREATE TABLE users (
    id              UUID PRIMARY KEY,
    balance         BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    balance_version BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger (
    id            BIGSERIAL PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id),
    kind          TEXT NOT NULL CHECK (kind IN ('admin_add', 'admin_subtract', 'case_open', 'claim', 'payment')),
    amount        BIGINT NOT NULL,
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    version       BIGINT NOT NULL,
    reference     TEXT,
    reason        TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, version)
);

CREATE TABLE cases (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    image      TEXT NOT NULL,
    price      BIGINT NOT NULL CHECK (price > 0),
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Items are never deleted: an edit deactivates the old rows, so inventories keep what was won.
CREATE TABLE items (
    id       UUID PRIMARY KEY,
    case_id  UUID NOT NULL REFERENCES cases (id),
    position INTEGER NOT NULL,
    name     TEXT NOT NULL,
    image    TEXT NOT NULL,
    rarity   TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('money', 'skin')),
    value    BIGINT NOT NULL CHECK (value >= 0),
    weight   BIGINT NOT NULL CHECK (weight > 0),
    active   BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX items_active_by_case ON items (case_id, position) WHERE active;

CREATE TABLE inventory (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id),
    item_id    UUID NOT NULL REFERENCES items (id),
    case_id    UUID NOT NULL REFERENCES cases (id),
    status     TEXT NOT NULL CHECK (status IN ('owned', 'withdraw_requested', 'delivered', 'claimed')),
    fair_proof TEXT,
    won_at     TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inventory_by_user ON inventory (user_id, won_at DESC);

-- One row per credited payment: the primary key decides who credits.
CREATE TABLE payments (
    payment_id  TEXT PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    credited_at TIMESTAMPTZ NOT NULL
);

-- Every notification the provider sent, whatever its status.
CREATE TABLE payment_events (
    id          BIGSERIAL PRIMARY KEY,
    payment_id  TEXT NOT NULL,
    user_id     UUID NOT NULL,
    amount      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX payment_events_by_payment ON payment_events (payment_id);

CREATE TABLE fair_seeds (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id),
    server_seed      TEXT NOT NULL,
    server_seed_hash TEXT NOT NULL,
    client_seed      TEXT NOT NULL,
    nonce            BIGINT NOT NULL DEFAULT 0,
    active           BOOLEAN NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    revealed_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX fair_seeds_one_active ON fair_seeds (user_id) WHERE active;
CREATE INDEX fair_seeds_by_user ON fair_seeds (user_id, created_at DESC);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
