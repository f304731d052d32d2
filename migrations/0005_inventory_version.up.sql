-- Every stock move bumps the version, so a watcher can tell a newer stock
-- state from an older one whatever order it hears them in.
ALTER TABLE inventory ADD COLUMN version bigint NOT NULL DEFAULT 0;
