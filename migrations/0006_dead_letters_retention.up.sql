-- Messages that can never be delivered or read: an outbox row the relay could
-- not encode or publish (moved here out of the outbox), or a Kafka message a
-- consumer could not decode. Kept for an operator to read; the bus goes on.
CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    source     text NOT NULL,               -- 'relay', or the consumer's name
    topic      text NOT NULL,
    key        text NOT NULL DEFAULT '',
    type       text NOT NULL DEFAULT '',
    outbox_id  bigint,                      -- the outbox row, for the relay's
    partition  int,                         -- where a consumer found it
    "offset"   bigint,
    payload    bytea NOT NULL,
    error      text NOT NULL,
    created_at timestamptz,                 -- when the event was written, if known
    failed_at  timestamptz NOT NULL DEFAULT now()
);
-- Every instance's tail consumer meets the same poison message: one row.
CREATE UNIQUE INDEX dead_letters_message_key ON dead_letters (source, topic, partition, "offset")
    WHERE partition IS NOT NULL;
CREATE INDEX dead_letters_failed_idx ON dead_letters (failed_at);

-- Retention: each pruned table is walked by the age its retention reads.
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX consumed_events_at_idx ON consumed_events (at);
CREATE INDEX payment_events_received_idx ON payment_events (received_at);
CREATE INDEX audit_log_at_idx ON audit_log (at);
