//! The launcher (`/`): the applications the signed-in user holds a role on (every app for a
//! global admin, as at sign-in: DESIGN.md "admins reach all"), each opening the app's URL.

use askama::Template;
use http::StatusCode;

use super::Ctx;
use crate::error::OAuthError;
use crate::ports::Ports;
use crate::{Response, app};

struct Tile {
    name: String,
    url: String,
    host: String,
    logo: Option<String>,
    /// The user's roles on it, comma-separated.
    roles: String,
}

#[derive(Template)]
#[template(path = "console/launcher.html")]
struct Launcher {
    apps: Vec<Tile>,
    admin: bool,
}

pub async fn page<P: Ports>(ports: &P, ctx: &Ctx<'_>) -> Result<Response, OAuthError> {
    let roles = app::roles(ports.sql(), &ctx.user.id).await?;
    let mut apps = Vec::new();
    for a in app::list(ports.sql()).await? {
        let mine: Vec<&str> = roles
            .iter()
            .filter(|(slug, _)| *slug == a.slug)
            .map(|(_, r)| r.as_str())
            .collect();
        if mine.is_empty() && !ctx.user.is_admin {
            continue;
        }
        let host = url::Url::parse(&a.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        apps.push(Tile {
            name: a.name,
            url: a.url,
            host,
            logo: a.logo_url,
            roles: mine.join(", "),
        });
    }
    Ok(ctx.render(
        StatusCode::OK,
        "Your apps",
        &Launcher {
            apps,
            admin: ctx.user.is_admin,
        },
    ))
}
