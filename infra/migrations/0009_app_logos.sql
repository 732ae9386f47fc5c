-- edgeid: an optional logo per application, shown on the launcher (issue 11). Its own table
-- rather than a column of `apps`: migrations are applied on every start, and SQLite has no
-- `ADD COLUMN IF NOT EXISTS`. A row exists only for an app with a logo (an https URL).
-- Idempotent.
CREATE TABLE IF NOT EXISTS app_logos (
    app_slug   TEXT PRIMARY KEY NOT NULL,
    logo_url   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
