-- An admin's block (PUT /api/admin/users/:id/block): a blocked player's HTTP calls answer 403
-- `blocked` and their sockets are refused; payments are still credited. The reason and time of
-- the current block are kept on the user (cleared on unblock).
ALTER TABLE users ADD COLUMN blocked BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN blocked_reason TEXT;
ALTER TABLE users ADD COLUMN blocked_at TIMESTAMPTZ;
