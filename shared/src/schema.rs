//! The SQL schema (`infra/migrations`), embedded so the native host and the in-memory test host
//! apply exactly what Spin (`--sqlite @file`) and D1 (`wrangler d1 migrations apply`) apply.

/// Migrations in order: (file name, SQL). Each is idempotent (`IF NOT EXISTS`).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../infra/migrations/0001_init.sql"),
    ),
    (
        "0002_oidc.sql",
        include_str!("../../infra/migrations/0002_oidc.sql"),
    ),
    (
        "0003_apps.sql",
        include_str!("../../infra/migrations/0003_apps.sql"),
    ),
    (
        "0004_throttle.sql",
        include_str!("../../infra/migrations/0004_throttle.sql"),
    ),
    (
        "0005_throttle.sql",
        include_str!("../../infra/migrations/0005_throttle.sql"),
    ),
    (
        "0008_factors.sql",
        include_str!("../../infra/migrations/0008_factors.sql"),
    ),
    (
        "0009_app_logos.sql",
        include_str!("../../infra/migrations/0009_app_logos.sql"),
    ),
];

/// Migrations of the credentials database (password hashes; DESIGN.md keeps them apart so
/// only login, recovery and admin can read them).
pub const CREDENTIALS_MIGRATIONS: &[(&str, &str)] = &[
    (
        "credentials/0001_init.sql",
        include_str!("../../infra/migrations/credentials/0001_init.sql"),
    ),
    (
        "credentials/0002_totp.sql",
        include_str!("../../infra/migrations/credentials/0002_totp.sql"),
    ),
    (
        "credentials/0003_recovery.sql",
        include_str!("../../infra/migrations/credentials/0003_recovery.sql"),
    ),
    (
        "credentials/0004_import.sql",
        include_str!("../../infra/migrations/credentials/0004_import.sql"),
    ),
];
