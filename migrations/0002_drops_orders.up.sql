CREATE TABLE drops (
    id             bigserial PRIMARY KEY,
    product_id     bigint NOT NULL REFERENCES products (id),
    creator_id     bigint NOT NULL REFERENCES creators (id),
    title          text NOT NULL,
    status         text NOT NULL DEFAULT 'SCHEDULED'
                   CHECK (status IN ('SCHEDULED', 'LIVE', 'SOLD_OUT', 'ENDED', 'CANCELLED')),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    per_user_limit int NOT NULL CHECK (per_user_limit > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at < ends_at)
);
CREATE INDEX drops_status_idx ON drops (status, starts_at, id);
CREATE INDEX drops_creator_idx ON drops (creator_id, created_at, id);
CREATE INDEX drops_product_idx ON drops (product_id, created_at, id);
-- The scheduler's two questions: what should start, what should end.
CREATE INDEX drops_due_start_idx ON drops (starts_at) WHERE status = 'SCHEDULED';
CREATE INDEX drops_due_end_idx ON drops (ends_at) WHERE status IN ('LIVE', 'SOLD_OUT');

CREATE TABLE inventory (
    drop_id   bigint PRIMARY KEY REFERENCES drops (id),
    total     int NOT NULL CHECK (total >= 0),
    available int NOT NULL,
    reserved  int NOT NULL CHECK (reserved >= 0),
    sold      int NOT NULL CHECK (sold >= 0),
    -- The last word on overselling, whatever Redis says.
    CONSTRAINT inventory_balance CHECK (available >= 0 AND available + reserved + sold = total)
);

CREATE TABLE orders (
    id              bigserial PRIMARY KEY,
    drop_id         bigint NOT NULL REFERENCES drops (id),
    buyer_id        bigint NOT NULL REFERENCES users (id),
    quantity        int NOT NULL CHECK (quantity > 0),
    total_cents     bigint NOT NULL CHECK (total_cents >= 0),
    currency        char(3) NOT NULL,
    status          text NOT NULL DEFAULT 'PENDING_PAYMENT'
                    CHECK (status IN ('PENDING_PAYMENT', 'CONFIRMED', 'CANCELLED', 'EXPIRED')),
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    CONSTRAINT orders_buyer_idempotency_key UNIQUE (buyer_id, idempotency_key)
);
CREATE INDEX orders_drop_buyer_idx ON orders (drop_id, buyer_id);
CREATE INDEX orders_buyer_created_idx ON orders (buyer_id, created_at, id);
CREATE INDEX orders_drop_created_idx ON orders (drop_id, created_at, id);
CREATE INDEX orders_pending_expiry_idx ON orders (expires_at) WHERE status = 'PENDING_PAYMENT';

CREATE TABLE payments (
    id           bigserial PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orders (id),
    provider     text NOT NULL,
    provider_ref text NOT NULL UNIQUE,
    status       text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'DECLINED')),
    amount_cents bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order_idx ON payments (order_id, id);

-- Webhook event ids already handled: a replayed event changes nothing.
CREATE TABLE payment_events (
    event_id    text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Events written in the transaction of the change they describe, published by the relay.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    key          text NOT NULL,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay as soon as an event commits.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
