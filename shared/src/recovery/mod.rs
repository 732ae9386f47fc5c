//! The recovery function (issue 4): single-use, expiring links that let a user set a password —
//! the first one for an account an admin created (`welcome`, 24 h) or a new one (`reset`, 1 h) —
//! and the pages around them:
//!
//! - `GET /recovery`: the "forgot password" form (username or email);
//! - `POST /recovery`: always the same answer ("if an account matches, we sent a link"), on the
//!   same path whether or not the account exists: a token is drawn and hashed either way, only
//!   stored and mailed for an existing, enabled account. Throttled per client address and per
//!   name asked for, so it cannot be used to bomb a mailbox;
//! - `GET /recovery?token=T`: the set-password form, the token in a hidden field (the token is
//!   the form's secret: it is what a forged post would lack);
//! - `POST /recovery/password`: consumes the token (one conditional `UPDATE ... RETURNING`, so
//!   exactly one of N concurrent posts wins), stores the argon2id hash, marks the email verified
//!   for a welcome link, ends the user's other sessions and starts a new one.
//!
//! Only the SHA-256 digest of a token is stored, in the credentials database.

mod pages;

use http::{HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::crypto::{digest_eq, random_token, sha256_hex};
use crate::error::OAuthError;
use crate::mail::RecoveryMail;
use crate::ports::{PortError, Ports, Sql, Statement, UnixTime};
use crate::session::{self, AMR_PASSWORD};
use crate::user::{self, User};
use crate::{Request, Response, audit, html, throttle, totp, web};

/// How long a link for a new account stays valid.
pub const WELCOME_TTL: i64 = 24 * 60 * 60;
/// How long a password-reset link stays valid.
pub const RESET_TTL: i64 = 60 * 60;

/// The forgot form's per-browser value (double-submit: the cookie and the hidden field must
/// match, which a cross-site form cannot arrange).
pub const FORM_COOKIE: &str = "edgeid_recovery";

/// Why a link was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// The first password of an account an admin created.
    Welcome,
    /// A new password for an account that had one.
    Reset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Welcome => "welcome",
            Purpose::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        match s {
            "welcome" => Some(Purpose::Welcome),
            "reset" => Some(Purpose::Reset),
            _ => None,
        }
    }

    pub fn ttl(self) -> i64 {
        match self {
            Purpose::Welcome => WELCOME_TTL,
            Purpose::Reset => RESET_TTL,
        }
    }
}

/// A link just issued. The token is only in `link`; the database holds its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issued {
    pub link: String,
    pub expires_at: UnixTime,
    pub purpose: Purpose,
}

fn link(settings: &Settings, token: &str) -> String {
    settings
        .issuer
        .endpoint(&format!("/recovery?token={token}"))
}

/// Issues a link for `user` and stores its digest. `by` says who asked (`admin`, `self`) for
/// the audit log.
pub async fn issue<P: Ports>(
    ports: &P,
    settings: &Settings,
    user: &User,
    purpose: Purpose,
    now: UnixTime,
    by: &str,
) -> Result<Issued, PortError> {
    issue_audited(
        ports,
        settings,
        user,
        purpose,
        now,
        serde_json::json!({ "by": by }),
    )
    .await
}

/// [`issue`] with the audit event's detail given (`by`, and `via` for the console), to which
/// `purpose` and `expires_at` are added.
pub async fn issue_audited<P: Ports>(
    ports: &P,
    settings: &Settings,
    user: &User,
    purpose: Purpose,
    now: UnixTime,
    mut detail: serde_json::Value,
) -> Result<Issued, PortError> {
    let token = random_token(ports, 32)?;
    let expires_at = now + purpose.ttl();
    user::ensure_credentials_schema(ports.credentials()).await?;
    ports
        .credentials()
        .query(Statement::new(
            "INSERT INTO recovery_tokens (token_sha256, user_id, purpose, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
            vec![
                sha256_hex(token.as_bytes()).into(),
                user.id.as_str().into(),
                purpose.as_str().into(),
                now.into(),
                expires_at.into(),
            ],
        ))
        .await?;
    audit::record(ports.sql(), now, "recovery.issued", &user.id, {
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("purpose".into(), purpose.as_str().into());
            obj.insert("expires_at".into(), expires_at.into());
        }
        detail
    })
    .await;
    Ok(Issued {
        link: link(settings, &token),
        expires_at,
        purpose,
    })
}

/// Mails `issued` to `user` through the Mailer port.
pub async fn send<P: Ports>(
    ports: &P,
    settings: &Settings,
    user: &User,
    issued: &Issued,
    now: UnixTime,
) -> Result<(), PortError> {
    let mail = RecoveryMail {
        instance: &settings.instance_name,
        to: &user.email,
        username: &user.username,
        link: &issued.link,
        welcome: issued.purpose == Purpose::Welcome,
        now,
        expires_at: issued.expires_at,
    }
    .render();
    ports.send_mail(&mail).await
}

/// The user and purpose of a live (unused, unexpired) token, without using it.
async fn peek(
    credentials: &impl Sql,
    token: &str,
    now: UnixTime,
) -> Result<Option<(String, Purpose)>, PortError> {
    user::ensure_credentials_schema(credentials).await?;
    let rows = credentials
        .query(Statement::new(
            "SELECT user_id, purpose FROM recovery_tokens \
             WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?",
            vec![sha256_hex(token.as_bytes()).into(), now.into()],
        ))
        .await?;
    row_to_use(rows.first())
}

/// Uses a token: one conditional statement, so exactly one of N concurrent uses wins.
async fn consume(
    credentials: &impl Sql,
    token: &str,
    now: UnixTime,
) -> Result<Option<(String, Purpose)>, PortError> {
    user::ensure_credentials_schema(credentials).await?;
    let rows = credentials
        .query(Statement::new(
            "UPDATE recovery_tokens SET used_at = ? \
             WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ? \
             RETURNING user_id, purpose",
            vec![now.into(), sha256_hex(token.as_bytes()).into(), now.into()],
        ))
        .await?;
    row_to_use(rows.first())
}

fn row_to_use(row: Option<&crate::ports::Row>) -> Result<Option<(String, Purpose)>, PortError> {
    let Some(row) = row else { return Ok(None) };
    let purpose = Purpose::parse(row.text(1)?)
        .ok_or_else(|| PortError::other("recovery_tokens: unknown purpose"))?;
    Ok(Some((row.text(0)?.to_owned(), purpose)))
}

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let allowed: &[Method] = match path.as_str() {
        "/recovery" => &[Method::GET, Method::POST],
        "/recovery/password" => &[Method::POST],
        _ => return web::not_found(),
    };
    let allow = if allowed.len() == 2 {
        "GET, POST"
    } else {
        "POST"
    };
    if let Some(resp) = web::wrong_method(&req, allowed, allow) {
        return resp;
    }
    let settings = match Settings::load(ports) {
        Ok(s) => s,
        Err(e) => return pages::failure("edgeid", e),
    };
    let mut req = req;
    web::prefix_cookies(&mut req, settings.issuer.secure_cookies());
    let now = ports.now();
    let result = match (path.as_str(), req.method() == Method::POST) {
        ("/recovery", false) => match web::Form::from_query(req.uri().query()) {
            Ok(q) => match q.get("token") {
                Some(token) => password_form(ports, &settings, &req, token, now).await,
                None => Ok(forgot_form(ports, &settings, &req)),
            },
            Err(e) => Err(e),
        },
        ("/recovery", true) => forgot_submit(ports, &settings, &req, now).await,
        _ => password_submit(ports, &settings, &req, now).await,
    };
    let resp = result.unwrap_or_else(|e| pages::failure(&settings.instance_name, e));
    html::with_hsts(resp, &settings)
}

/// The browser's form value, or a fresh one with the cookie that carries it.
fn form_value<P: Ports>(ports: &P, req: &Request) -> (String, Option<String>) {
    match web::cookie(req, FORM_COOKIE).filter(|v| v.len() >= 16 && v.len() <= 64) {
        Some(v) => (v.to_owned(), None),
        None => {
            // A failed RNG leaves the form without a value; its post is then refused.
            let v = random_token(ports, 16).unwrap_or_default();
            (v.clone(), Some(v))
        }
    }
}

fn forgot_form<P: Ports>(ports: &P, settings: &Settings, req: &Request) -> Response {
    let (value, new_cookie) = form_value(ports, req);
    let mut resp = pages::forgot(settings, &value, "", None, StatusCode::OK);
    if let Some(v) = new_cookie {
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(FORM_COOKIE, &v, None, settings.issuer.secure_cookies()),
        );
    }
    resp
}

async fn forgot_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let identifier = form.get("identifier").unwrap_or("").trim().to_owned();
    let expected = web::cookie(req, FORM_COOKIE).unwrap_or("");
    let presented = form.get("form").unwrap_or("");
    if expected.is_empty() || !digest_eq(expected, presented) {
        return Ok(pages::problem(
            settings,
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form could not be checked. Open the page again and resend it.",
            true,
        ));
    }
    if identifier.is_empty() || identifier.chars().count() > 254 {
        return Ok(pages::forgot(
            settings,
            expected,
            &identifier,
            Some("Enter your username or email address."),
            StatusCode::BAD_REQUEST,
        ));
    }
    // Counted whether or not the account exists, so the limit reveals nothing either.
    let addr = throttle::client_addr(req);
    if let throttle::Verdict::Wait(seconds) =
        throttle::recovery_link_attempt(ports, &identifier, &addr, now).await?
    {
        let mut resp = pages::problem(
            settings,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!(
                "Too many links were asked for. Wait {} before asking again.",
                crate::mail::duration(seconds)
            ),
            true,
        );
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }

    let found = user::find_by_identifier(ports.sql(), &identifier)
        .await?
        .filter(|u| !u.disabled);
    match found {
        Some(u) => {
            let issued = issue(ports, settings, &u, Purpose::Reset, now, "self").await?;
            if let Err(e) = send(ports, settings, &u, &issued, now).await {
                // The page must not tell: the failure goes to the logs only.
                crate::error::log_error(
                    crate::ErrorCode::ServerError,
                    &format!("recovery mail for {}: {e}", u.id),
                );
            }
        }
        None => {
            // The same work as for an account: draw and hash a token; store and send nothing.
            let token = random_token(ports, 32)?;
            let _ = sha256_hex(token.as_bytes());
        }
    }
    Ok(pages::sent(settings))
}

async fn password_form<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    token: &str,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let Some((user_id, _)) = peek(ports.credentials(), token, now).await? else {
        return Ok(pages::link_invalid(settings));
    };
    let Some(u) = user::load(ports.sql(), &user_id).await? else {
        return Ok(pages::link_invalid(settings));
    };
    let (value, new_cookie) = form_value(ports, req);
    let second_factor = totp::load(ports, &u.id).await?.is_some();
    let mut resp = pages::set_password(
        settings,
        &pages::SetPasswordForm {
            token,
            username: &u.username,
            form_value: &value,
            second_factor,
        },
        None,
        None,
        StatusCode::OK,
    );
    if let Some(v) = new_cookie {
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(FORM_COOKIE, &v, None, settings.issuer.secure_cookies()),
        );
    }
    Ok(resp)
}

async fn password_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let token = form.get("token").unwrap_or("");
    if token.is_empty() || token.len() > 128 {
        return Ok(pages::link_invalid(settings));
    }
    let Some((peeked_user, _)) = peek(ports.credentials(), token, now).await? else {
        return Ok(pages::link_invalid(settings));
    };
    let Some(peeked) = user::load(ports.sql(), &peeked_user).await? else {
        return Ok(pages::link_invalid(settings));
    };
    // Bound to the browser that opened the link (double-submit): a cross-site post of
    // someone else's link carries no matching value.
    let expected = web::cookie(req, FORM_COOKIE).unwrap_or("");
    if expected.is_empty() || !digest_eq(expected, form.get("form").unwrap_or("")) {
        return Ok(pages::problem(
            settings,
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form could not be checked. Open the link again in this browser.",
            true,
        ));
    }
    let cred = totp::load(ports, &peeked.id).await?;
    let password = form.get("password").unwrap_or("");
    let confirm = form.get("confirm").unwrap_or("");
    let again = |error: Option<&str>, code_error: Option<&str>, status| {
        pages::set_password(
            settings,
            &pages::SetPasswordForm {
                token,
                username: &peeked.username,
                form_value: expected,
                second_factor: cred.is_some(),
            },
            error,
            code_error,
            status,
        )
    };
    // Checked before the token is used, so a typo does not cost the user their link.
    let refusal = match user::check_password(password) {
        Err(e) => Some(e.0),
        Ok(()) if password != confirm => Some("The two passwords differ.".to_owned()),
        Ok(()) => None,
    };
    if let Some(message) = refusal {
        return Ok(again(Some(&message), None, StatusCode::BAD_REQUEST));
    }
    // A link for an account with a second factor is no way around it (issue 9): the code (or
    // a recovery code) is checked, on the same per-user counter as the sign-in step, before
    // the link is used and before any session exists.
    let amr: &[&str] = match &cred {
        None => &[AMR_PASSWORD],
        Some(c) => {
            if let throttle::Verdict::Wait(seconds) =
                throttle::second_factor_attempt(ports, &peeked.id, now).await?
            {
                let message = format!(
                    "Too many codes were tried. Wait {} before trying again.",
                    crate::mail::duration(seconds)
                );
                let mut resp = again(None, Some(&message), StatusCode::TOO_MANY_REQUESTS);
                if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Ok(resp);
            }
            let code = form.get("code").unwrap_or("");
            if !totp::verify_second_factor(ports, &peeked.id, c, code, now).await? {
                audit::record(
                    ports.sql(),
                    now,
                    "login.failure",
                    &peeked.id,
                    serde_json::json!({ "factor": "otp", "via": "recovery" }),
                )
                .await;
                return Ok(again(
                    None,
                    Some("That code is not correct, or was already used."),
                    StatusCode::UNAUTHORIZED,
                ));
            }
            throttle::second_factor_verified(ports, &peeked.id).await;
            &[AMR_PASSWORD, totp::AMR_OTP]
        }
    };
    let Some((user_id, purpose)) = consume(ports.credentials(), token, now).await? else {
        return Ok(pages::link_invalid(settings));
    };
    let Some(mut u) = user::load(ports.sql(), &user_id)
        .await?
        .filter(|u| !u.disabled && u.id == peeked.id)
    else {
        return Ok(pages::link_invalid(settings));
    };
    let phc = user::hash_password(ports, password)?;
    // A new password ends every session and grant the old one opened, and every other link
    // of this user dies with this one; the session started below is then the only one.
    user::change_password(ports, &u.id, &phc, now, user::Keep::Nothing).await?;
    // The mailbox was proven: the user's password and second-factor counters end, locks too.
    throttle::recovered(ports, &u).await;
    if purpose == Purpose::Welcome && !u.email_verified {
        // The link reached the user through this address.
        u.email_verified = true;
        u.updated_at = now;
        user::update(ports.sql(), &u).await?;
    }
    if let Some(old) = session::current(ports.sql(), req, now).await? {
        session::end(ports.sql(), &old.token_sha256, now).await?;
    }
    let (session_token, s) = session::create(ports, &u.id, amr, now, settings.session_ttl).await?;
    audit::record(
        ports.sql(),
        now,
        "recovery.used",
        &u.id,
        serde_json::json!({ "purpose": purpose.as_str(), "sid": s.sid }),
    )
    .await;
    let mut resp = pages::password_set(settings, &u.username);
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::cookie(
            &session_token,
            settings.session_ttl,
            settings.issuer.secure_cookies(),
        ),
    );
    Ok(resp)
}
