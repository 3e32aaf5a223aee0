-- 1,024 players with a large balance and one seed pair each, and one case with five items.
INSERT INTO users (id, balance, created_at) SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 1000000000000, now() FROM generate_series(1, 1024) g;
INSERT INTO fair_seeds (id, user_id, server_seed, server_seed_hash, client_seed, nonce, active, created_at)
  SELECT ('10000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, md5(g::text) || md5(g::text), md5(g::text), 'client', 0, true, now() FROM generate_series(1, 1024) g;
INSERT INTO cases (id, name, image, price, created_at, updated_at) VALUES ('20000000-0000-0000-0000-000000000001', 'Bench', 'x.png', 100, now(), '2026-01-01');
INSERT INTO items (id, case_id, position, name, image, rarity, kind, value, weight) SELECT ('30000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, '20000000-0000-0000-0000-000000000001', g, 'item ' || g, 'i.png', 'common', 'money', g * 10, 10 * g FROM generate_series(1, 5) g;
