//! The admin console and the users' app launcher (issue 11; DESIGN.md, "The console"):
//! server-rendered pages of the admin function.
//!
//! Signing in to the console is signing in to edgeid: the console is a built-in public client
//! of its own issuer ([`crate::client::CONSOLE_CLIENT_ID`]) and goes through `/oauth2/auth`
//! with PKCE (RFC 7636), so the login page, the TOTP step, throttling and the one
//! authorization decision apply unchanged. The admin function redeems the code itself
//! ([`signin`]) and keeps a sealed cookie naming the edgeid session (`sid`); every request
//! re-reads that session, so logout, disabling the user and "end all sessions" end the
//! console too. The admin bearer token never reaches a browser.
//!
//! Page rules (as the login pages): no JavaScript, CSP without inline script, a CSRF token
//! bound to the console cookie on every form, every value escaped (askama templates), usable
//! at 375 px and by keyboard. Destructive actions need an authentication at most
//! [`session::RECENT_AUTHENTICATION`] old: a new sign-in with `prompt=login` and `max_age`.
//!
//! Paths: `/` is the launcher of every user; `/admin/console/...` are the admin views, 403
//! for anyone who is not a global admin.

mod apps;
mod clients;
mod import;
mod launcher;
mod multipart;
mod security;
mod signin;
mod users;

use askama::Template;
use http::{Method, StatusCode, header};

use crate::config::Settings;
use crate::error::OAuthError;
use crate::ports::{Ports, UnixTime};
use crate::session::{self, Session};
use crate::user::User;
use crate::{Request, Response, html, user, web};

/// Where the console's admin views live.
pub const PREFIX: &str = "/admin/console";

/// Whether `path` is a console page (served by [`handle`], not the bearer API).
pub fn serves(path: &str) -> bool {
    path == "/" || path == PREFIX || path.starts_with("/admin/console/")
}

/// The console's entry from the admin function.
pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    if let Some(resp) = web::wrong_method(&req, &[Method::GET, Method::POST], "GET, POST") {
        return resp;
    }
    let settings = match Settings::load(ports) {
        Ok(s) => s,
        Err(e) => return crate::authorize::respond::error_page("edgeid", e),
    };
    let mut req = req;
    web::prefix_cookies(&mut req, settings.issuer.secure_cookies());
    let now = ports.now();
    let resp = match route(ports, &settings, &req, now).await {
        Ok(resp) => resp,
        Err(e) => crate::authorize::respond::error_page(&settings.instance_name, e),
    };
    html::with_hsts(resp, &settings)
}

async fn route<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let path = req.uri().path();
    let post = req.method() == Method::POST;
    match (path, post) {
        ("/admin/console/login", false) => return signin::start(ports, settings, req, now),
        ("/admin/console/callback", false) => {
            return signin::callback(ports, settings, req, now).await;
        }
        _ => {}
    }
    let Some(ctx) = Ctx::load(ports, settings, req, now).await? else {
        // Not signed in (or the session behind the console cookie ended): sign in, then
        // come back here. A POST is not replayed after the sign-in.
        let next = if post { "/" } else { path_and_query(req) };
        return Ok(signin::redirect_to_sign_in(settings, next, false));
    };
    let form = if post {
        match ctx.checked_form(req)? {
            Some(form) => form,
            None => return Ok(ctx.forbidden_csrf()),
        }
    } else {
        web::Form::default()
    };
    match (path, post) {
        ("/", false) => launcher::page(ports, &ctx).await,
        ("/admin/console/logout", true) => signin::logout(ports, &ctx).await,
        _ if !ctx.user.is_admin => Ok(ctx.forbidden()),
        (PREFIX | "/admin/console/", false) => Ok(web::see_other("/")),
        _ => match section(path) {
            Some("users") => users::route(ports, &ctx, req, &form).await,
            Some("apps") => apps::route(ports, &ctx, req, &form).await,
            Some("clients") => clients::route(ports, &ctx, req, &form).await,
            Some("audit" | "keys" | "sessions") => security::route(ports, &ctx, req, &form).await,
            Some("import") => import::route(ports, &ctx, req, &form).await,
            _ => Ok(web::not_found()),
        },
    }
}

/// The longest single-line form value a console form takes (a name, URL or identifier).
pub const MAX_FIELD: usize = 2048;

/// An admin API refusal as a sentence for the page (the admin's input was refused), or the
/// error for the error page (anything else).
pub fn refusal(e: crate::admin::AdminError, not_found: &str) -> Result<String, OAuthError> {
    use crate::admin::AdminError;
    match e {
        AdminError::InvalidClientMetadata(d)
        | AdminError::InvalidRequest(d)
        | AdminError::Conflict(d) => Ok(d),
        AdminError::NotFound => Ok(not_found.to_owned()),
        AdminError::Server(e) => Err(e),
        other => Err(OAuthError::server(format!("console: {other:?}"))),
    }
}

/// The first segment after `/admin/console/` (`users` of `/admin/console/users/abc`).
fn section(path: &str) -> Option<&str> {
    path.strip_prefix("/admin/console/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
}

/// The segments after `/admin/console/` (`["users", "abc", "edit"]`).
pub fn segments(path: &str) -> Vec<&str> {
    path.strip_prefix("/admin/console/")
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The request's path and query, for coming back after a sign-in.
fn path_and_query(req: &Request) -> &str {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
}

/// The signed-in console user and what every page works with.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub now: UnixTime,
    pub user: User,
    /// The edgeid session the console rests on.
    pub session: Session,
    /// The CSRF token of this console sign-in (forms carry it as `csrf`).
    pub csrf: String,
}

impl<'a> Ctx<'a> {
    /// The console user of `req`, if its cookie names a live session of an enabled user.
    async fn load<P: Ports>(
        ports: &P,
        settings: &'a Settings,
        req: &Request,
        now: UnixTime,
    ) -> Result<Option<Ctx<'a>>, OAuthError> {
        let Some(s) = signin::session(ports, req, now).await? else {
            return Ok(None);
        };
        // The settings pages' rule too: a session from before the user enrolled a second
        // factor no longer counts (a stolen password's session ends with the enrolment).
        if !crate::totp::session_counts(ports.sql(), &s).await? {
            return Ok(None);
        }
        let Some(user) = user::load(ports.sql(), &s.user_id).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        Ok(Some(Ctx {
            settings,
            now,
            csrf: web::csrf_token(req, signin::CONSOLE_COOKIE),
            user,
            session: s,
        }))
    }

    /// The POSTed form when its `csrf` field is this sign-in's token; `None` otherwise.
    /// `multipart/form-data` (a file upload) is read too: its text fields and one file,
    /// each a field of the form (the file as UTF-8 text).
    fn checked_form(&self, req: &Request) -> Result<Option<web::Form>, OAuthError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let form = match multipart::boundary(content_type) {
            Some(boundary) => multipart::form(req.body(), &boundary?)?,
            None => web::Form::parse(req)?,
        };
        let sent = form.get("csrf").unwrap_or("");
        Ok((!self.csrf.is_empty() && crate::crypto::digest_eq(sent, &self.csrf)).then_some(form))
    }

    /// Whether the user authenticated recently enough for a destructive action.
    pub fn recent(&self) -> bool {
        self.now - self.session.auth_time <= session::RECENT_AUTHENTICATION
    }

    /// For a destructive action: `None` when the sign-in is recent, else the redirect to a
    /// new sign-in (password, and TOTP when enrolled) that returns to `next` (a console GET
    /// page, typically the action's confirmation page).
    pub fn require_recent(&self, next: &str) -> Option<Response> {
        (!self.recent()).then(|| signin::redirect_to_sign_in(self.settings, next, true))
    }

    /// A page in the console layout.
    pub fn page(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let layout = Layout {
            title,
            instance: &self.settings.instance_name,
            logo: self.settings.logo_url.as_deref(),
            username: &self.user.username,
            admin: self.user.is_admin,
            csrf: &self.csrf,
            body,
        };
        match layout.render() {
            Ok(html) => html::response(status, html),
            Err(e) => crate::authorize::respond::error_page(
                &self.settings.instance_name,
                OAuthError::server(format!("console template: {e}")),
            ),
        }
    }

    /// Renders `t` (a page's content) inside the layout.
    pub fn render(&self, status: StatusCode, title: &str, t: &impl Template) -> Response {
        match t.render() {
            Ok(body) => self.page(status, title, &body),
            Err(e) => crate::authorize::respond::error_page(
                &self.settings.instance_name,
                OAuthError::server(format!("console template: {e}")),
            ),
        }
    }

    /// 403 for a signed-in user who is not a global admin.
    pub fn forbidden(&self) -> Response {
        self.render(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &Message {
                heading: "Not allowed",
                text: "This page is for administrators. Ask an administrator if you need access.",
                link: Some(("/", "Back to your apps")),
            },
        )
    }

    /// 403 for a form without this sign-in's CSRF token.
    fn forbidden_csrf(&self) -> Response {
        self.render(
            StatusCode::FORBIDDEN,
            "Request refused",
            &Message {
                heading: "Request refused",
                text: "This form was not sent from this site's own page, or it has expired.",
                link: Some(("/", "Back to your apps")),
            },
        )
    }
}

/// The console layout: header with the navigation, then the page's content.
#[derive(Template)]
#[template(path = "console/layout.html")]
struct Layout<'a> {
    title: &'a str,
    instance: &'a str,
    logo: Option<&'a str>,
    username: &'a str,
    admin: bool,
    csrf: &'a str,
    /// Rendered by a template (escaped there).
    body: &'a str,
}

/// A heading, a sentence and an optional link: notices and refusals.
#[derive(Template)]
#[template(path = "console/message.html")]
pub struct Message<'a> {
    pub heading: &'a str,
    pub text: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

/// The `Location` of a redirect response (tests and callers that chain redirects).
pub fn location(resp: &Response) -> Option<&str> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
}
