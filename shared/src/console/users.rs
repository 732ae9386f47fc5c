//! Console pages: users (issue 11 items 2 and 3, the per-user half). Every operation calls
//! what the admin API calls ([`manage`], [`crate::admin::change_role_by`]), so the rules and the
//! audit events are the API's; the console's events add `{"via": "console", "by": <admin>}`.
//!
//! - `GET /admin/console/users?q=&after=`: search (username, email, name: [`user::list`], as
//!   `GET /admin/users?q=`) and keyset paging on the id. "Last sign-in" is the newest session
//!   the user started (the `sessions_user` index; sessions are kept until a day after they
//!   expire, so an older sign-in shows as none).
//! - `GET/POST /admin/console/users/new`: create; optionally issue the welcome link at once,
//!   mailed when mail is configured, otherwise shown once on the answer to the POST (never
//!   put in a URL).
//! - `GET/POST /admin/console/users/{id}`: the user page and its profile form (the admin
//!   API's `PATCH` rules, [`UserPatch`]); `POST .../roles`: the role per app (none / user /
//!   admin; custom roles shown and removable); `POST .../reset` (a recovery link, as
//!   `POST /admin/users/{id}/recovery`), `.../end-sessions`, `.../enable`.
//! - Destructive (`disable`, `remove-totp`, `delete`): `GET` is a confirmation page naming the
//!   consequences and asks for a recent sign-in; the `POST` checks it again.
//! - The last enabled global admin cannot demote, disable or delete themselves here: nobody
//!   could sign in to the console to undo it.

use askama::Template;
use http::StatusCode;

use super::Ctx;
use crate::admin::AdminError;
use crate::error::OAuthError;
use crate::ports::{Ports, Sql, Statement, UnixTime};
use crate::user::manage::{self, Actor};
use crate::user::{self, User, UserInput, UserPatch};
use crate::{Request, Response, app, mail, totp, web};

/// Users per list page.
const PAGE: i64 = 50;
/// The longest search text or paging key taken.
const MAX_QUERY: usize = 256;
/// The longest form field taken (the validation's own limits are smaller).
const MAX_FIELD: usize = 1024;
const BASE: &str = "/admin/console/users";

pub async fn route<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let post = req.method() == http::Method::POST;
    let query = web::Form::from_query(req.uri().query())?;
    let segs = super::segments(req.uri().path());
    match (segs.as_slice(), post) {
        (["users"], false) => list(ports, ctx, &query).await,
        (["users", "new"], false) => Ok(new_form(ctx, &NewUser::default(), None, StatusCode::OK)),
        (["users", "new"], true) => create(ports, ctx, form).await,
        (["users", id, rest @ ..], _) => {
            let id = decode(id);
            let Some(u) = user::load(ports.sql(), &id).await? else {
                return Ok(web::not_found());
            };
            match (rest, post) {
                ([], false) => {
                    let notice = query.get("done").and_then(notice);
                    show(ports, ctx, &u, Shown::notice(notice), StatusCode::OK).await
                }
                ([], true) => save(ports, ctx, &u, form).await,
                (["roles"], true) => roles(ports, ctx, &u, form).await,
                (["reset"], true) => reset(ports, ctx, &u).await,
                (["end-sessions"], true) => {
                    manage::end_sessions(ports, &u, &ctx.session.sid, ctx.now)
                        .await
                        .map_err(server)?;
                    Ok(done(&u, "sessions"))
                }
                (["enable"], true) => {
                    manage::set_disabled(ports, &u, false, ctx.now, actor(ctx))
                        .await
                        .map_err(server)?;
                    Ok(done(&u, "enabled"))
                }
                ([action], _) => match Destructive::parse(action) {
                    Some(what) if post => destroy(ports, ctx, &u, what).await,
                    Some(what) => confirm(ports, ctx, &u, what).await,
                    None => Ok(web::not_found()),
                },
                _ => Ok(web::not_found()),
            }
        }
        _ => Ok(web::not_found()),
    }
}

fn actor<'a>(ctx: &'a Ctx<'_>) -> Actor<'a> {
    Actor::Console {
        admin_id: &ctx.user.id,
    }
}

/// An [`AdminError`] the console does not turn into a message of its own.
fn server(e: AdminError) -> OAuthError {
    match e {
        AdminError::Server(e) => e,
        AdminError::NotFound => OAuthError::invalid_request("No such user, app or role."),
        AdminError::Conflict(m) | AdminError::InvalidRequest(m) => OAuthError::invalid_request(m),
        other => OAuthError::server(format!("console users: {other:?}")),
    }
}

/// The message of a refusal the form shows, with its status; `None` for a failure that is
/// not the admin's input.
fn refusal(e: &AdminError) -> Option<(StatusCode, String)> {
    match e {
        AdminError::InvalidRequest(m) => Some((StatusCode::BAD_REQUEST, m.clone())),
        AdminError::Conflict(m) => Some((StatusCode::CONFLICT, m.clone())),
        _ => None,
    }
}

/// A path segment as it came, percent-decoded (ids are UUIDs, but imported ones may be
/// anything printable).
fn decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The user page's path.
fn page_of(u: &User) -> String {
    format!("{BASE}/{}", encode(&u.id))
}

/// After a POST: back to the user page with a notice.
fn done(u: &User, what: &str) -> Response {
    web::see_other(&format!("{}?done={what}", page_of(u)))
}

fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "saved" => "The profile was saved.",
        "role" => "The roles were changed.",
        "sessions" => "All of the user's sessions were ended.",
        "enabled" => "The user can sign in again.",
        "disabled" => "The user was disabled: their sessions ended and their grants were revoked.",
        "totp-removed" => "Two-step sign-in was removed.",
        _ => return None,
    })
}

fn date(t: UnixTime) -> String {
    mail::utc(t)
}

// --- list -------------------------------------------------------------------------------

struct ListRow {
    href: String,
    username: String,
    email: String,
    name: String,
    disabled: bool,
    admin: bool,
    roles: i64,
    last_sign_in: Option<String>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct List<'a> {
    q: &'a str,
    users: Vec<ListRow>,
    /// The query string of the next page, if any.
    next: Option<String>,
    notice: Option<&'a str>,
}

async fn list<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let q = query.get_bounded("q", MAX_QUERY)?.unwrap_or("").trim();
    let after = query.get_bounded("after", MAX_QUERY)?.unwrap_or("");
    let users = user::list(ports.sql(), after, PAGE, q).await?;
    let (counts, seen) = match users.last() {
        Some(last) => (
            per_user(ports.sql(), ROLE_COUNTS, after, &last.id).await?,
            per_user(ports.sql(), LAST_SIGN_INS, after, &last.id).await?,
        ),
        None => Default::default(),
    };
    let next = (users.len() as i64 == PAGE)
        .then(|| users.last())
        .flatten()
        .map(|last| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("q", q)
                .append_pair("after", &last.id)
                .finish()
        });
    let rows = users
        .into_iter()
        .map(|u| ListRow {
            href: page_of(&u),
            roles: counts.get(&u.id).copied().unwrap_or(0),
            last_sign_in: seen.get(&u.id).map(|t| date(*t)),
            username: u.username,
            email: u.email,
            name: u.name,
            disabled: u.disabled,
            admin: u.is_admin,
        })
        .collect();
    let notice = match query.get("done") {
        Some("deleted") => Some("The user was deleted."),
        _ => None,
    };
    Ok(ctx.render(
        StatusCode::OK,
        "Users",
        &List {
            q,
            users: rows,
            next,
            notice,
        },
    ))
}

/// Per user of a page (ids in `(after, last]`, the page's keyset range, so the index on
/// `user_id` answers it in one range scan): how many roles.
const ROLE_COUNTS: &str = "SELECT user_id, COUNT(*) FROM app_roles \
    WHERE user_id > ?1 AND user_id <= ?2 GROUP BY user_id";
/// ... and when the newest session started.
const LAST_SIGN_INS: &str = "SELECT user_id, MAX(created_at) FROM sessions \
    WHERE user_id > ?1 AND user_id <= ?2 GROUP BY user_id";

async fn per_user(
    sql: &impl Sql,
    q: &'static str,
    after: &str,
    last: &str,
) -> Result<std::collections::HashMap<String, i64>, OAuthError> {
    let rows = sql
        .query(Statement::new(q, vec![after.into(), last.into()]))
        .await?;
    let mut out = std::collections::HashMap::new();
    for r in &rows {
        out.insert(r.text(0)?.to_owned(), r.int(1)?);
    }
    Ok(out)
}

// --- create -----------------------------------------------------------------------------

#[derive(Default)]
struct NewUser {
    name: String,
    email: String,
    username: String,
    welcome: bool,
}

#[derive(Template)]
#[template(path = "console/users-new.html")]
struct NewForm<'a> {
    csrf: &'a str,
    v: &'a NewUser,
    error: Option<&'a str>,
}

fn new_form(ctx: &Ctx<'_>, v: &NewUser, error: Option<&str>, status: StatusCode) -> Response {
    ctx.render(
        status,
        "New user",
        &NewForm {
            csrf: &ctx.csrf,
            v,
            error,
        },
    )
}

fn field(form: &web::Form, name: &str) -> Result<String, OAuthError> {
    Ok(form.get_bounded(name, MAX_FIELD)?.unwrap_or("").to_owned())
}

async fn create<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let v = NewUser {
        name: field(form, "name")?,
        email: field(form, "email")?,
        username: field(form, "username")?,
        welcome: form.get("welcome") == Some("1"),
    };
    let input = UserInput {
        email: v.email.clone(),
        username: v.username.clone(),
        name: v.name.clone(),
        ..UserInput::default()
    };
    let u = match manage::create(ports, input, ctx.now, actor(ctx)).await {
        Ok(u) => u,
        Err(e) => {
            return match refusal(&e) {
                Some((status, m)) => Ok(new_form(ctx, &v, Some(&m), status)),
                None => Err(server(e)),
            };
        }
    };
    let link = if v.welcome {
        Some(issue_link(ports, ctx, &u).await?)
    } else {
        None
    };
    let shown = Shown {
        notice: Some("The user was created."),
        link,
        ..Shown::default()
    };
    show(ports, ctx, &u, shown, StatusCode::CREATED).await
}

/// What the page shows of a link just issued: the link itself only when it was not mailed.
struct LinkBox {
    welcome: bool,
    expires: String,
    email: String,
    /// Shown once, for copying (mail not configured, or mailing failed).
    link: Option<String>,
    mail_error: Option<String>,
}

/// A recovery link as `POST /admin/users/{id}/recovery` issues it, mailed when mail is
/// configured.
async fn issue_link<P: Ports>(ports: &P, ctx: &Ctx<'_>, u: &User) -> Result<LinkBox, OAuthError> {
    let send = mail::is_configured(ports);
    let l = manage::recovery_link(ports, ctx.settings, u, None, send, ctx.now, actor(ctx))
        .await
        .map_err(server)?;
    Ok(LinkBox {
        welcome: l.issued.purpose == crate::recovery::Purpose::Welcome,
        expires: date(l.issued.expires_at),
        email: u.email.clone(),
        link: (!l.sent).then_some(l.issued.link),
        mail_error: l.mail_error,
    })
}

async fn reset<P: Ports>(ports: &P, ctx: &Ctx<'_>, u: &User) -> Result<Response, OAuthError> {
    if u.disabled {
        let shown = Shown {
            error: Some("The user is disabled: enable them first.".into()),
            ..Shown::default()
        };
        return show(ports, ctx, u, shown, StatusCode::CONFLICT).await;
    }
    // The link is shown on the answer to this POST, once; it never goes into a URL.
    let link = issue_link(ports, ctx, u).await?;
    let shown = Shown {
        link: Some(link),
        ..Shown::default()
    };
    show(ports, ctx, u, shown, StatusCode::OK).await
}

// --- the user page ----------------------------------------------------------------------

/// The profile form's values: the stored ones, or the ones just sent back with an error.
struct Profile {
    name: String,
    given_name: String,
    family_name: String,
    email: String,
    username: String,
    email_verified: bool,
    is_admin: bool,
}

impl Profile {
    fn of(u: &User) -> Profile {
        Profile {
            name: u.name.clone(),
            given_name: u.given_name.clone(),
            family_name: u.family_name.clone(),
            email: u.email.clone(),
            username: u.username.clone(),
            email_verified: u.email_verified,
            is_admin: u.is_admin,
        }
    }

    fn from_form(form: &web::Form) -> Result<Profile, OAuthError> {
        Ok(Profile {
            name: field(form, "name")?,
            given_name: field(form, "given_name")?,
            family_name: field(form, "family_name")?,
            email: field(form, "email")?,
            username: field(form, "username")?,
            email_verified: form.get("email_verified") == Some("1"),
            is_admin: form.get("is_admin") == Some("1"),
        })
    }

    fn patch(&self) -> UserPatch {
        let s = |v: &String| Some(Some(v.clone()));
        UserPatch {
            email: s(&self.email),
            username: s(&self.username),
            name: s(&self.name),
            given_name: s(&self.given_name),
            family_name: s(&self.family_name),
            email_verified: Some(Some(self.email_verified)),
            is_admin: Some(Some(self.is_admin)),
        }
    }
}

/// One app on the user page with the user's role on it.
struct AppRole {
    slug: String,
    name: String,
    /// `none`, `user` or `admin`: the standard role the select shows (`admin` wins).
    standard: &'static str,
    /// Roles other than `user` and `admin`.
    custom: Vec<String>,
}

/// What the user page shows besides the stored user.
#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    error: Option<String>,
    /// The profile values sent back with `error`.
    profile: Option<Profile>,
    link: Option<LinkBox>,
}

impl Shown {
    fn notice(notice: Option<&'static str>) -> Shown {
        Shown {
            notice,
            ..Shown::default()
        }
    }

    /// The profile form sent back with what was wrong.
    fn refused(error: String, profile: Profile) -> Shown {
        Shown {
            error: Some(error),
            profile: Some(profile),
            ..Shown::default()
        }
    }
}

#[derive(Template)]
#[template(path = "console/users-show.html")]
struct Show<'a> {
    csrf: &'a str,
    base: String,
    u: &'a User,
    p: Profile,
    notice: Option<&'static str>,
    error: Option<String>,
    link: Option<LinkBox>,
    apps: Vec<AppRole>,
    totp: bool,
    password_set: bool,
    sessions: usize,
    sessions_href: String,
    created: String,
}

async fn show<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    u: &User,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, OAuthError> {
    let held = app::roles(ports.sql(), &u.id).await?;
    let apps = app::list(ports.sql())
        .await?
        .into_iter()
        .map(|a| {
            let mine: Vec<&str> = held
                .iter()
                .filter(|(slug, _)| *slug == a.slug)
                .map(|(_, r)| r.as_str())
                .collect();
            let standard = if mine.contains(&app::ROLE_ADMIN) {
                "admin"
            } else if mine.contains(&app::ROLE_USER) {
                "user"
            } else {
                "none"
            };
            AppRole {
                custom: mine
                    .iter()
                    .filter(|r| **r != app::ROLE_ADMIN && **r != app::ROLE_USER)
                    .map(|r| (*r).to_owned())
                    .collect(),
                slug: a.slug,
                name: a.name,
                standard,
            }
        })
        .collect();
    user::ensure_credentials_schema(ports.credentials()).await?;
    let password_set = user::password_hash(ports.credentials(), &u.id)
        .await?
        .is_some();
    let sessions = crate::session::list_live(ports.sql(), &u.id, ctx.now)
        .await?
        .len();
    let page = Show {
        csrf: &ctx.csrf,
        base: page_of(u),
        u,
        p: shown.profile.unwrap_or_else(|| Profile::of(u)),
        notice: shown.notice,
        error: shown.error,
        link: shown.link,
        apps,
        totp: totp::enrolled(ports.sql(), &u.id).await?,
        password_set,
        sessions,
        sessions_href: format!("/admin/console/sessions?user={}", encode(&u.id)),
        created: date(u.created_at),
    };
    Ok(ctx.render(status, &format!("User {}", u.username), &page))
}

/// The last enabled admin acting on themselves: refused (nobody could administer after).
async fn last_admin<P: Ports>(ports: &P, ctx: &Ctx<'_>, u: &User) -> Result<bool, OAuthError> {
    Ok(u.id == ctx.user.id && !manage::another_enabled_admin(ports.sql(), &u.id).await?)
}

const LAST_ADMIN: &str = "You are the last enabled administrator: make someone else an \
    administrator first, or nobody can sign in to administer edgeid.";

async fn save<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    u: &User,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let p = Profile::from_form(form)?;
    if u.is_admin && !p.is_admin && last_admin(ports, ctx, u).await? {
        let shown = Shown::refused(LAST_ADMIN.into(), p);
        return show(ports, ctx, u, shown, StatusCode::BAD_REQUEST).await;
    }
    match manage::update(ports, u, p.patch(), ctx.now, actor(ctx)).await {
        Ok(updated) if u.id == ctx.user.id && !updated.is_admin => {
            // No longer an admin: the user page is not theirs to see.
            Ok(web::see_other("/"))
        }
        Ok(updated) => Ok(done(&updated, "saved")),
        Err(e) => match refusal(&e) {
            Some((status, m)) => show(ports, ctx, u, Shown::refused(m, p), status).await,
            None => Err(server(e)),
        },
    }
}

/// `app` and either `set` (`none` / `user` / `admin`: the standard role, the other one
/// revoked) or `revoke` (a custom role). Each change is one `edgeid role grant|revoke`.
async fn roles<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    u: &User,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let slug = form.get_bounded("app", MAX_QUERY)?.unwrap_or("");
    let held = app::roles_on(ports.sql(), &u.id, slug).await?;
    let mut changes: Vec<(&str, bool)> = Vec::new();
    if let Some(role) = form.get_bounded("revoke", MAX_QUERY)? {
        changes.push((role, false));
    } else {
        let wanted = match form.get("set") {
            Some("none") => None,
            Some("user") => Some(app::ROLE_USER),
            Some("admin") => Some(app::ROLE_ADMIN),
            _ => return Err(OAuthError::invalid_request("Choose none, user or admin.")),
        };
        if let Some(w) = wanted
            && !held.iter().any(|r| r == w)
        {
            changes.push((w, true));
        }
        for standard in [app::ROLE_USER, app::ROLE_ADMIN] {
            if Some(standard) != wanted && held.iter().any(|r| r == standard) {
                changes.push((standard, false));
            }
        }
    }
    for (role, grant) in changes {
        if let Err(e) =
            crate::admin::change_role_by(ports, &u.id, slug, role, grant, actor(ctx)).await
        {
            return match refusal(&e).or(matches!(e, AdminError::NotFound).then(|| {
                (
                    StatusCode::NOT_FOUND,
                    "No such app, or the user does not hold that role.".into(),
                )
            })) {
                Some((status, m)) => {
                    let s = Shown {
                        error: Some(m),
                        ..Shown::default()
                    };
                    show(ports, ctx, u, s, status).await
                }
                None => Err(server(e)),
            };
        }
    }
    Ok(done(u, "role"))
}

// --- destructive actions ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destructive {
    Disable,
    RemoveTotp,
    Delete,
}

impl Destructive {
    fn parse(action: &str) -> Option<Destructive> {
        [
            Destructive::Disable,
            Destructive::RemoveTotp,
            Destructive::Delete,
        ]
        .into_iter()
        .find(|d| d.path() == action)
    }

    fn path(self) -> &'static str {
        match self {
            Destructive::Disable => "disable",
            Destructive::RemoveTotp => "remove-totp",
            Destructive::Delete => "delete",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Destructive::Disable => "Disable user",
            Destructive::RemoveTotp => "Remove two-step sign-in",
            Destructive::Delete => "Delete user",
        }
    }

    fn consequences(self) -> &'static [&'static str] {
        match self {
            Destructive::Disable => &[
                "They cannot sign in until an administrator enables them again.",
                "All their sessions end now, here and in every app that signs in with edgeid.",
                "Every grant they gave an app is revoked: refresh tokens stop working and \
                 access tokens are refused.",
                "Enabling them later restores none of this; they sign in again.",
            ],
            Destructive::RemoveTotp => &[
                "Their authenticator app and their recovery codes stop working.",
                "They sign in with their password alone until they set up two-step sign-in \
                 again in their settings.",
            ],
            Destructive::Delete => &[
                "Their account is gone: profile, password, second factor and recovery links.",
                "All their sessions end, every grant they gave an app is revoked, their \
                 remembered consents are forgotten.",
                "Their roles on every app are removed.",
                "This cannot be undone: creating the user again gives them a new id (sub), \
                 which apps see as a different person.",
            ],
        }
    }
}

#[derive(Template)]
#[template(path = "console/users-confirm.html")]
struct Confirm<'a> {
    csrf: &'a str,
    base: String,
    u: &'a User,
    title: &'static str,
    action: &'static str,
    consequences: &'static [&'static str],
    error: Option<&'a str>,
}

async fn confirm<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    u: &User,
    what: Destructive,
) -> Result<Response, OAuthError> {
    let path = format!("{}/{}", page_of(u), what.path());
    if let Some(sign_in) = ctx.require_recent(&path) {
        return Ok(sign_in);
    }
    let error =
        (what != Destructive::RemoveTotp && last_admin(ports, ctx, u).await?).then_some(LAST_ADMIN);
    Ok(confirm_page(ctx, u, what, error, StatusCode::OK))
}

fn confirm_page(
    ctx: &Ctx<'_>,
    u: &User,
    what: Destructive,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    ctx.render(
        status,
        what.title(),
        &Confirm {
            csrf: &ctx.csrf,
            base: page_of(u),
            u,
            title: what.title(),
            action: what.path(),
            consequences: what.consequences(),
            error,
        },
    )
}

async fn destroy<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    u: &User,
    what: Destructive,
) -> Result<Response, OAuthError> {
    if !ctx.recent() {
        return Ok(confirm_page(
            ctx,
            u,
            what,
            Some(
                "This needs a recent sign-in. Open this page again from the user's page to \
                 confirm your password.",
            ),
            StatusCode::FORBIDDEN,
        ));
    }
    if what != Destructive::RemoveTotp && last_admin(ports, ctx, u).await? {
        return Ok(confirm_page(
            ctx,
            u,
            what,
            Some(LAST_ADMIN),
            StatusCode::BAD_REQUEST,
        ));
    }
    match what {
        Destructive::Disable => {
            manage::set_disabled(ports, u, true, ctx.now, actor(ctx))
                .await
                .map_err(server)?;
            Ok(done(u, "disabled"))
        }
        Destructive::RemoveTotp => {
            manage::remove_totp(ports, u, ctx.now, actor(ctx))
                .await
                .map_err(server)?;
            Ok(done(u, "totp-removed"))
        }
        Destructive::Delete => {
            manage::delete(ports, u, ctx.now, actor(ctx))
                .await
                .map_err(server)?;
            Ok(web::see_other(&format!("{BASE}?done=deleted")))
        }
    }
}
