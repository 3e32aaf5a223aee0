-- One case open as the replicas make it on PostgreSQL: a single call of open_case() (from
-- migrations/postgres). Each pgbench client is one player (:base + client id + 1, fresh, so its
-- first nonce is 0) and keeps its next nonce in :nonce.
\set u :base + :client_id + 1
SELECT outcome, balance, balance_version, :nonce + 1 AS nonce
FROM open_case(('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, '20000000-0000-0000-0000-000000000001',
    0, 100, ('10000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, 'client', :nonce,
    '30000000-0000-0000-0000-000000000003', gen_random_uuid(),
    '{"serverSeedHash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","clientSeed":"client","nonce":1,"roll":123,"weights":[10,20,30,40,50]}',
    now()) \gset
