ALTER TABLE inventory DROP COLUMN version;
