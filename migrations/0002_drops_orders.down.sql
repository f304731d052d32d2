DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
DROP TABLE outbox;
DROP TABLE payment_events;
DROP TABLE payments;
DROP TABLE orders;
DROP TABLE inventory;
DROP TABLE drops;
