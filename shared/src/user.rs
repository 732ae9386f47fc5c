//! Users (the people who log in) and their passwords.
//!
//! The profile lives in the main database, where userinfo can read it; the password hash lives
//! in the credentials database, which only login, recovery and admin are granted (DESIGN.md).
//! `id` is the stable `sub` (OIDC Core §2, §5.7): username and email may change.

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
    Ok(())
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

pub async fn list(sql: &impl Sql, after: &str, limit: i64) -> Result<Vec<User>, PortError> {
    const Q: &str = "SELECT id, email, username, name, given_name, family_name, email_verified, \
        is_admin, disabled, created_at, updated_at FROM users WHERE id > ? ORDER BY id LIMIT ?";
    let rows = sql
        .query(Statement::new(Q, vec![after.into(), limit.into()]))
        .await?;
    rows.iter().map(from_row).collect()
}

/// Inserts a user; `Ok(false)` when the email or username is taken.
pub async fn insert(sql: &impl Sql, u: &User) -> Result<bool, PortError> {
    const Q: &str = "INSERT INTO users (id, email, username, name, given_name, family_name, \
        email_verified, is_admin, disabled, created_at, updated_at) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
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
        ],
    );
    match sql.query(stmt).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind == PortErrorKind::Conflict => Ok(false),
        Err(e) => Err(e),
    }
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

/// Checks `password` against a PHC string in constant time (argon2's own comparison).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a password nobody knows, verified when the named account does not exist so the
/// answer takes the same time either way.
pub const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    3Nxqj4P7W9cA3DMtqZbN0bK9bqkG2bZg3L0Fh0h1Q2s";

pub async fn set_password(
    credentials: &impl Sql,
    user_id: &str,
    phc: &str,
    now: UnixTime,
) -> Result<(), PortError> {
    ensure_credentials_schema(credentials).await?;
    credentials
        .query(Statement::new(
            "INSERT INTO password_credentials (user_id, phc, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
            vec![user_id.into(), phc.into(), now.into()],
        ))
        .await?;
    Ok(())
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
        .query(Statement::new(
            "DELETE FROM password_credentials WHERE user_id = ?",
            vec![user_id.into()],
        ))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;

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
}
