-- edgeid credentials database: where an imported password came from (issue 10). One row per
-- user whose password hash an import wrote: the SHA-256 (hex) of the source's hash string.
-- A later import of the same source hash is "unchanged" even after the sign-in replaced the
-- legacy hash with edgeid's argon2id one, so re-running an import never puts the old hash
-- back. A different source hash (the password changed at the source) is imported again.
-- Idempotent.
CREATE TABLE IF NOT EXISTS imported_passwords (
    user_id       TEXT PRIMARY KEY NOT NULL,
    source_sha256 TEXT NOT NULL,
    imported_at   INTEGER NOT NULL
);
