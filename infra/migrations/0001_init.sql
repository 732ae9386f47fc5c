-- edgeid schema, SQLite dialect (native SQLite, Spin SQLite, Cloudflare D1).
-- Idempotent: every host may apply it at each start (`spin up --sqlite @...`,
-- `wrangler d1 migrations apply`, the native host at start-up).
-- Only INTEGER and TEXT columns: binary data is base64url text, times are Unix seconds.

-- OAuth 2.0 clients (RFC 6749 §2). The secret is stored only as a SHA-256 digest (hex):
-- client secrets are machine-generated and high-entropy, so a slow KDF buys nothing.
CREATE TABLE IF NOT EXISTS clients (
    client_id                    TEXT PRIMARY KEY NOT NULL,
    client_secret_sha256         TEXT,
    client_name                  TEXT NOT NULL DEFAULT '',
    grant_types                  TEXT NOT NULL DEFAULT '[]',  -- JSON array
    response_types               TEXT NOT NULL DEFAULT '[]',  -- JSON array
    redirect_uris                TEXT NOT NULL DEFAULT '[]',  -- JSON array
    post_logout_redirect_uris    TEXT NOT NULL DEFAULT '[]',  -- JSON array
    scope                        TEXT NOT NULL DEFAULT '',    -- space-separated
    audience                     TEXT NOT NULL DEFAULT '[]',  -- JSON array
    token_endpoint_auth_method   TEXT NOT NULL DEFAULT 'client_secret_basic',
    skip_consent                 INTEGER NOT NULL DEFAULT 0,
    id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256',
    owner                        TEXT NOT NULL DEFAULT '',    -- e.g. "name/namespace" for synced clients
    metadata                     TEXT NOT NULL DEFAULT '{}',  -- JSON object, opaque to edgeid
    created_at                   INTEGER NOT NULL,
    updated_at                   INTEGER NOT NULL
);

-- Signing keys. Per algorithm exactly one `current` key signs; one `next` key is already
-- published in the JWKS so relying parties know it before it signs; `retired` keys stay
-- published until every token they signed has expired (`expires_at`).
-- The private key (PKCS#8 DER) is sealed with XChaCha20-Poly1305 under the key-encryption key.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    alg            TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    state          TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    public_jwk     TEXT NOT NULL,  -- JSON object
    private_sealed TEXT NOT NULL,  -- base64url(nonce || ciphertext)
    created_at     INTEGER NOT NULL,
    activated_at   INTEGER,
    retired_at     INTEGER,
    expires_at     INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_current ON signing_keys (alg) WHERE state = 'current';
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_next ON signing_keys (alg) WHERE state = 'next';

-- Security-relevant events, append-only.
CREATE TABLE IF NOT EXISTS audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '{}'
);
