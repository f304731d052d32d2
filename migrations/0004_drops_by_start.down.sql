DROP INDEX IF EXISTS drops_live_ends_idx;
DROP INDEX IF EXISTS drops_product_starts_idx;
DROP INDEX IF EXISTS drops_creator_starts_idx;
DROP INDEX IF EXISTS drops_starts_idx;
