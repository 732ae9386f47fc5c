//! Console pages: applications and their roles (issue 11 item 3).
//!
//! - `GET /admin/console/apps`: every app with its client, URL and how many users hold a role.
//! - `GET|POST /admin/console/apps/new`, `GET|POST /admin/console/apps/{slug}/edit`: the
//!   admin API's rules ([`AppInput::validate`] through [`admin::create_app`] and
//!   [`admin::update_app`], what `POST /admin/apps` and `PUT /admin/apps/{slug}` call),
//!   with an optional https logo shown on the launcher.
//! - `GET /admin/console/apps/{slug}`: the users holding a role, each with a small form that
//!   changes it in place (admin / user / custom / none), and a form adding a user by username
//!   or email. `POST /admin/console/apps/{slug}/roles` sets one user's role on the app: every
//!   other role of theirs there is revoked and the new one granted, each through
//!   [`admin::change_role_by`] (what `edgeid role grant|revoke` calls: the same checks, the
//!   same `role.granted` / `role.revoked` events, with `via: console` and the admin's id).
//! - `GET|POST /admin/console/apps/{slug}/delete`: a confirmation naming what goes (the roles),
//!   behind a recent sign-in ([`Ctx::require_recent`]); the POST checks it again.

use askama::Template;
use http::StatusCode;

use super::Ctx;
use crate::admin::{self, AdminError};
use crate::app::{self, App, AppInput};
use crate::error::OAuthError;
use crate::ports::Ports;
use crate::user::manage::Actor;
use crate::{Request, Response, user, web};

const BASE: &str = "/admin/console/apps";
use super::MAX_FIELD;

pub async fn route<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let post = req.method() == http::Method::POST;
    let query = web::Form::from_query(req.uri().query())?;
    match (super::segments(req.uri().path()).as_slice(), post) {
        (["apps"], false) => list_page(ports, ctx, &query).await,
        (["apps", "new"], false) => Ok(form_page(ctx, &Fields::default(), None, None)),
        (["apps", "new"], true) => create(ports, ctx, form).await,
        (["apps", slug], false) => app_page(ports, ctx, slug, &query).await,
        (["apps", slug, "edit"], false) => edit_page(ports, ctx, slug).await,
        (["apps", slug, "edit"], true) => update(ports, ctx, slug, form).await,
        (["apps", slug, "roles"], true) => set_role(ports, ctx, slug, form).await,
        (["apps", slug, "delete"], false) => delete_page(ports, ctx, slug).await,
        (["apps", slug, "delete"], true) => delete(ports, ctx, slug).await,
        _ => Ok(web::not_found()),
    }
}

/// The notice of a `?done=` after a redirect (fixed texts: nothing from the query is shown).
fn notice(query: &web::Form) -> Option<&'static str> {
    match query.get("done")? {
        "created" => Some("The application was created."),
        "saved" => Some("The application was saved."),
        "deleted" => Some("The application and its roles were deleted."),
        "role" => Some("The role was changed."),
        _ => None,
    }
}

/// An admin API refusal as a sentence for the page, or the error for the error page.
fn refusal(e: AdminError) -> Result<String, OAuthError> {
    super::refusal(e, "No such user or application.")
}

/// Who makes the console's role changes, for their audit events.
fn actor<'a>(ctx: &'a Ctx<'_>) -> Actor<'a> {
    Actor::Console {
        admin_id: &ctx.user.id,
    }
}

// --- list -------------------------------------------------------------------------------

struct AppRow {
    slug: String,
    name: String,
    client_id: String,
    url: String,
    holders: i64,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct ListPage {
    notice: Option<&'static str>,
    apps: Vec<AppRow>,
}

async fn list_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let counts = app::holder_counts(ports.sql()).await?;
    let apps = app::list(ports.sql())
        .await?
        .into_iter()
        .map(|a| AppRow {
            holders: counts.get(&a.slug).copied().unwrap_or(0),
            slug: a.slug,
            name: a.name,
            client_id: a.client_id,
            url: a.url,
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "Applications",
        &ListPage {
            notice: notice(query),
            apps,
        },
    ))
}

// --- create and edit --------------------------------------------------------------------

/// The form's values, as sent (re-shown with the refusal).
#[derive(Default)]
struct Fields {
    slug: String,
    name: String,
    url: String,
    client_id: String,
    logo_url: String,
    external: bool,
}

impl Fields {
    fn of(a: &App) -> Fields {
        Fields {
            slug: a.slug.clone(),
            name: a.name.clone(),
            url: a.url.clone(),
            client_id: a.client_id.clone(),
            logo_url: a.logo_url.clone().unwrap_or_default(),
            external: a.external,
        }
    }

    fn read(form: &web::Form) -> Result<Fields, OAuthError> {
        let field = |name: &str| -> Result<String, OAuthError> {
            Ok(form
                .get_bounded(name, MAX_FIELD)?
                .unwrap_or("")
                .trim()
                .to_owned())
        };
        Ok(Fields {
            slug: field("slug")?,
            name: field("name")?,
            url: field("url")?,
            client_id: field("client_id")?,
            logo_url: field("logo_url")?,
            external: form.get("external") == Some("on"),
        })
    }

    fn input(&self) -> AppInput {
        AppInput {
            slug: self.slug.clone(),
            name: self.name.clone(),
            url: self.url.clone(),
            external: Some(self.external),
            client_id: (!self.client_id.is_empty()).then(|| self.client_id.clone()),
            logo_url: (!self.logo_url.is_empty()).then(|| self.logo_url.clone()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/apps-form.html")]
struct FormPage<'a> {
    csrf: &'a str,
    /// The app being edited (its slug cannot change), or `None` for a new one.
    editing: Option<&'a str>,
    f: &'a Fields,
    error: Option<String>,
}

fn form_page(ctx: &Ctx<'_>, f: &Fields, editing: Option<&str>, error: Option<String>) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let title = if editing.is_some() {
        "Edit application"
    } else {
        "New application"
    };
    ctx.render(
        status,
        title,
        &FormPage {
            csrf: &ctx.csrf,
            editing,
            f,
            error,
        },
    )
}

async fn create<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let f = Fields::read(form)?;
    match admin::create_app(ports, f.input()).await {
        Ok(a) => Ok(web::see_other(&format!("{BASE}/{}?done=created", a.slug))),
        Err(e) => Ok(form_page(ctx, &f, None, Some(refusal(e)?))),
    }
}

async fn edit_page<P: Ports>(ports: &P, ctx: &Ctx<'_>, slug: &str) -> Result<Response, OAuthError> {
    let Some(a) = app::load(ports.sql(), slug).await? else {
        return Ok(web::not_found());
    };
    Ok(form_page(ctx, &Fields::of(&a), Some(&a.slug), None))
}

async fn update<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    slug: &str,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let Some(a) = app::load(ports.sql(), slug).await? else {
        return Ok(web::not_found());
    };
    let f = Fields {
        slug: a.slug.clone(),
        ..Fields::read(form)?
    };
    match admin::update_app(ports, &a.slug, f.input()).await {
        Ok(a) => Ok(web::see_other(&format!("{BASE}/{}?done=saved", a.slug))),
        Err(e) => Ok(form_page(ctx, &f, Some(&a.slug), Some(refusal(e)?))),
    }
}

// --- one app and its roles --------------------------------------------------------------

/// What the role select offers.
const CHOICES: [&str; 4] = ["admin", "user", "custom", "none"];

struct Holder {
    id: String,
    username: String,
    email: String,
    name: String,
    /// The role the select shows (`admin`, `user` or `custom`).
    choice: &'static str,
    /// The (first) custom role name, for the row's text field.
    custom: String,
    /// Every role held, comma-separated.
    roles: String,
}

#[derive(Template)]
#[template(path = "console/apps-show.html")]
struct AppPage<'a> {
    csrf: &'a str,
    notice: Option<&'static str>,
    error: Option<String>,
    app: &'a App,
    holders: Vec<Holder>,
    choices: [&'static str; 4],
}

async fn app_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    slug: &str,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    show(ports, ctx, slug, notice(query), None).await
}

async fn show<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    slug: &str,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, OAuthError> {
    let Some(a) = app::load(ports.sql(), slug).await? else {
        return Ok(web::not_found());
    };
    let mut holders: Vec<Holder> = Vec::new();
    for (user_id, role) in app::holders(ports.sql(), &a.slug).await? {
        if let Some(h) = holders.last_mut().filter(|h| h.id == user_id) {
            h.roles.push_str(", ");
            h.roles.push_str(&role);
            add_role(h, &role);
            continue;
        }
        // A role row outlives nothing: deleting a user deletes their roles; skip a stray one.
        let Some(u) = user::load(ports.sql(), &user_id).await? else {
            continue;
        };
        let mut h = Holder {
            id: u.id,
            username: u.username,
            email: u.email,
            name: u.name,
            choice: "none",
            custom: String::new(),
            roles: role.clone(),
        };
        add_role(&mut h, &role);
        holders.push(h);
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(ctx.render(
        status,
        &a.name,
        &AppPage {
            csrf: &ctx.csrf,
            notice,
            error,
            app: &a,
            holders,
            choices: CHOICES,
        },
    ))
}

/// Folds one held role into the row's select: `admin` outranks `user`, which outranks a
/// custom role.
fn add_role(h: &mut Holder, role: &str) {
    match role {
        app::ROLE_ADMIN => h.choice = "admin",
        app::ROLE_USER if h.choice != "admin" => h.choice = "user",
        app::ROLE_USER => {}
        custom => {
            if h.choice == "none" {
                h.choice = "custom";
            }
            // The field holds one name: saving the row leaves the user exactly one role.
            if h.custom.is_empty() {
                h.custom.push_str(custom);
            }
        }
    }
}

/// `POST .../apps/{slug}/roles` with `user` (id, username or email), `role` (`admin`, `user`,
/// `custom` with `custom` naming it, or `none`): after it the user holds exactly that role on
/// the app (none: no role).
async fn set_role<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    slug: &str,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let Some(a) = app::load(ports.sql(), slug).await? else {
        return Ok(web::not_found());
    };
    let ident = form.get_bounded("user", MAX_FIELD)?.unwrap_or("").trim();
    let wanted = match form.get("role").unwrap_or("") {
        "none" => None,
        r @ (app::ROLE_ADMIN | app::ROLE_USER) => Some(r.to_owned()),
        "custom" => Some(
            form.get_bounded("custom", MAX_FIELD)?
                .unwrap_or("")
                .trim()
                .to_owned(),
        ),
        _ => {
            let error = "Choose a role: admin, user, custom or none.".to_owned();
            return show(ports, ctx, &a.slug, None, Some(error)).await;
        }
    };
    let Some(u) = user::resolve(ports.sql(), ident).await? else {
        let error = "No user has this id, username or email.".to_owned();
        return show(ports, ctx, &a.slug, None, Some(error)).await;
    };
    // Grant first, so a refused role name changes nothing; then revoke the others.
    if let Some(role) = &wanted
        && let Err(e) = admin::change_role_by(ports, &u.id, &a.slug, role, true, actor(ctx)).await
    {
        return show(ports, ctx, &a.slug, None, Some(refusal(e)?)).await;
    }
    for held in app::roles_on(ports.sql(), &u.id, &a.slug).await? {
        if Some(&held) == wanted.as_ref() {
            continue;
        }
        match admin::change_role_by(ports, &u.id, &a.slug, &held, false, actor(ctx)).await {
            // Revoked meanwhile by someone else: the outcome is the same.
            Ok(()) | Err(AdminError::NotFound) => {}
            Err(e) => return show(ports, ctx, &a.slug, None, Some(refusal(e)?)).await,
        }
    }
    Ok(web::see_other(&format!("{BASE}/{}?done=role", a.slug)))
}

// --- delete -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/apps-delete.html")]
struct DeletePage<'a> {
    csrf: &'a str,
    app: &'a App,
    holders: usize,
}

async fn delete_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    slug: &str,
) -> Result<Response, OAuthError> {
    let Some(a) = app::load(ports.sql(), slug).await? else {
        return Ok(web::not_found());
    };
    if let Some(resp) = ctx.require_recent(&format!("{BASE}/{}/delete", a.slug)) {
        return Ok(resp);
    }
    let mut users: Vec<String> = app::holders(ports.sql(), &a.slug)
        .await?
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    users.dedup();
    Ok(ctx.render(
        StatusCode::OK,
        "Delete application",
        &DeletePage {
            csrf: &ctx.csrf,
            app: &a,
            holders: users.len(),
        },
    ))
}

async fn delete<P: Ports>(ports: &P, ctx: &Ctx<'_>, slug: &str) -> Result<Response, OAuthError> {
    if let Some(resp) = ctx.require_recent(&format!("{BASE}/{slug}/delete")) {
        return Ok(resp);
    }
    match admin::delete_app(ports, slug).await {
        Ok(()) => Ok(web::see_other(&format!("{BASE}?done=deleted"))),
        Err(AdminError::NotFound) => Ok(web::not_found()),
        Err(e) => refusal(e).and_then(|d| Err(OAuthError::server(d))),
    }
}
