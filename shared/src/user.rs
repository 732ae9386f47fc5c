//! Users (the people who log in) and their passwords.
//!
//! The profile lives in the main database, where userinfo can read it; the password hash lives
//! in the credentials database, which only login, recovery and admin are granted (DESIGN.md).
//! `id` is the stable `sub` (OIDC Core §2, §5.7): username and email may change.

pub mod import;
pub mod legacy;
pub mod manage;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use serde::{Deserialize, Serialize};

use crate::ports::{PortError, PortErrorKind, Rng, Row, Sql, Statement, UnixTime};

/// A user as stored and as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub email_verified: bool,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// A user as the admin API receives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub email: String,
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub disabled: bool,
    /// Only on create; never stored in the main database nor echoed.
    pub password: Option<String>,
}

/// A change to a user as the admin API receives it (`PATCH /admin/users/{user}`): a JSON merge
/// (RFC 7396) of the profile fields. An absent member leaves the field as it is; `null` clears
/// the optional names (and is refused for `email` and `username` by the usual validation).
/// `id` (the `sub`), `disabled` (its own endpoints) and `password` are not patchable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub family_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub email_verified: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub is_admin: Option<Option<bool>>,
}

/// Tells a member given as `null` (`Some(None)`) from an absent one (`None`, the default).
fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl UserPatch {
    /// Merges the patch over `existing` and validates the result with the rules of
    /// [`UserInput::validate`], so a user can never be updated into a state create refuses.
    /// `id` and `created_at` are kept, `updated_at` becomes `now`.
    pub fn apply(self, existing: &User, now: UnixTime) -> Result<User, InvalidUser> {
        fn merge<T: Default>(patch: Option<Option<T>>, current: T) -> T {
            match patch {
                None => current,
                Some(v) => v.unwrap_or_default(),
            }
        }
        let input = UserInput {
            email: merge(self.email, existing.email.clone()),
            username: merge(self.username, existing.username.clone()),
            name: merge(self.name, existing.name.clone()),
            given_name: merge(self.given_name, existing.given_name.clone()),
            family_name: merge(self.family_name, existing.family_name.clone()),
            email_verified: merge(self.email_verified, existing.email_verified),
            is_admin: merge(self.is_admin, existing.is_admin),
            disabled: existing.disabled,
            password: None,
        };
        let (mut user, _) = input.validate(existing.id.clone(), now)?;
        user.created_at = existing.created_at;
        Ok(user)
    }
}

impl User {
    /// The names of the profile fields that differ between `self` and `other` (for the audit
    /// log, which records which fields changed, not their values).
    pub fn changed_fields(&self, other: &User) -> Vec<&'static str> {
        [
            ("email", self.email != other.email),
            ("username", self.username != other.username),
            ("name", self.name != other.name),
            ("given_name", self.given_name != other.given_name),
            ("family_name", self.family_name != other.family_name),
            (
                "email_verified",
                self.email_verified != other.email_verified,
            ),
            ("is_admin", self.is_admin != other.is_admin),
            ("disabled", self.disabled != other.disabled),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }
}

/// Why a user record was refused; the message is safe to show to the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUser(pub String);

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

impl UserInput {
    /// Normalizes and checks the profile fields. Emails and usernames compare
    /// case-insensitively (the unique indexes use `COLLATE NOCASE`).
    pub fn validate(
        self,
        id: String,
        now: UnixTime,
    ) -> Result<(User, Option<String>), InvalidUser> {
        let email = self.email.trim().to_owned();
        let valid_email = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid_email {
            return Err(InvalidUser(
                "email must be an address like name@example.com".into(),
            ));
        }
        let username = self.username.trim().to_owned();
        if username.is_empty()
            || username.len() > 64
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(InvalidUser(
                "username must be 1-64 characters of letters, digits, '.', '_' or '-'".into(),
            ));
        }
        for (field, value) in [
            ("name", &self.name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
        ] {
            if value.chars().count() > 200 || value.chars().any(char::is_control) {
                return Err(InvalidUser(format!(
                    "{field} must be at most 200 characters without control characters"
                )));
            }
        }
        if let Some(p) = &self.password {
            check_password(p)?;
        }
        Ok((
            User {
                id,
                email,
                username,
                name: self.name.trim().to_owned(),
                given_name: self.given_name.trim().to_owned(),
                family_name: self.family_name.trim().to_owned(),
                email_verified: self.email_verified,
                is_admin: self.is_admin,
                disabled: self.disabled,
                created_at: now,
                updated_at: now,
            },
            self.password,
        ))
    }
}

/// The password rule stated on every page that sets one.
pub fn check_password(password: &str) -> Result<(), InvalidUser> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(InvalidUser(format!(
            "password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    if is_breached_pattern(password) {
        return Err(InvalidUser(
            "password is one of the most common passwords or a simple pattern (one character \
             repeated, a run like 12345678 or abcdefgh, a keyboard row); choose another"
                .into(),
        ));
    }
    Ok(())
}

/// The rule every page that sets a password states (issue: "length and breached-pattern rules
/// stated on the page").
pub fn password_rule() -> String {
    format!(
        "Use {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters. Passwords found first in \
         breach lists are refused: the most common ones, one character repeated, runs like \
         12345678 or abcdefgh, and keyboard rows like qwertyui."
    )
}

/// The most common passwords of public breach corpora that meet the length rule, lower-cased.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "letmein1",
    "trustno1",
    "starwars",
    "whatever",
    "superman",
    "michelle",
    "jennifer",
    "corvette",
    "computer",
    "mercedes",
    "internet",
    "nicole123",
    "changeme",
    "administrator",
    "admin123",
    "qwerty123",
    "1q2w3e4r",
    "1qaz2wsx",
    "zaq12wsx",
    "football1",
    "iloveyou1",
    "liverpool",
    "chelsea1",
    "dragon123",
    "monkey123",
    "shadow123",
    "master123",
    "asdfghjkl",
    "qwertyuiop",
    "11111111",
    "12341234",
    "88888888",
    "87654321",
    "123123123",
    "987654321",
    "00000000",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "abc12345",
    "abcd1234",
    "password!",
    "secret123",
    "access14",
];

fn is_breached_pattern(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return true;
    }
    let chars: Vec<char> = lower.chars().collect();
    if chars.windows(2).all(|w| w[0] == w[1]) {
        return true;
    }
    let step = |d: i32| chars.windows(2).all(|w| (w[1] as i32) - (w[0] as i32) == d);
    if step(1) || step(-1) {
        return true;
    }
    ["qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"]
        .iter()
        .any(|row| row.contains(lower.as_str()) || lower.contains(row))
}

const COLUMNS: &str = "id, email, username, name, given_name, family_name, email_verified, \
    is_admin, disabled, created_at, updated_at";

fn from_row(row: &Row) -> Result<User, PortError> {
    Ok(User {
        id: row.text(0)?.to_owned(),
        email: row.text(1)?.to_owned(),
        username: row.text(2)?.to_owned(),
        name: row.text(3)?.to_owned(),
        given_name: row.text(4)?.to_owned(),
        family_name: row.text(5)?.to_owned(),
        email_verified: row.int(6)? != 0,
        is_admin: row.int(7)? != 0,
        disabled: row.int(8)? != 0,
        created_at: row.int(9)?,
        updated_at: row.int(10)?,
    })
}

pub async fn load(sql: &impl Sql, id: &str) -> Result<Option<User>, PortError> {
    const Q: &str = "SELECT id, email, username, name, given_name, family_name, email_verified, \
        is_admin, disabled, created_at, updated_at FROM users WHERE id = ?";
    debug_assert!(Q.contains(COLUMNS));
    let rows = sql.query(Statement::new(Q, vec![id.into()])).await?;
    rows.first().map(from_row).transpose()
}

/// The user a login form names: by username or email, case-insensitively.
pub async fn find_by_identifier(
    sql: &impl Sql,
    identifier: &str,
) -> Result<Option<User>, PortError> {
    const Q: &str = "SELECT id, email, username, name, given_name, family_name, email_verified, \
        is_admin, disabled, created_at, updated_at FROM users \
        WHERE username = ?1 COLLATE NOCASE OR email = ?1 COLLATE NOCASE LIMIT 1";
    let rows = sql
        .query(Statement::new(Q, vec![identifier.trim().into()]))
        .await?;
    rows.first().map(from_row).transpose()
}

/// A user named by id, username or email (admin commands accept any of them).
pub async fn resolve(sql: &impl Sql, ident: &str) -> Result<Option<User>, PortError> {
    match load(sql, ident).await? {
        Some(u) => Ok(Some(u)),
        None => find_by_identifier(sql, ident).await,
    }
}

/// One page of users ordered by id (keyset paging: `after` is the last id of the previous
/// page). A non-empty `search` keeps the users whose username, email or name contains it,
/// case-insensitively (SQLite's `LIKE` folds ASCII case), with `%`, `_` and `\` in it matched
/// literally.
pub async fn list(
    sql: &impl Sql,
    after: &str,
    limit: i64,
    search: &str,
) -> Result<Vec<User>, PortError> {
    const Q: &str = "SELECT id, email, username, name, given_name, family_name, email_verified, \
        is_admin, disabled, created_at, updated_at FROM users WHERE id > ?1 \
        AND (?2 = '' OR username LIKE ?2 ESCAPE '\\' OR email LIKE ?2 ESCAPE '\\' \
             OR name LIKE ?2 ESCAPE '\\') \
        ORDER BY id LIMIT ?3";
    debug_assert!(Q.contains(COLUMNS));
    let pattern = if search.is_empty() {
        String::new()
    } else {
        format!("%{}%", like_escape(search))
    };
    let rows = sql
        .query(Statement::new(
            Q,
            vec![after.into(), pattern.into(), limit.into()],
        ))
        .await?;
    rows.iter().map(from_row).collect()
}

/// Escapes `LIKE` wildcards (with `\` as the `ESCAPE` character) so user text matches literally.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// The email or username belongs to another user.
    Taken,
    /// The id is (a spelling of) a client's `client_id`: refused, because a client's own
    /// tokens carry its id as `sub` ([`crate::client::principal_key`]).
    IdIsAClient,
}

/// Inserts a user, unless its email or username is taken or its id names a client.
///
/// The client check is inside the INSERT (`... SELECT ... WHERE NOT EXISTS`), so it is one
/// statement: SQLite and D1 run one writer at a time, and a client registered concurrently
/// with the same id either commits first (this insert inserts nothing) or after (and its own
/// check sees this user). The key expression is the SQL twin of
/// [`crate::client::principal_key`].
pub async fn insert(sql: &impl Sql, u: &User) -> Result<Inserted, PortError> {
    const Q: &str = "INSERT INTO users (id, email, username, name, given_name, family_name, \
        email_verified, is_admin, disabled, created_at, updated_at) \
        SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE NOT EXISTS (SELECT 1 FROM \
        clients WHERE replace(replace(lower(client_id), 'urn:uuid:', ''), '-', '') = ?12) \
        RETURNING id";
    let stmt = Statement::new(
        Q,
        vec![
            u.id.as_str().into(),
            u.email.as_str().into(),
            u.username.as_str().into(),
            u.name.as_str().into(),
            u.given_name.as_str().into(),
            u.family_name.as_str().into(),
            u.email_verified.into(),
            u.is_admin.into(),
            u.disabled.into(),
            u.created_at.into(),
            u.updated_at.into(),
            crate::client::principal_key(&u.id).into(),
        ],
    );
    match sql.query(stmt).await {
        Ok(rows) if rows.is_empty() => Ok(Inserted::IdIsAClient),
        Ok(_) => Ok(Inserted::Created),
        Err(e) if e.kind == PortErrorKind::Conflict => Ok(Inserted::Taken),
        Err(e) => Err(e),
    }
}

/// Writes a user's profile over the stored one (same id); `Ok(false)` when the new email or
/// username is taken by another user.
pub async fn update(sql: &impl Sql, u: &User) -> Result<bool, PortError> {
    const Q: &str = "UPDATE users SET email = ?, username = ?, name = ?, given_name = ?, \
        family_name = ?, email_verified = ?, is_admin = ?, updated_at = ? WHERE id = ?";
    let stmt = Statement::new(
        Q,
        vec![
            u.email.as_str().into(),
            u.username.as_str().into(),
            u.name.as_str().into(),
            u.given_name.as_str().into(),
            u.family_name.as_str().into(),
            u.email_verified.into(),
            u.is_admin.into(),
            u.updated_at.into(),
            u.id.as_str().into(),
        ],
    );
    match sql.query(stmt).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind == PortErrorKind::Conflict => Ok(false),
        Err(e) => Err(e),
    }
}

/// Disables a user, ending their sessions and revoking their grants (so their refresh tokens
/// stop rotating and their access tokens stop being accepted) in the same batch: a disabled
/// user keeps nothing that still works.
pub async fn disable(sql: &impl Sql, id: &str, now: UnixTime) -> Result<(), PortError> {
    sql.batch(vec![
        Statement::new(
            "UPDATE users SET disabled = 1, updated_at = ? WHERE id = ?",
            vec![now.into(), id.into()],
        ),
        Statement::new(
            "UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL",
            vec![now.into(), id.into()],
        ),
        Statement::new(
            "UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            vec![now.into(), id.into()],
        ),
    ])
    .await
}

/// Lets a disabled user log in again. What disabling ended stays ended.
pub async fn enable(sql: &impl Sql, id: &str, now: UnixTime) -> Result<(), PortError> {
    sql.query(Statement::new(
        "UPDATE users SET disabled = 0, updated_at = ? WHERE id = ?",
        vec![now.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Deletes a user with their sessions, consents and grants (which revokes their refresh
/// tokens and access tokens), atomically.
pub async fn delete(sql: &impl Sql, id: &str, now: UnixTime) -> Result<bool, PortError> {
    if load(sql, id).await?.is_none() {
        return Ok(false);
    }
    sql.batch(vec![
        Statement::new(
            "UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            vec![now.into(), id.into()],
        ),
        Statement::new("DELETE FROM sessions WHERE user_id = ?", vec![id.into()]),
        Statement::new("DELETE FROM consents WHERE user_id = ?", vec![id.into()]),
        Statement::new("DELETE FROM app_roles WHERE user_id = ?", vec![id.into()]),
        Statement::new("DELETE FROM users WHERE id = ?", vec![id.into()]),
    ])
    .await?;
    Ok(true)
}

/// The credentials schema, applied before the first credentials write: Spin seeds only its
/// `default` database (`spin up --sqlite`), so a fresh `credentials` database starts empty.
pub async fn ensure_credentials_schema(credentials: &impl Sql) -> Result<(), PortError> {
    for (_, migration) in crate::schema::CREDENTIALS_MIGRATIONS {
        for stmt in migration
            .split(';')
            .map(strip_sql_comments)
            .filter(|s| !s.trim().is_empty())
        {
            // The migration text is `'static`, as the port's statements must be.
            credentials.query(Statement::new(stmt, vec![])).await?;
        }
    }
    Ok(())
}

fn strip_sql_comments(s: &'static str) -> &'static str {
    // Comments sit on their own lines before each statement; the statement starts at the
    // first line that is not a comment.
    let mut rest = s;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else {
            return trimmed;
        }
    }
}

/// argon2id with the parameters DESIGN.md fixes (m=19456 KiB, t=2, p=1), as a PHC string.
pub fn hash_password(rng: &impl Rng, password: &str) -> Result<String, PortError> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PortError::other(format!("salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PortError::other(format!("argon2: {e}")))
}

/// The PHC prefix of the hashes [`hash_password`] writes: a stored hash that starts otherwise
/// (an imported one, [`legacy`]) is replaced at the next successful sign-in.
pub const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Whether `stored` is edgeid's own hash with today's parameters (needs no upgrade).
pub fn is_current(stored: &str) -> bool {
    stored.starts_with(CURRENT_PREFIX) && PasswordHash::new(stored).is_ok()
}

/// Checks `password` against a stored hash in constant time: edgeid's own PHC string
/// (argon2's own comparison), or an imported hash in any format [`legacy`] verifies, within
/// its cost bounds.
pub fn verify_password(stored: &str, password: &str) -> bool {
    if stored.starts_with(CURRENT_PREFIX) {
        return PasswordHash::new(stored).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
    }
    legacy::verify(stored, password.as_bytes())
}

/// Replaces an imported hash that just verified with `new` (edgeid's own), unless the stored
/// hash changed meanwhile (one conditional statement: a password set concurrently is never
/// overwritten with the old one). `Ok(true)` when this call replaced it.
pub async fn upgrade_password(
    credentials: &impl Sql,
    user_id: &str,
    old: &str,
    new: &str,
    now: UnixTime,
) -> Result<bool, PortError> {
    let rows = credentials
        .query(Statement::new(
            "UPDATE password_credentials SET phc = ?1, updated_at = ?2 \
             WHERE user_id = ?3 AND phc = ?4 RETURNING user_id",
            vec![new.into(), now.into(), user_id.into(), old.into()],
        ))
        .await?;
    Ok(!rows.is_empty())
}

/// A hash of a password nobody knows, verified when the named account does not exist so the
/// answer takes the same time either way.
pub const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    3Nxqj4P7W9cA3DMtqZbN0bK9bqkG2bZg3L0Fh0h1Q2s";

/// Stores a password hash and nothing else: for a user who has nothing yet to end (a user
/// being created, a legacy hash upgraded at sign-in). A *change* of password goes through
/// [`change_password`].
pub async fn set_password(
    credentials: &impl Sql,
    user_id: &str,
    phc: &str,
    now: UnixTime,
) -> Result<(), PortError> {
    ensure_credentials_schema(credentials).await?;
    credentials.query(store_password(user_id, phc, now)).await?;
    Ok(())
}

fn store_password(user_id: &str, phc: &str, now: UnixTime) -> Statement {
    Statement::new(
        "INSERT INTO password_credentials (user_id, phc, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
        vec![user_id.into(), phc.into(), now.into()],
    )
}

/// Which of the user's sessions survive a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep<'a> {
    /// None: an admin set the password (`PUT /admin/users/{user}/password`, `edgeid user
    /// set-password`), or a recovery link did (it starts the one new session afterwards).
    Nothing,
    /// The session that made the change on the settings page, by its token digest.
    Session(&'a str),
}

/// A new password, and the end of what the old one protected (DESIGN.md: "credential changes
/// end what they protect"; RFC 9700 §4.14.2: refresh tokens are revoked when the user's
/// credentials change):
///
/// - main database, one batch: every session of the user ends but `keep`, and every grant of
///   the user is revoked, so their refresh tokens stop rotating, their access tokens stop
///   being accepted (userinfo, introspection) and codes not yet redeemed redeem to
///   `invalid_grant` ([`crate::grant::redeem_code`]);
/// - credentials database, one batch: the new hash, and every open recovery link of the
///   user used up (a link mailed before the change must not undo it).
///
/// The two databases are separate on purpose (least privilege), so no transaction spans both.
/// The main batch runs before the password is written and once more after it: a failure in
/// between leaves the old password in place with nothing it opened still alive (fail
/// closed), and the second pass ends what a sign-in with the old password opened while the
/// new one was being written. Both statements are idempotent.
pub async fn change_password<P: crate::ports::Ports>(
    ports: &P,
    user_id: &str,
    phc: &str,
    now: UnixTime,
    keep: Keep<'_>,
) -> Result<(), PortError> {
    let kept = match keep {
        Keep::Nothing => "",
        Keep::Session(token_sha256) => token_sha256,
    };
    let end = vec![
        Statement::new(
            "UPDATE sessions SET ended_at = ?1 \
             WHERE user_id = ?2 AND ended_at IS NULL AND token_sha256 <> ?3",
            vec![now.into(), user_id.into(), kept.into()],
        ),
        Statement::new(
            "UPDATE grants SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
            vec![now.into(), user_id.into()],
        ),
    ];
    ports.sql().batch(end.clone()).await?;
    ensure_credentials_schema(ports.credentials()).await?;
    ports
        .credentials()
        .batch(vec![
            store_password(user_id, phc, now),
            Statement::new(
                "UPDATE recovery_tokens SET used_at = ?1 WHERE user_id = ?2 AND used_at IS NULL",
                vec![now.into(), user_id.into()],
            ),
        ])
        .await?;
    ports.sql().batch(end).await
}

pub async fn password_hash(
    credentials: &impl Sql,
    user_id: &str,
) -> Result<Option<String>, PortError> {
    let rows = credentials
        .query(Statement::new(
            "SELECT phc FROM password_credentials WHERE user_id = ?",
            vec![user_id.into()],
        ))
        .await?;
    rows.first()
        .map(|r| r.text(0).map(str::to_owned))
        .transpose()
}

pub async fn delete_credentials(credentials: &impl Sql, user_id: &str) -> Result<(), PortError> {
    ensure_credentials_schema(credentials).await?;
    credentials
        .batch(vec![
            Statement::new(
                "DELETE FROM password_credentials WHERE user_id = ?",
                vec![user_id.into()],
            ),
            Statement::new(
                "DELETE FROM imported_passwords WHERE user_id = ?",
                vec![user_id.into()],
            ),
        ])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;

    #[test]
    fn breached_patterns_are_refused_and_passphrases_pass() {
        for bad in [
            "password123",
            "Password1",
            "aaaaaaaa",
            "12345678",
            "hgfedcba",
            "qwertyuiop",
            "xxqwertyuiopxx",
        ] {
            assert!(check_password(bad).is_err(), "{bad}");
        }
        for good in ["correct horse battery", "wonderland-42", "can-we-fix-it"] {
            assert!(check_password(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn password_hash_round_trips_and_dummy_hash_parses() {
        let rng = SeededRng::new(3);
        let phc = hash_password(&rng, "correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "wrong horse"));
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
        assert!(!verify_password(DUMMY_PHC, "correct horse"));
    }

    #[test]
    fn validation_refuses_bad_email_username_and_short_password() {
        let ok = UserInput {
            email: "a@example.com".into(),
            username: "alice".into(),
            ..Default::default()
        };
        assert!(ok.clone().validate("id".into(), 1).is_ok());
        for bad in [
            UserInput {
                email: "nope".into(),
                ..ok.clone()
            },
            UserInput {
                username: "a b".into(),
                ..ok.clone()
            },
            UserInput {
                password: Some("short".into()),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate("id".into(), 1).is_err());
        }
    }

    #[test]
    fn a_patch_is_validated_with_the_create_rules_and_keeps_id_and_created_at() {
        let (existing, _) = UserInput {
            email: "a@example.com".into(),
            username: "alice".into(),
            name: "Alice".into(),
            ..Default::default()
        }
        .validate("sub-1".into(), 1)
        .unwrap();
        let patch: UserPatch =
            serde_json::from_str(r#"{"email": " b@example.com ", "name": null}"#).unwrap();
        let u = patch.apply(&existing, 5).unwrap();
        assert_eq!((u.id.as_str(), u.created_at, u.updated_at), ("sub-1", 1, 5));
        assert_eq!((u.email.as_str(), u.name.as_str()), ("b@example.com", ""));
        assert_eq!(u.username, "alice");
        assert_eq!(u.changed_fields(&existing), ["email", "name"]);
        for bad in [r#"{"email": null}"#, r#"{"username": "a b"}"#] {
            let patch: UserPatch = serde_json::from_str(bad).unwrap();
            assert!(patch.apply(&existing, 5).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<UserPatch>(r#"{"id": "x"}"#).is_err());
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
