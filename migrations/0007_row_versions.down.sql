ALTER TABLE products DROP COLUMN version;
ALTER TABLE creators DROP COLUMN version;
ALTER TABLE drops DROP COLUMN version;
