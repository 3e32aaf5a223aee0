-- SQLite twin of migrations/postgres.
-- Provably fair, ordered right: the active pair holds the NEXT server seed, committed (its hash
-- shown as nextServerSeedHash) before the player picks a client seed; a client-seed change or a
-- rotation activates it and commits a fresh one. Only the active row keeps the secret; a retired
-- row keeps the hash it published. Pairs created before this migration get their next seed on
-- first read (store::sql_ops `active_pair`): the seed must come from the OS CSPRNG, which SQL on
-- both backends does not offer.
ALTER TABLE fair_seeds ADD COLUMN next_server_seed TEXT;
ALTER TABLE fair_seeds ADD COLUMN next_server_seed_hash TEXT;
