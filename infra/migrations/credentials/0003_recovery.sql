-- Recovery links (issue 4): a single-use, expiring link that lets a user set a password — the
-- first one for a new account (`welcome`) or a new one (`reset`). Only the SHA-256 digest of
-- the token is stored, so a read of this database yields no usable link. Consumed with one
-- conditional UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING: exactly one of
-- N concurrent redemptions wins (DESIGN.md, single use is a storage contract). Idempotent.
CREATE TABLE IF NOT EXISTS recovery_tokens (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);

CREATE INDEX IF NOT EXISTS recovery_tokens_user ON recovery_tokens (user_id);
