-- edgeid: login throttling. Failure counters live in KV (lossy is fine: they only slow
-- guessing down); a lock after many failures lives here, because Workers KV is eventually
-- consistent and Spin KV has no compare-and-swap (DESIGN.md). Idempotent.
CREATE TABLE IF NOT EXISTS login_locks (
    key        TEXT PRIMARY KEY NOT NULL,  -- SHA-256 (hex) of the lower-cased login identifier
    until      INTEGER NOT NULL,
    failures   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
