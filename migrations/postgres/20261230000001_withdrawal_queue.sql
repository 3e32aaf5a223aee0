-- The withdrawal queue (GET /api/admin/withdrawals): items in `withdraw_requested`, oldest request
-- first, paged by (updated_at, id). A partial index holds only the queue, so reading it never
-- scans the rest of the inventory, and it stays small however many items were ever won.
CREATE INDEX inventory_withdraw_queue ON inventory (updated_at, id) WHERE status = 'withdraw_requested';
