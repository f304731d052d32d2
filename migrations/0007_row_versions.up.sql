-- Every change of a drop's row, a creator's row or a product (its fields or
-- its media list) bumps its version, so a cache told of a change by an event
-- can tell a newer state from an older one whatever order it hears them in.
ALTER TABLE drops ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE creators ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN version bigint NOT NULL DEFAULT 0;
