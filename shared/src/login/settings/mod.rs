//! The settings pages (`/settings...`): profile, password, the TOTP second factor, active
//! sessions and connected apps, for the user of the browser's session.
//!
//! Every form carries a CSRF token derived from the secret the browser holds and a
//! cross-site page cannot read: SHA-256 over a label and the session cookie (or, on the
//! sign-in form, the flow cookie). The database holds only the cookie's digest, so a read of it
//! yields no token either. A POST without the right token is refused with 403.

mod second_factor;

use http::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::{Next, PasswordCheck, WRONG_PASSWORD, pages};
use crate::config::{self, Settings};
use crate::crypto::{b64url, b64url_decode, digest_eq, random_token, sha256_hex};
use crate::error::OAuthError;
use crate::html::{self, escape};
use crate::ports::{Ports, Sql as _, Statement, UnixTime};
use crate::session::{self, AMR_PASSWORD, FLOW_COOKIE, SESSION_COOKIE, Session};
use crate::time::utc;
use crate::user::{self, User, UserPatch};
use crate::{Request, Response, audit, throttle, totp, web};

/// A password change without the current password needs a sign-in at most this old.
pub const RECENT_LOGIN: i64 = session::RECENT_AUTHENTICATION;
pub async fn handle<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let path = req.uri().path();
    let post = req.method() == Method::POST;
    if path == "/settings/login" && post {
        return sign_in_submit(ports, settings, req, now).await;
    }
    // A session that did not use the account's second factor (one that predates its
    // enrolment) is no session here either: the same rule as `authorize::decision`.
    let s = match session::current(ports.sql(), req, now).await? {
        Some(s) if !totp::session_counts(ports.sql(), &s).await? => None,
        other => other,
    };
    let Some(s) = s else {
        return if post {
            Ok(web::see_other(&settings.issuer.endpoint("/settings")))
        } else {
            sign_in_form(ports, settings, req, None, "", StatusCode::OK)
        };
    };
    let user = user::load(ports.sql(), &s.user_id)
        .await?
        .ok_or_else(|| OAuthError::server("session without user"))?;
    let csrf = web::csrf_token(req, SESSION_COOKIE);
    let form = if post {
        let form = web::Form::parse(req)?;
        let sent = form.get("csrf").unwrap_or("");
        if csrf.is_empty() || !digest_eq(sent, &csrf) {
            return Ok(forbidden(settings));
        }
        form
    } else {
        web::Form::default()
    };
    let ctx = Ctx {
        settings,
        s: &s,
        user: &user,
        csrf: &csrf,
        now,
    };
    match (path, post) {
        ("/settings", false) => {
            let notice = web::Form::from_query(req.uri().query())?
                .get("done")
                .and_then(done_message);
            overview(ports, &ctx, notice, &Errors::default(), StatusCode::OK).await
        }
        ("/settings/profile", true) => profile(ports, &ctx, &form).await,
        ("/settings/password", true) => password(ports, &ctx, req, &form).await,
        ("/settings/totp", false) => second_factor::enrol_start(ports, &ctx),
        ("/settings/totp", true) => second_factor::enrol_confirm(ports, &ctx, req, &form).await,
        ("/settings/totp/remove", true) => {
            second_factor::totp_remove(ports, &ctx, req, &form).await
        }
        ("/settings/sessions/end", true) => end_sessions(ports, &ctx, &form).await,
        ("/settings/apps/revoke", true) => revoke_app(ports, &ctx, &form).await,
        _ => Ok(web::not_found()),
    }
}

/// What every settings handler works with.
struct Ctx<'a> {
    settings: &'a Settings,
    s: &'a Session,
    user: &'a User,
    csrf: &'a str,
    now: UnixTime,
}

fn forbidden(settings: &Settings) -> Response {
    let body = "<h1>Request refused</h1>\
         <p class=\"error\" role=\"alert\">This form was not sent from this site's own page, \
         or it has expired.</p><p><a href=\"/settings\">Back to settings</a></p>";
    html::response(
        StatusCode::FORBIDDEN,
        html::page(&settings.instance_name, "Request refused", body),
    )
}

fn redirect_done(settings: &Settings, done: &str) -> Response {
    web::see_other(&settings.issuer.endpoint(&format!("/settings?done={done}")))
}

fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "profile" => "Your profile was saved.",
        "password" => "Your password was changed. Your other sessions were signed out.",
        "totp-removed" => "Two-step sign-in was turned off.",
        "session" => "The session was ended.",
        "sessions" => "All your other sessions were ended.",
        "app" => "The app's access was revoked.",
        _ => return None,
    })
}

// --- sign-in for the settings page ------------------------------------------------------

/// The sign-in form for the settings page, with a flow cookie to bind its CSRF token to.
fn sign_in_form<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    error: Option<&str>,
    identifier: &str,
    status: StatusCode,
) -> Result<Response, OAuthError> {
    let (flow, new) = match web::cookie(req, FLOW_COOKIE).filter(|f| f.len() >= 22) {
        Some(f) => (f.to_owned(), false),
        None => (random_token(ports, 18)?, true),
    };
    let csrf = sha256_hex(format!("edgeid/csrf/v1:{FLOW_COOKIE}:{flow}").as_bytes());
    let mut resp = pages::sign_in(
        settings,
        "/settings/login",
        ("csrf", &csrf),
        "to manage your account",
        identifier,
        error,
        status,
    );
    if new {
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(FLOW_COOKIE, &flow, None, settings.issuer.secure_cookies()),
        );
    }
    Ok(resp)
}

async fn sign_in_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let csrf = web::csrf_token(req, FLOW_COOKIE);
    if csrf.is_empty() || !digest_eq(form.get("csrf").unwrap_or(""), &csrf) {
        return Ok(forbidden(settings));
    }
    let identifier = form.get("identifier").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    let user = match super::check_password(ports, req, &identifier, password, None, now).await? {
        PasswordCheck::Wait(seconds) => {
            let resp = sign_in_form(
                ports,
                settings,
                req,
                Some(&super::throttled_message(seconds)),
                &identifier,
                StatusCode::TOO_MANY_REQUESTS,
            )?;
            return Ok(super::with_retry_after(resp, seconds));
        }
        PasswordCheck::Failed => {
            return sign_in_form(
                ports,
                settings,
                req,
                Some(WRONG_PASSWORD),
                &identifier,
                StatusCode::UNAUTHORIZED,
            );
        }
        PasswordCheck::Verified(u) => u,
    };
    if totp::load(ports, &user.id).await?.is_some() {
        let pending = super::seal_second_factor(ports, req, &user, &identifier, None, now)?;
        return Ok(pages::second_factor(
            settings,
            &pending,
            None,
            StatusCode::OK,
        ));
    }
    super::finish_login(
        ports,
        settings,
        req,
        now,
        &user,
        &[AMR_PASSWORD],
        Next::Settings,
    )
    .await
}

// --- the overview page --------------------------------------------------------------------

/// Error messages by field id; each is shown next to its field and tied to it.
#[derive(Default)]
struct Errors(Vec<(&'static str, String)>);

impl Errors {
    fn one(field: &'static str, message: impl Into<String>) -> Self {
        Errors(vec![(field, message.into())])
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// One text field with its label, optional hint and error, tied by `aria-describedby`.
struct Field<'a> {
    id: &'static str,
    label: &'a str,
    kind: &'static str,
    value: &'a str,
    autocomplete: &'static str,
    hint: Option<&'a str>,
    required: bool,
}

impl Field<'_> {
    fn render(&self, errors: &Errors) -> String {
        let mut described = Vec::new();
        let mut out = format!(
            "<label for=\"{id}\">{label}</label>",
            id = self.id,
            label = escape(self.label)
        );
        if let Some(hint) = self.hint {
            out.push_str(&format!(
                "<p class=\"muted hint\" id=\"{}-hint\">{}</p>",
                self.id,
                escape(hint)
            ));
            described.push(format!("{}-hint", self.id));
        }
        let error = errors.get(self.id);
        if let Some(e) = error {
            out.push_str(&format!(
                "<p class=\"error\" id=\"{}-error\" role=\"alert\">{}</p>",
                self.id,
                escape(e)
            ));
            described.push(format!("{}-error", self.id));
        }
        out.push_str(&format!(
            "<input type=\"{kind}\" id=\"{id}\" name=\"{id}\" value=\"{value}\" \
             autocomplete=\"{ac}\"{req}{desc}{invalid}>",
            kind = self.kind,
            id = self.id,
            value = escape(self.value),
            ac = self.autocomplete,
            req = if self.required { " required" } else { "" },
            desc = if described.is_empty() {
                String::new()
            } else {
                format!(" aria-describedby=\"{}\"", described.join(" "))
            },
            invalid = if error.is_some() {
                " aria-invalid=\"true\""
            } else {
                ""
            },
        ));
        out
    }
}

fn hidden_csrf(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// A session of the user as the page lists it.
struct SessionRow {
    sid: String,
    created_at: UnixTime,
    amr: Vec<String>,
    current: bool,
}

/// A remembered consent as the page lists it.
struct AppRow {
    client_id: String,
    name: String,
    scope: String,
    granted_at: UnixTime,
}

async fn sessions<P: Ports>(ports: &P, ctx: &Ctx<'_>) -> Result<Vec<SessionRow>, OAuthError> {
    Ok(session::list_live(ports.sql(), &ctx.user.id, ctx.now)
        .await?
        .into_iter()
        .map(|l| SessionRow {
            current: l.session.token_sha256 == ctx.s.token_sha256,
            sid: l.session.sid,
            created_at: l.created_at,
            amr: l.session.amr,
        })
        .collect())
}

async fn apps<P: Ports>(ports: &P, user_id: &str) -> Result<Vec<AppRow>, OAuthError> {
    let rows = ports
        .sql()
        .query(Statement::new(
            "SELECT c.client_id, COALESCE(k.client_name, ''), c.scope, c.granted_at \
             FROM consents c LEFT JOIN clients k ON k.client_id = c.client_id \
             WHERE c.user_id = ? ORDER BY c.granted_at DESC, c.client_id",
            vec![user_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AppRow {
                client_id: r.text(0)?.to_owned(),
                name: r.text(1)?.to_owned(),
                scope: r.text(2)?.to_owned(),
                granted_at: r.int(3)?,
            })
        })
        .collect()
}

/// The settings page. `profile` overrides the stored values shown in the profile form (to
/// re-show what the user typed next to its error).
async fn overview<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    notice: Option<&str>,
    errors: &Errors,
    status: StatusCode,
) -> Result<Response, OAuthError> {
    overview_with(ports, ctx, notice, errors, status, None).await
}

async fn overview_with<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    notice: Option<&str>,
    errors: &Errors,
    status: StatusCode,
    profile: Option<(&str, &str)>,
) -> Result<Response, OAuthError> {
    let csrf = hidden_csrf(ctx.csrf);
    let (name, username) = profile.unwrap_or((&ctx.user.name, &ctx.user.username));
    let mut body = format!(
        "<h1>Your account</h1><p class=\"muted\">Signed in as <strong>{who}</strong> \
         ({email}).</p>",
        who = escape(&ctx.user.username),
        email = escape(&ctx.user.email),
    );
    if let Some(n) = notice {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            escape(n)
        ));
    }

    // Profile.
    body.push_str(&format!(
        "<section aria-labelledby=\"profile-h\"><h2 id=\"profile-h\">Profile</h2>\
         <form method=\"post\" action=\"/settings/profile\">{csrf}{name}{username}\
         <button type=\"submit\">Save profile</button></form></section>",
        name = Field {
            id: "name",
            label: "Display name",
            kind: "text",
            value: name,
            autocomplete: "name",
            hint: None,
            required: false,
        }
        .render(errors),
        username = Field {
            id: "username",
            label: "Username",
            kind: "text",
            value: username,
            autocomplete: "username",
            hint: Some("1-64 letters, digits, '.', '_' or '-'."),
            required: true,
        }
        .render(errors),
    ));

    // Password.
    let recent = ctx.now - ctx.s.auth_time <= RECENT_LOGIN;
    let current_hint = if recent {
        "You signed in less than 5 minutes ago, so you may leave this empty."
    } else {
        "Needed because you signed in more than 5 minutes ago."
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"password-h\"><h2 id=\"password-h\">Password</h2>\
         <form method=\"post\" action=\"/settings/password\">{csrf}{current}{new}{confirm}\
         <button type=\"submit\">Change password</button></form></section>",
        current = Field {
            id: "current_password",
            label: "Current password",
            kind: "password",
            value: "",
            autocomplete: "current-password",
            hint: Some(current_hint),
            required: !recent,
        }
        .render(errors),
        new = Field {
            id: "new_password",
            label: "New password",
            kind: "password",
            value: "",
            autocomplete: "new-password",
            hint: Some(&user::password_rule()),
            required: true,
        }
        .render(errors),
        confirm = Field {
            id: "confirm_password",
            label: "New password again",
            kind: "password",
            value: "",
            autocomplete: "new-password",
            hint: None,
            required: true,
        }
        .render(errors),
    ));

    // Second factor.
    body.push_str("<section aria-labelledby=\"totp-h\"><h2 id=\"totp-h\">Two-step sign-in</h2>");
    if totp::load(ports, &ctx.user.id).await?.is_some() {
        let left = totp::recovery_codes_left(ports.credentials(), &ctx.user.id).await?;
        body.push_str(&format!(
            "<p>On: signing in asks for a code from your authenticator app. \
             You have {left} unused recovery code{s}.</p>\
             <form method=\"post\" action=\"/settings/totp/remove\">{csrf}{confirm}\
             <button type=\"submit\" class=\"secondary\">Turn off two-step sign-in</button>\
             </form>",
            s = if left == 1 { "" } else { "s" },
            confirm = Field {
                id: "totp_confirm",
                label: "Authentication code or password",
                kind: "password",
                value: "",
                autocomplete: "off",
                hint: Some("A current 6-digit code from your app, or your password."),
                required: true,
            }
            .render(errors),
        ));
    } else {
        body.push_str(
            "<p>Off. Add an authenticator app (RFC 6238 TOTP) so that signing in also asks \
             for a code from it.</p>\
             <p><a class=\"button\" href=\"/settings/totp\">Set up two-step sign-in</a></p>",
        );
    }
    body.push_str("</section>");

    // Sessions.
    let list = sessions(ports, ctx).await?;
    body.push_str(
        "<section aria-labelledby=\"sessions-h\"><h2 id=\"sessions-h\">Active sessions</h2>\
         <ul class=\"items\">",
    );
    for row in &list {
        let methods = if row.amr.iter().any(|m| m == totp::AMR_OTP) {
            "password and code"
        } else {
            "password"
        };
        body.push_str(&format!(
            "<li><span>Signed in {at} with {methods}{this}</span>",
            at = escape(&utc(row.created_at)),
            this = if row.current {
                " <strong>(this session)</strong>"
            } else {
                ""
            },
        ));
        if !row.current {
            body.push_str(&format!(
                "<form method=\"post\" action=\"/settings/sessions/end\">{csrf}\
                 <input type=\"hidden\" name=\"sid\" value=\"{sid}\">\
                 <button type=\"submit\" class=\"secondary\">End session</button></form>",
                sid = escape(&row.sid),
            ));
        }
        body.push_str("</li>");
    }
    body.push_str("</ul>");
    if list.iter().any(|r| !r.current) {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/settings/sessions/end\">{csrf}\
             <input type=\"hidden\" name=\"others\" value=\"1\">\
             <button type=\"submit\" class=\"secondary\">End all other sessions</button></form>"
        ));
    }
    body.push_str("</section>");

    // Connected apps.
    let apps = apps(ports, &ctx.user.id).await?;
    body.push_str("<section aria-labelledby=\"apps-h\"><h2 id=\"apps-h\">Connected apps</h2>");
    if apps.is_empty() {
        body.push_str("<p class=\"muted\">You have not allowed any app access.</p>");
    } else {
        body.push_str("<ul class=\"items\">");
        for app in &apps {
            let label = if app.name.is_empty() {
                &app.client_id
            } else {
                &app.name
            };
            body.push_str(&format!(
                "<li><span><strong>{label}</strong> since {at}<br>\
                 <span class=\"muted\">{scope}</span></span>\
                 <form method=\"post\" action=\"/settings/apps/revoke\">{csrf}\
                 <input type=\"hidden\" name=\"client_id\" value=\"{client_id}\">\
                 <button type=\"submit\" class=\"secondary\" \
                 aria-label=\"Revoke access of {label}\">Revoke access</button></form></li>",
                label = escape(label),
                at = escape(&utc(app.granted_at)),
                scope = escape(&app.scope),
                client_id = escape(&app.client_id),
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");
    body.push_str("<p><a href=\"/logout\">Sign out</a></p>");
    Ok(html::response(
        status,
        html::page(&ctx.settings.instance_name, "Settings", &body),
    ))
}

// --- profile and password -------------------------------------------------------------------

async fn profile<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let name = form.get("name").unwrap_or("");
    let username = form.get("username").unwrap_or("");
    let patch = UserPatch {
        name: Some(Some(name.to_owned())),
        username: Some(Some(username.to_owned())),
        ..UserPatch::default()
    };
    let typed = Some((name, username));
    let updated = match patch.apply(ctx.user, ctx.now) {
        Ok(u) => u,
        Err(user::InvalidUser(message)) => {
            let field = if message.starts_with("username") {
                "username"
            } else {
                "name"
            };
            let errors = Errors::one(field, capitalize(&message));
            return overview_with(ports, ctx, None, &errors, StatusCode::BAD_REQUEST, typed).await;
        }
    };
    let changed = updated.changed_fields(ctx.user);
    if changed.is_empty() {
        return Ok(redirect_done(ctx.settings, "profile"));
    }
    if !user::update(ports.sql(), &updated).await? {
        let errors = Errors::one("username", "That username is taken. Choose another.");
        return overview_with(ports, ctx, None, &errors, StatusCode::CONFLICT, typed).await;
    }
    audit::record(
        ports.sql(),
        ctx.now,
        "user.updated",
        &ctx.user.id,
        serde_json::json!({ "fields": changed, "by": "self" }),
    )
    .await;
    Ok(redirect_done(ctx.settings, "profile"))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// Verifies the user's password in a settings form, throttled like the sign-in form (under
/// the username) so settings cannot be used to guess it.
async fn password_ok<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    password: &str,
) -> Result<Result<(), String>, OAuthError> {
    let addr = throttle::client_addr(req);
    let who = ctx.user.username.as_str();
    if let throttle::Verdict::Wait(seconds) =
        throttle::password_attempt(ports, who, &addr, ctx.now).await?
    {
        return Ok(Err(super::throttled_message(seconds)));
    }
    let phc = user::password_hash(ports.credentials(), &ctx.user.id).await?;
    if user::verify_password(phc.as_deref().unwrap_or(user::DUMMY_PHC), password) && phc.is_some() {
        throttle::password_verified(ports, who, &addr).await;
        Ok(Ok(()))
    } else {
        Ok(Err("That password is not correct.".to_owned()))
    }
}

/// A new password needs the current one, unless the session signed in within
/// [`RECENT_LOGIN`] (the user has just proven it).
async fn password<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let current = form.get("current_password").unwrap_or("");
    let new = form.get("new_password").unwrap_or("");
    let confirm = form.get("confirm_password").unwrap_or("");
    let recent = ctx.now - ctx.s.auth_time <= RECENT_LOGIN;
    let fail = |field, message: String, status| async move {
        overview(ports, ctx, None, &Errors::one(field, message), status).await
    };
    if current.is_empty() && !recent {
        return fail(
            "current_password",
            "Enter your current password: you signed in more than 5 minutes ago.".to_owned(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if let Err(user::InvalidUser(m)) = user::check_password(new) {
        return fail("new_password", capitalize(&m), StatusCode::BAD_REQUEST).await;
    }
    if new != confirm {
        return fail(
            "confirm_password",
            "The two new passwords differ.".to_owned(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if !current.is_empty()
        && let Err(m) = password_ok(ports, ctx, req, current).await?
    {
        return fail("current_password", m, StatusCode::UNAUTHORIZED).await;
    }
    let phc = user::hash_password(ports, new)?;
    // Whoever knew the old password may hold another session, a refresh token or a recovery
    // link: all of them end; this session stays.
    user::change_password(
        ports,
        &ctx.user.id,
        &phc,
        ctx.now,
        user::Keep::Session(&ctx.s.token_sha256),
    )
    .await?;
    audit::record(
        ports.sql(),
        ctx.now,
        "password.changed",
        &ctx.user.id,
        serde_json::json!({ "sid": ctx.s.sid, "with_current": !current.is_empty() }),
    )
    .await;
    Ok(redirect_done(ctx.settings, "password"))
}

// --- sessions and apps ------------------------------------------------------------------

/// Ends one other session of the user (`sid`) or all others (`others`).
async fn end_sessions<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let user_id = ctx.user.id.as_str();
    let (which, done) = if form.get("others") == Some("1") {
        (session::Ending::AllBut(&ctx.s.token_sha256), "sessions")
    } else {
        let sid = form
            .get("sid")
            .ok_or_else(|| OAuthError::invalid_request("No session was named."))?;
        (session::Ending::Sid(sid), "session")
    };
    session::end_for_user(ports.sql(), user_id, which, &ctx.s.sid, ctx.now).await?;
    Ok(redirect_done(ctx.settings, done))
}

/// Forgets the consent given to a client and revokes the user's grants to it (its refresh
/// tokens stop rotating, its access tokens stop being accepted), atomically. The next request
/// of that client asks for consent again (`consent_required` with `prompt=none`).
async fn revoke_app<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let client_id = form
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("No app was named."))?;
    let user_id = ctx.user.id.as_str();
    ports
        .sql()
        .batch(vec![
            Statement::new(
                "DELETE FROM consents WHERE user_id = ? AND client_id = ?",
                vec![user_id.into(), client_id.into()],
            ),
            Statement::new(
                "UPDATE grants SET revoked_at = ? \
                 WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL",
                vec![ctx.now.into(), user_id.into(), client_id.into()],
            ),
        ])
        .await?;
    audit::record(
        ports.sql(),
        ctx.now,
        "consent.revoked",
        user_id,
        serde_json::json!({ "client_id": client_id }),
    )
    .await;
    Ok(redirect_done(ctx.settings, "app"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_tie_hints_and_errors_to_the_input_and_escape_values() {
        let html = Field {
            id: "username",
            label: "Username",
            kind: "text",
            value: "\"><script>",
            autocomplete: "username",
            hint: Some("hint"),
            required: true,
        }
        .render(&Errors::one("username", "<taken>"));
        assert!(html.contains("aria-describedby=\"username-hint username-error\""));
        assert!(html.contains("&lt;taken&gt;"));
        assert!(!html.contains("<script>"));
    }
}
