CREATE TABLE notifications (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    kind       text NOT NULL CHECK (kind IN ('DROP_SCHEDULED', 'DROP_STARTED')),
    drop_id    bigint NOT NULL REFERENCES drops (id),
    creator_id bigint NOT NULL REFERENCES creators (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz,
    -- A redelivered event writes nothing twice.
    CONSTRAINT notifications_once UNIQUE (user_id, drop_id, kind)
);
CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at, id);
CREATE INDEX notifications_user_unread_idx ON notifications (user_id, created_at, id) WHERE read_at IS NULL;

-- Events a consumer group has applied, for consumers whose effect is not naturally idempotent.
CREATE TABLE consumed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
