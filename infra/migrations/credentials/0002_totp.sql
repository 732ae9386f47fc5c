-- edgeid credentials database: the TOTP second factor (RFC 6238) and its one-time recovery
-- codes. Idempotent.

-- One TOTP credential per user. `secret_sealed` is the shared secret sealed with the
-- key-encryption key (bound to the user id). `last_step` is the time step of the last accepted
-- code: a code whose step is not above it is a replay and is refused (one conditional UPDATE).
CREATE TABLE IF NOT EXISTS totp_credentials (
    user_id       TEXT PRIMARY KEY NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_step     INTEGER NOT NULL DEFAULT 0
);

-- Recovery codes, stored only as SHA-256 digests (hex), each usable once (`used_at`).
CREATE TABLE IF NOT EXISTS recovery_codes (
    user_id     TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_sha256)
);
