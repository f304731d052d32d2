DROP INDEX audit_log_at_idx;
DROP INDEX payment_events_received_idx;
DROP INDEX consumed_events_at_idx;
DROP INDEX outbox_published_idx;
DROP TABLE dead_letters;
