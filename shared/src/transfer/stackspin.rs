//! `POST /admin/import/stackspin`: the Stackspin dashboard's apps and per-user app roles (its
//! tables `role`, `app`, `oauthclient_app`, `app_role`; `../shared/fixtures/migration/README.md`)
//! become edgeid apps ([`crate::app`]) and roles.
//!
//! Stackspin's role "no access" (and a user without an `app_role` row for an app) means no
//! role. For every user the request names, their roles on every app of the request become
//! exactly what the dashboard says, so a second run changes nothing and a changed dashboard
//! updates edgeid (a role taken away there is revoked here). Users the request does not name
//! keep their roles. The users must exist already (`edgeid import kratos` keeps the Kratos
//! id, which is the dashboard's `user_id`); a role of a missing user is refused.
//!
//! An app's URL is the dashboard's `url`, else the origin of the first redirect URI of the
//! app's OAuth client (imported from Hydra before), else `https://<slug>.<domain>` when the
//! request names the cluster's `domain`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use http::StatusCode;
use serde::Deserialize;

use super::{Item, Outcome, Report, existing_users};
use crate::admin::AdminError;
use crate::app::{self, App, AppInput};
use crate::ports::{Ports, Sql as _, Statement};
use crate::{Response, audit, web};

/// The body of `POST /admin/import/stackspin`: the dashboard's tables (other members, such
/// as further tables of a database dump, are ignored).
#[derive(Debug, Deserialize)]
pub struct StackspinImport {
    #[serde(default)]
    pub dry_run: bool,
    /// The cluster's domain, for apps without a URL (`https://<slug>.<domain>`).
    #[serde(default)]
    pub domain: Option<String>,
    pub role: Vec<RoleRow>,
    pub app: Vec<AppRow>,
    /// Absent (a CSV export has no such table): an existing app keeps its client, a new one
    /// signs in with the client named like its slug (Stackspin's convention).
    #[serde(default)]
    pub oauthclient_app: Option<Vec<ClientAppRow>>,
    #[serde(default)]
    pub app_role: Vec<AppRoleRow>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoleRow {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppRow {
    pub id: i64,
    /// Absent in a CSV export: an existing app keeps its name, a new one is named by its slug.
    #[serde(default)]
    pub name: Option<String>,
    pub slug: String,
    #[serde(default)]
    pub external: Option<bool>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClientAppRow {
    pub oauthclient_id: String,
    pub app_id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppRoleRow {
    pub user_id: String,
    pub app_id: i64,
    /// `null` is "no access", as in the dashboard.
    #[serde(default)]
    pub role_id: Option<i64>,
}

/// Stackspin's role name onto an edgeid role: `None` for "no access".
pub fn role_name(stackspin: &str) -> Result<Option<String>, String> {
    let n = stackspin.trim().to_lowercase();
    if n.is_empty() || n == "no access" || n == "no_access" || n == "none" {
        return Ok(None);
    }
    let n = n.replace(' ', "-");
    if app::valid_name(&n) {
        Ok(Some(n))
    } else {
        Err(format!(
            "role {stackspin:?} has no edgeid name (1-64 characters of a-z, 0-9, '-', '_')"
        ))
    }
}

fn title(slug: &str) -> String {
    let mut c = slug.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `POST /admin/import/stackspin`.
pub async fn import<P: Ports>(ports: &P, body: StackspinImport) -> Result<Response, AdminError> {
    let now = ports.now();
    let sql = ports.sql();
    let mut report = Report::new(body.dry_run);
    let mut batch = Vec::new();

    let roles: HashMap<i64, &str> = body.role.iter().map(|r| (r.id, r.name.as_str())).collect();
    let client_of: Option<HashMap<i64, &str>> = body.oauthclient_app.as_ref().map(|rows| {
        rows.iter()
            .map(|r| (r.app_id, r.oauthclient_id.as_str()))
            .collect()
    });

    // Apps first: a role is written only on an app that is (or will be) there.
    let mut slug_of: HashMap<i64, String> = HashMap::new();
    // One client signs in for one app (the `apps_client` index): a second app of this
    // request naming the same client would fail the whole batch.
    let mut claimed: HashMap<String, String> = HashMap::new();
    for a in &body.app {
        let existing = app::load(sql, &a.slug).await?;
        let client_id = match (&client_of, &existing) {
            (Some(map), _) => map.get(&a.id).map_or(a.slug.clone(), |c| (*c).to_owned()),
            (None, Some(e)) => e.client_id.clone(),
            (None, None) => a.slug.clone(),
        };
        let url = match resolve_url(ports, a, &client_id, body.domain.as_deref()).await? {
            Some(u) => u,
            None => match &existing {
                Some(e) => e.url.clone(),
                None => {
                    report.push(Item::refused(
                        "app",
                        &a.slug,
                        "the dashboard has no URL for this app and its client has no redirect \
                         URI: pass the cluster's domain (--domain)",
                    ));
                    continue;
                }
            },
        };
        let name = a
            .name
            .clone()
            .or_else(|| existing.as_ref().map(|e| e.name.clone()))
            .unwrap_or_else(|| title(&a.slug));
        let external = a
            .external
            .or(existing.as_ref().map(|e| e.external))
            .unwrap_or(a.slug.starts_with("ext-"));
        let wanted = match (AppInput {
            slug: a.slug.clone(),
            name,
            url,
            external: Some(external),
            client_id: Some(client_id),
            // The dashboard has no logos; the import leaves edgeid's as they are.
            logo_url: existing.as_ref().and_then(|e| e.logo_url.clone()),
        })
        .validate(now)
        {
            Ok(w) => w,
            Err(reason) => {
                report.push(Item::refused("app", &a.slug, reason));
                continue;
            }
        };
        if let Some(other) = claimed.get(&wanted.client_id)
            && *other != wanted.slug
        {
            report.push(Item::refused(
                "app",
                &a.slug,
                format!(
                    "client {} already signs in for app {other}",
                    wanted.client_id
                ),
            ));
            continue;
        }
        claimed.insert(wanted.client_id.clone(), wanted.slug.clone());
        if let Some(other) = app::for_client(sql, &wanted.client_id).await?
            && other.slug != wanted.slug
        {
            report.push(Item::refused(
                "app",
                &a.slug,
                format!(
                    "client {} already signs in for app {}",
                    wanted.client_id, other.slug
                ),
            ));
            continue;
        }
        let outcome = match &existing {
            Some(e) if same_app(e, &wanted) => Outcome::Unchanged,
            Some(e) => {
                batch.push(update_app(&wanted, e.created_at));
                Outcome::Updated
            }
            None => {
                batch.push(insert_app(&wanted));
                Outcome::Created
            }
        };
        report.push(Item::new("app", &a.slug, outcome));
        slug_of.insert(a.id, wanted.slug);
    }

    // Roles: per named user, per imported app, exactly the dashboard's set.
    let mut wanted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut users: BTreeSet<&str> = BTreeSet::new();
    let mut refused_rows: Vec<Item> = Vec::new();
    for r in &body.app_role {
        users.insert(r.user_id.as_str());
        let id = format!("{}/{}", r.user_id, r.app_id);
        let Some(slug) = slug_of.get(&r.app_id) else {
            let reason = if body.app.iter().any(|a| a.id == r.app_id) {
                "its app was refused"
            } else {
                "no app with this app_id in the export"
            };
            refused_rows.push(Item::refused("roles", id, reason));
            continue;
        };
        let entry = wanted.entry((r.user_id.clone(), slug.clone())).or_default();
        let Some(role_id) = r.role_id else { continue };
        let Some(name) = roles.get(&role_id) else {
            refused_rows.push(Item::refused(
                "roles",
                format!("{}/{slug}", r.user_id),
                format!("role_id {role_id} is not in the role table"),
            ));
            continue;
        };
        match role_name(name) {
            Ok(Some(n)) => {
                entry.insert(n);
            }
            Ok(None) => {}
            Err(reason) => refused_rows.push(Item::refused(
                "roles",
                format!("{}/{slug}", r.user_id),
                reason,
            )),
        }
    }
    let user_list: Vec<&str> = users.iter().copied().collect();
    let present = existing_users(sql, &user_list).await?;
    for user in &user_list {
        if !present.contains(*user) {
            report.push(Item::refused(
                "roles",
                *user,
                "no such user in edgeid: import the identities first (`edgeid import kratos`)",
            ));
            continue;
        }
        let held = app::roles(sql, user).await?;
        for slug in slug_of.values() {
            let want = wanted.remove(&(user.to_string(), slug.clone()));
            let have: BTreeSet<String> = held
                .iter()
                .filter(|(a, _)| a == slug)
                .map(|(_, r)| r.clone())
                .collect();
            let Some(want) = want.or_else(|| (!have.is_empty()).then(BTreeSet::new)) else {
                continue;
            };
            let id = format!("{user}/{slug}");
            let mut item = Item::new("roles", id, Outcome::Unchanged);
            if want != have {
                item.outcome = if have.is_empty() {
                    Outcome::Created
                } else {
                    Outcome::Updated
                };
                for gone in have.difference(&want) {
                    batch.push(Statement::new(
                        "DELETE FROM app_roles WHERE user_id = ? AND app_slug = ? AND role = ?",
                        vec![(*user).into(), slug.as_str().into(), gone.as_str().into()],
                    ));
                }
                for new in want.difference(&have) {
                    batch.push(Statement::new(
                        "INSERT INTO app_roles (user_id, app_slug, role, granted_at) \
                         VALUES (?, ?, ?, ?) ON CONFLICT (user_id, app_slug, role) DO NOTHING",
                        vec![
                            (*user).into(),
                            slug.as_str().into(),
                            new.as_str().into(),
                            now.into(),
                        ],
                    ));
                }
            }
            report.push(item);
        }
    }
    for item in refused_rows {
        report.push(item);
    }
    if !body.dry_run && !batch.is_empty() {
        sql.batch(batch).await?;
        audit::record(
            sql,
            now,
            "import.stackspin",
            "",
            serde_json::json!({ "created": report.created, "updated": report.updated,
                                "refused": report.refused }),
        )
        .await;
    }
    Ok(web::json(StatusCode::OK, &report))
}

fn same_app(a: &App, b: &App) -> bool {
    (&a.slug, &a.name, &a.url, a.external, &a.client_id)
        == (&b.slug, &b.name, &b.url, b.external, &b.client_id)
}

async fn resolve_url<P: Ports>(
    ports: &P,
    a: &AppRow,
    client_id: &str,
    domain: Option<&str>,
) -> Result<Option<String>, AdminError> {
    if let Some(u) = a.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        return Ok(Some(u.to_owned()));
    }
    if let Some(c) = crate::client::load(ports.sql(), client_id).await?
        && let Some(origin) = c
            .redirect_uris
            .iter()
            .filter_map(|r| url::Url::parse(r).ok())
            .find(|u| u.scheme() == "https")
            .map(|u| u.origin().ascii_serialization())
    {
        return Ok(Some(format!("{origin}/")));
    }
    Ok(domain
        .map(|d| d.trim().trim_matches('.'))
        .filter(|d| !d.is_empty())
        .map(|d| format!("https://{}.{d}/", a.slug)))
}

fn insert_app(a: &App) -> Statement {
    Statement::new(
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
    )
}

fn update_app(a: &App, created_at: i64) -> Statement {
    Statement::new(
        "UPDATE apps SET name = ?, url = ?, external = ?, client_id = ?, created_at = ?, \
         updated_at = ? WHERE slug = ?",
        vec![
            a.name.as_str().into(),
            a.url.as_str().into(),
            a.external.into(),
            a.client_id.as_str().into(),
            created_at.into(),
            a.updated_at.into(),
            a.slug.as_str().into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_stackspin_no_access_is_no_role() {
        assert_eq!(role_name("no access"), Ok(None));
        assert_eq!(role_name("No Access"), Ok(None));
        assert_eq!(role_name("admin"), Ok(Some("admin".into())));
        assert_eq!(role_name("User"), Ok(Some("user".into())));
        assert_eq!(role_name("power user"), Ok(Some("power-user".into())));
        assert!(role_name("über").is_err());
    }
}
