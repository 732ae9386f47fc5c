-- edgeid: the OpenID Connect authorization server (users, sessions, consents, grants, codes,
-- refresh tokens). Idempotent. Secrets are stored only as SHA-256 digests (hex).

-- People who log in. `id` is the stable `sub` (OIDC Core §2): username and email may change.
-- Credentials live in the separate credentials database.
CREATE TABLE IF NOT EXISTS users (
    id             TEXT PRIMARY KEY NOT NULL,
    email          TEXT NOT NULL,
    username       TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    given_name     TEXT NOT NULL DEFAULT '',
    family_name    TEXT NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email COLLATE NOCASE);
CREATE UNIQUE INDEX IF NOT EXISTS users_username ON users (username COLLATE NOCASE);

-- Browser sessions. The cookie holds a random token; only its digest is stored. `sid` is the
-- public session id (OIDC Front-/Back-Channel Logout `sid` claim).
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    sid          TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL DEFAULT '["pwd"]',  -- JSON array (RFC 8176 values)
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

-- Remembered consent: the scopes a user granted a client.
CREATE TABLE IF NOT EXISTS consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,  -- space-separated
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- One authorization (a code redemption and every token that descends from it). Revoking a
-- grant revokes its refresh-token family and the access tokens carrying its id (`gid`).
CREATE TABLE IF NOT EXISTS grants (
    id         TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    sid        TEXT NOT NULL DEFAULT '',
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS grants_user ON grants (user_id);

-- Authorization codes (RFC 6749 §4.1.2), single use: redeemed by one conditional UPDATE.
CREATE TABLE IF NOT EXISTS authorization_codes (
    code_sha256    TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,            -- RFC 7636, S256 only
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL DEFAULT '["pwd"]',
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

-- Refresh tokens, rotated on every use; reuse of a rotated one revokes the grant.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    grant_id     TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL DEFAULT '["pwd"]',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX IF NOT EXISTS refresh_tokens_grant ON refresh_tokens (grant_id);

-- Access tokens revoked one by one (RFC 7009): kept until they would have expired.
CREATE TABLE IF NOT EXISTS revoked_access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
