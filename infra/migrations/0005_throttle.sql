-- edgeid: authoritative throttle counters (issue 9). One row per throttled key: password
-- guesses per account name and per client address, second-factor codes per user, recovery
-- links per name and per address, failed client authentications per client id. Each attempt
-- is reserved by one conditional UPSERT ... RETURNING before the secret is checked, so
-- concurrent attempts cannot lose increments (KV is read-modify-write, and eventually
-- consistent on Workers: DESIGN.md). Supersedes the KV counters and the login_locks table of
-- 0004, which is kept but no longer used. Idempotent.
CREATE TABLE IF NOT EXISTS throttle (
    key          TEXT PRIMARY KEY NOT NULL,  -- kind prefix + SHA-256 (hex) of the subject
    kind         TEXT NOT NULL,
    attempts     INTEGER NOT NULL,           -- reserved attempts since `since`
    since        INTEGER NOT NULL,           -- when the count (re)started
    last         INTEGER NOT NULL,           -- the latest reserved attempt
    locked_until INTEGER NOT NULL DEFAULT 0  -- 0, or the end of a lock
);
-- Pruning deletes keys idle past their retention, oldest first.
CREATE INDEX IF NOT EXISTS throttle_last ON throttle (last);
