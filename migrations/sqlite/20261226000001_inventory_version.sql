-- SQLite twin of migrations/postgres: the inventory's position, bumped by one in the transaction
-- of every inventory change (open, claim, admin status change).
ALTER TABLE users ADD COLUMN inventory_version BIGINT NOT NULL DEFAULT 0;
