-- Bumped by every edit of a case, like PostgreSQL's (where the one-round-trip open checks it).
ALTER TABLE cases ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
