CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    handle        text NOT NULL,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Handles are unique regardless of case.
CREATE UNIQUE INDEX users_handle_key ON users (lower(handle));

CREATE TABLE creators (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL UNIQUE REFERENCES users (id),
    display_name   text NOT NULL,
    bio            text NOT NULL DEFAULT '',
    -- Kept in the same transaction as follows; never count(*) on a hot path.
    follower_count bigint NOT NULL DEFAULT 0 CHECK (follower_count >= 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX creators_created_idx ON creators (created_at, id);

CREATE TABLE follows (
    creator_id  bigint NOT NULL REFERENCES creators (id),
    follower_id bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (creator_id, follower_id)
);
CREATE INDEX follows_follower_idx ON follows (follower_id, created_at, creator_id);
CREATE INDEX follows_creator_created_idx ON follows (creator_id, created_at, follower_id);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    creator_id  bigint NOT NULL REFERENCES creators (id),
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    currency    char(3) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_creator_idx ON products (creator_id, created_at, id);

CREATE TABLE media (
    id           bigserial PRIMARY KEY,
    product_id   bigint NOT NULL REFERENCES products (id),
    object_key   text NOT NULL UNIQUE,
    content_type text NOT NULL,
    byte_size    bigint NOT NULL CHECK (byte_size > 0),
    checksum     text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_product_idx ON media (product_id, id);

-- Append-only record of who changed what, written in the transaction of the change.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    entity     text NOT NULL,
    entity_id  bigint NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}',
    request_id text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, at);
