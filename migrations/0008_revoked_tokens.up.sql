-- Sessions ended before their tokens expire (logOut). A token whose session
-- is here is refused until expires_at, when its token would be anyway.
CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,            -- the token's id (or digest, for tokens without one)
    user_id    bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
-- Each instance loads the unexpired ones at start; the expired are pruned.
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);
