-- The same open as the locking transaction (SQLite, and PostgreSQL's fallback): BEGIN, load the case,
-- debit, take the nonce, insert inventory and ledger rows, COMMIT: seven round trips.
\set u :base + :client_id + 1
BEGIN;
SELECT c.name, c.image, c.price, i.id, i.name, i.image, i.rarity, i.kind, i.value, i.weight FROM cases c JOIN items i ON i.case_id = c.id AND i.active WHERE c.id = '20000000-0000-0000-0000-000000000001' AND c.active ORDER BY i.position;
UPDATE users SET balance = balance - 100, balance_version = balance_version + 1 WHERE id = ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid AND balance >= 100 RETURNING balance, balance_version \gset
UPDATE fair_seeds SET nonce = nonce + 1 WHERE user_id = ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid AND active RETURNING server_seed, server_seed_hash, client_seed, nonce;
INSERT INTO inventory (id, user_id, item_id, case_id, status, fair_proof, won_at, updated_at) VALUES (gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, '30000000-0000-0000-0000-000000000003', '20000000-0000-0000-0000-000000000001', 'owned', '{"serverSeedHash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","clientSeed":"client","nonce":1,"roll":123,"weights":[10,20,30,40,50]}', now(), now());
INSERT INTO ledger (user_id, kind, amount, balance_after, version, reference, reason, created_at) VALUES (('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, 'case_open', -100, :balance, :balance_version, 'ref', 'Bench', now());
COMMIT;
