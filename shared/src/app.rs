//! Applications and per-app roles (DESIGN.md, "Identity rules carried over": users reach an
//! application only with a role on it; admins reach all).
//!
//! An app is the dashboard-tile record of the stack edgeid replaces (slug, name, URL, external
//! flag), tied to the OAuth client it signs in with. Clients that belong to no app are plain
//! OAuth/OIDC clients and need no role.

use serde::{Deserialize, Serialize};

use crate::ports::{PortError, PortErrorKind, Row, Sql, Statement, UnixTime};
use crate::user::User;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub slug: String,
    pub name: String,
    pub url: String,
    pub external: bool,
    pub client_id: String,
    /// An https URL of the app's logo for the launcher (issue 11); absent from the JSON when
    /// unset, so answers stay what they were for apps without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppInput {
    pub slug: String,
    pub name: String,
    pub url: String,
    /// Defaults to whether the slug starts with `ext-`, the convention of the replaced stack.
    pub external: Option<bool>,
    /// Defaults to the slug.
    pub client_id: Option<String>,
    /// Optional: an https URL (the rule of the instance's `logo_url`).
    #[serde(default)]
    pub logo_url: Option<String>,
}

/// The role names every app knows; others are allowed (custom roles).
pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_USER: &str = "user";

/// A logo URL: absolute `https`, with a host, at most 2048 bytes, no control characters or
/// whitespace (it goes into an `<img src>`). `None` for an empty value.
pub fn validate_logo_url(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(raw) = raw.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    url::Url::parse(raw)
        .ok()
        .filter(|u| {
            u.scheme() == "https"
                && u.host().is_some()
                && raw.len() <= 2048
                && !raw.chars().any(|c| c.is_control() || c.is_whitespace())
        })
        .map(|u| Some(u.to_string()))
        .ok_or_else(|| "logo_url must be an absolute https URL".to_owned())
}

/// Slugs and role names: lower-case letters, digits, `-`, `_`, 1-64 characters.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl AppInput {
    pub fn validate(self, now: UnixTime) -> Result<App, String> {
        if !valid_name(&self.slug) {
            return Err("slug must be 1-64 characters of a-z, 0-9, '-' or '_'".into());
        }
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err("name must be 1-200 characters".into());
        }
        let url = url::Url::parse(self.url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
            .ok_or("url must be an absolute http(s) URL")?;
        let client_id = match self.client_id {
            Some(c) => crate::client::validate_client_id(&c).map_err(|e| e.0)?,
            None => self.slug.clone(),
        };
        let logo_url = validate_logo_url(self.logo_url.as_deref())?;
        Ok(App {
            external: self.external.unwrap_or(self.slug.starts_with("ext-")),
            slug: self.slug,
            name,
            url: url.to_string(),
            client_id,
            logo_url,
            created_at: now,
            updated_at: now,
        })
    }
}

fn from_row(r: &Row) -> Result<App, PortError> {
    Ok(App {
        slug: r.text(0)?.to_owned(),
        name: r.text(1)?.to_owned(),
        url: r.text(2)?.to_owned(),
        external: r.int(3)? != 0,
        client_id: r.text(4)?.to_owned(),
        created_at: r.int(5)?,
        updated_at: r.int(6)?,
        logo_url: r.opt_text(7)?.map(str::to_owned),
    })
}

/// The columns [`from_row`] reads (`apps a` joined with its logo), then `$tail`.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT a.slug, a.name, a.url, a.external, a.client_id, a.created_at, a.updated_at, \
             l.logo_url FROM apps a LEFT JOIN app_logos l ON l.app_slug = a.slug",
            $tail
        )
    };
}

pub async fn list(sql: &impl Sql) -> Result<Vec<App>, PortError> {
    let rows = sql
        .query(Statement::new(select!(" ORDER BY a.slug"), vec![]))
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn load(sql: &impl Sql, slug: &str) -> Result<Option<App>, PortError> {
    let rows = sql
        .query(Statement::new(
            select!(" WHERE a.slug = ?"),
            vec![slug.into()],
        ))
        .await?;
    rows.first().map(from_row).transpose()
}

/// The app a client signs in for, if any.
pub async fn for_client(sql: &impl Sql, client_id: &str) -> Result<Option<App>, PortError> {
    let rows = sql
        .query(Statement::new(
            select!(" WHERE a.client_id = ?"),
            vec![client_id.into()],
        ))
        .await?;
    rows.first().map(from_row).transpose()
}

/// Inserts an app (and its logo, in the same batch); `Ok(false)` when the slug or the client
/// is already taken.
pub async fn insert(sql: &impl Sql, a: &App) -> Result<bool, PortError> {
    let insert = Statement::new(
        "INSERT INTO apps (slug, name, url, external, client_id, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![
            a.slug.as_str().into(),
            a.name.as_str().into(),
            a.url.as_str().into(),
            a.external.into(),
            a.client_id.as_str().into(),
            a.created_at.into(),
            a.updated_at.into(),
        ],
    );
    match sql.batch(vec![insert, logo_statement(a)]).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind == PortErrorKind::Conflict => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes what an app's record says about its logo: the row, or no row.
fn logo_statement(a: &App) -> Statement {
    match &a.logo_url {
        Some(url) => Statement::new(
            "INSERT INTO app_logos (app_slug, logo_url, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (app_slug) DO UPDATE SET logo_url = excluded.logo_url, \
             updated_at = excluded.updated_at",
            vec![
                a.slug.as_str().into(),
                url.as_str().into(),
                a.updated_at.into(),
            ],
        ),
        None => Statement::new(
            "DELETE FROM app_logos WHERE app_slug = ?",
            vec![a.slug.as_str().into()],
        ),
    }
}

/// Replaces the stored app `a.slug` with `a` (its `created_at` kept), logo included, in one
/// batch. `Ok(false)` when there is no such app or `a.client_id` already signs in for another
/// app (the `apps_client` index).
pub async fn update(sql: &impl Sql, a: &App) -> Result<bool, PortError> {
    if load(sql, &a.slug).await?.is_none() {
        return Ok(false);
    }
    let update = Statement::new(
        "UPDATE apps SET name = ?, url = ?, external = ?, client_id = ?, updated_at = ? \
         WHERE slug = ?",
        vec![
            a.name.as_str().into(),
            a.url.as_str().into(),
            a.external.into(),
            a.client_id.as_str().into(),
            a.updated_at.into(),
            a.slug.as_str().into(),
        ],
    );
    match sql.batch(vec![update, logo_statement(a)]).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind == PortErrorKind::Conflict => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes an app and every role on it, atomically.
pub async fn delete(sql: &impl Sql, slug: &str) -> Result<bool, PortError> {
    if load(sql, slug).await?.is_none() {
        return Ok(false);
    }
    sql.batch(vec![
        Statement::new(
            "DELETE FROM app_roles WHERE app_slug = ?",
            vec![slug.into()],
        ),
        Statement::new(
            "DELETE FROM app_logos WHERE app_slug = ?",
            vec![slug.into()],
        ),
        Statement::new("DELETE FROM apps WHERE slug = ?", vec![slug.into()]),
    ])
    .await?;
    Ok(true)
}

/// A user's roles as `(app slug, role)`, ordered.
pub async fn roles(sql: &impl Sql, user_id: &str) -> Result<Vec<(String, String)>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT app_slug, role FROM app_roles WHERE user_id = ? ORDER BY app_slug, role",
            vec![user_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned())))
        .collect()
}

/// The roles held on app `slug` as `(user id, role)`, ordered by user.
pub async fn holders(sql: &impl Sql, slug: &str) -> Result<Vec<(String, String)>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT user_id, role FROM app_roles WHERE app_slug = ? ORDER BY user_id, role",
            vec![slug.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned())))
        .collect()
}

/// How many users hold a role on each app (apps nobody holds one on are absent).
pub async fn holder_counts(
    sql: &impl Sql,
) -> Result<std::collections::HashMap<String, i64>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT app_slug, COUNT(DISTINCT user_id) FROM app_roles GROUP BY app_slug",
            vec![],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.text(0)?.to_owned(), r.int(1)?)))
        .collect()
}

/// A user's roles on one app.
pub async fn roles_on(sql: &impl Sql, user_id: &str, slug: &str) -> Result<Vec<String>, PortError> {
    Ok(roles(sql, user_id)
        .await?
        .into_iter()
        .filter(|(a, _)| a == slug)
        .map(|(_, r)| r)
        .collect())
}

pub async fn grant(
    sql: &impl Sql,
    user_id: &str,
    slug: &str,
    role: &str,
    now: UnixTime,
) -> Result<(), PortError> {
    sql.query(Statement::new(
        "INSERT INTO app_roles (user_id, app_slug, role, granted_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (user_id, app_slug, role) DO NOTHING",
        vec![user_id.into(), slug.into(), role.into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// Revokes a role; `Ok(false)` when the user did not have it.
pub async fn revoke(
    sql: &impl Sql,
    user_id: &str,
    slug: &str,
    role: &str,
) -> Result<bool, PortError> {
    let rows = sql
        .query(Statement::new(
            "DELETE FROM app_roles WHERE user_id = ? AND app_slug = ? AND role = ? RETURNING role",
            vec![user_id.into(), slug.into(), role.into()],
        ))
        .await?;
    Ok(!rows.is_empty())
}

/// What a user may do on the app behind a client, decided at authorize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The client belongs to no app: no role needed.
    NoApp,
    /// The user's roles on the app (a global admin gets `admin` whatever is stored).
    Roles { app: App, roles: Vec<String> },
    /// The client's app exists and the user has no role on it.
    Denied { app: App },
}

pub async fn access(sql: &impl Sql, user: &User, client_id: &str) -> Result<Access, PortError> {
    let Some(app) = for_client(sql, client_id).await? else {
        return Ok(Access::NoApp);
    };
    let mut roles = roles_on(sql, &user.id, &app.slug).await?;
    if user.is_admin && !roles.iter().any(|r| r == ROLE_ADMIN) {
        roles.insert(0, ROLE_ADMIN.to_owned());
    }
    Ok(if roles.is_empty() {
        Access::Denied { app }
    } else {
        Access::Roles { app, roles }
    })
}

/// The `groups` claim: `admin` for global admins, then `<app>:<role>` for every role.
pub async fn groups(sql: &impl Sql, user: &User) -> Result<Vec<String>, PortError> {
    let mut out = Vec::new();
    if user.is_admin {
        out.push(ROLE_ADMIN.to_owned());
    }
    for (slug, role) in roles(sql, &user.id).await? {
        out.push(format!("{slug}:{role}"));
    }
    Ok(out)
}
