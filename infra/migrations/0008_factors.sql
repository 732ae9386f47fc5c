-- edgeid: which users have a second factor. The secret itself lives in the credentials
-- database; this flag lets every function that decides whether a session may complete an
-- authorization request (authorize, login) know that the session must carry `otp`, without
-- granting authorize the credentials database (DESIGN.md "One decision per question").
-- Written before a credential is stored and after one is removed, so it errs towards asking.
-- Idempotent.
CREATE TABLE IF NOT EXISTS user_factors (
    user_id    TEXT PRIMARY KEY NOT NULL,
    totp       INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
