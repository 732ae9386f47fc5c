-- edgeid: applications (the dashboard-tile records) and per-app roles. Idempotent.

-- An application, tied to the OAuth client it signs in with. `external` marks apps that live
-- outside the cluster (the `ext-` apps of the stack edgeid replaces).
CREATE TABLE IF NOT EXISTS apps (
    slug       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    url        TEXT NOT NULL,
    external   INTEGER NOT NULL DEFAULT 0,
    client_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS apps_client ON apps (client_id);

-- Roles per user per app (`admin`, `user`, or a custom name).
CREATE TABLE IF NOT EXISTS app_roles (
    user_id    TEXT NOT NULL,
    app_slug   TEXT NOT NULL,
    role       TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, app_slug, role)
);
CREATE INDEX IF NOT EXISTS app_roles_app ON app_roles (app_slug);
