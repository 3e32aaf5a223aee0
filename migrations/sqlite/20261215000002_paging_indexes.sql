-- SQLite twin of migrations/postgres.
-- Keyset paging (src/routes/page.rs): every list is read newest first by (time, id) from a cursor,
-- so each page is one index range scan, however deep. The ledger pages by (user_id, version),
-- which its unique constraint already indexes.
DROP INDEX inventory_by_user;
CREATE INDEX inventory_by_user ON inventory (user_id, won_at DESC, id DESC);
CREATE INDEX inventory_by_user_status ON inventory (user_id, status, won_at DESC, id DESC);
DROP INDEX fair_seeds_by_user;
CREATE INDEX fair_seeds_by_user ON fair_seeds (user_id, created_at DESC, id DESC);
