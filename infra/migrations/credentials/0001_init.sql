-- edgeid credentials database, SQLite dialect. Bound only by the login, recovery and admin
-- functions (DESIGN.md, least privilege): discovery, authorize, token and userinfo cannot read
-- it whatever goes wrong. Idempotent.

-- Password hashes: argon2id PHC strings. `user_id` is `users.id` in the main database (no
-- foreign key: the two are separate databases).
CREATE TABLE IF NOT EXISTS password_credentials (
    user_id    TEXT PRIMARY KEY NOT NULL,
    phc        TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
