-- Drop lists read by start time (drops, a creator's, a product's) and live
-- drops by end time: each list walks its own index in keyset order.
CREATE INDEX drops_starts_idx ON drops (starts_at, id);
CREATE INDEX drops_creator_starts_idx ON drops (creator_id, starts_at, id);
CREATE INDEX drops_product_starts_idx ON drops (product_id, starts_at, id);
CREATE INDEX drops_live_ends_idx ON drops (ends_at, id) WHERE status IN ('LIVE', 'SOLD_OUT');
