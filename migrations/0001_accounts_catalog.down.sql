DROP TABLE audit_log;
DROP TABLE media;
DROP TABLE products;
DROP TABLE follows;
DROP TABLE creators;
DROP TABLE users;
