-- The inventory's position (issue 12): `users.inventory_version` grows by one in the transaction of
-- every inventory change (open, claim, admin status change), and `inventory:updated:<userId>`
-- carries it, so a reconnecting client can say which inventory it shows.
--
-- open_case() bumps it in the same UPDATE as the debit and returns it. Its result gains a column,
-- which CREATE OR REPLACE cannot do, so it is dropped and created again in this migration's
-- transaction (callers never see it missing). Replicas still running the previous release select
-- outcome, balance and balance_version by name, which the new function still returns.

ALTER TABLE users ADD COLUMN inventory_version BIGINT NOT NULL DEFAULT 0;

DROP FUNCTION open_case(uuid, uuid, bigint, bigint, uuid, text, bigint, uuid, uuid, text, timestamptz);

CREATE FUNCTION open_case(
    p_user uuid, p_case uuid, p_case_version bigint, p_price bigint,
    p_pair uuid, p_client_seed text, p_nonce bigint,
    p_item uuid, p_inventory uuid, p_proof text, p_now timestamptz)
RETURNS TABLE (outcome text, balance bigint, balance_version bigint, inventory_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_case_name text;
BEGIN
    SELECT c.name INTO v_case_name FROM cases c
        WHERE c.id = p_case AND c.active AND c.version = p_case_version AND c.price = p_price;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'case_changed', NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    -- Locks in the order every other writer takes them, the player before the pair (the
    -- opposite order deadlocked against the locking open). Held, they order concurrent opens of
    -- one player: a rotation or another open that committed first fails the expectation below
    -- instead of sharing a nonce. NO KEY UPDATE is the lock the debit takes anyway; a rotation's
    -- new pair only needs a key share of the player, so it does not wait on this.
    PERFORM 1 FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
    PERFORM 1 FROM fair_seeds s
        WHERE s.id = p_pair AND s.active AND s.client_seed = p_client_seed AND s.nonce = p_nonce
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'pair_changed', NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    UPDATE users u SET balance = u.balance - p_price, balance_version = u.balance_version + 1,
            inventory_version = u.inventory_version + 1
        WHERE u.id = p_user AND u.balance >= p_price
        RETURNING u.balance, u.balance_version, u.inventory_version INTO balance, balance_version, inventory_version;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'insufficient_balance', NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    UPDATE fair_seeds SET nonce = nonce + 1 WHERE id = p_pair;
    INSERT INTO inventory (id, user_id, item_id, case_id, status, fair_proof, won_at, updated_at)
        VALUES (p_inventory, p_user, p_item, p_case, 'owned', p_proof, p_now, p_now);
    INSERT INTO ledger (user_id, kind, amount, balance_after, version, reference, reason, created_at)
        VALUES (p_user, 'case_open', -p_price, balance, balance_version, p_inventory::text, v_case_name, p_now);
    RETURN QUERY SELECT 'opened', balance, balance_version, inventory_version;
END
$$;
