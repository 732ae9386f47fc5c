//! The login function: the login page (password, then the TOTP step when enrolled), the
//! consent page, logout (RP-initiated and direct), the settings pages, and the stylesheet. It is the only browser-facing function granted the credentials
//! database (DESIGN.md).

mod logout;
mod pages;
mod settings;

use http::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::authorize::complete::{Page, Step};
use crate::authorize::decision::{self, Decision, Who};
use crate::authorize::request::AuthorizeRequest;
use crate::authorize::{complete, respond};
use crate::client::{self, Client};
use crate::config::{self, Settings};
use crate::crypto::sha256_hex;
use crate::error::{ErrorCode, OAuthError};
use crate::html;
use crate::ports::UnixTime;
use crate::session::{self, AMR_PASSWORD, Session};
use crate::user::User;
use crate::{Ports, Request, Response, audit, throttle, totp, user, web};

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        html::STYLESHEET_PATH => return html::asset("text/css; charset=utf-8", html::STYLESHEET),
        html::THEME_PATH => {
            let css = Settings::load(ports)
                .map(|s| html::theme_css(&s))
                .unwrap_or_default();
            let mut resp = Response::new(css.into_bytes());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/css; charset=utf-8"),
            );
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("public, max-age=300"),
            );
            return resp;
        }
        html::FORM_POST_SCRIPT_PATH => {
            return html::asset("text/javascript; charset=utf-8", html::FORM_POST_SCRIPT);
        }
        "/login" | "/login/totp" | "/consent" | "/logout" | "/oauth2/sessions/logout" => {}
        p if p == "/settings" || p.starts_with("/settings/") => {}
        _ => return web::not_found(),
    }
    if let Some(resp) = web::wrong_method(&req, &[Method::GET, Method::POST], "GET, POST") {
        return resp;
    }
    let settings = match Settings::load(ports) {
        Ok(s) => s,
        Err(e) => return respond::error_page("edgeid", e),
    };
    let mut req = req;
    web::prefix_cookies(&mut req, settings.issuer.secure_cookies());
    let now = ports.now();
    let result = match (path.as_str(), req.method() == Method::POST) {
        ("/login", false) => login_form(ports, &settings, &req, now).await,
        ("/login", true) => login_submit(ports, &settings, &req, now).await,
        ("/login/totp", true) => second_factor_submit(ports, &settings, &req, now).await,
        ("/login/totp", false) => Err(OAuthError::invalid_request(
            "Return to the application and sign in again.",
        )),
        (p, _) if p.starts_with("/settings") => settings::handle(ports, &settings, &req, now).await,
        ("/consent", false) => consent_form(ports, &settings, &req, now).await,
        ("/consent", true) => consent_submit(ports, &settings, &req, now).await,
        _ => logout::handle(ports, &settings, &req, now).await,
    };
    let resp = result.unwrap_or_else(|e| respond::error_page(&settings.instance_name, e));
    html::with_hsts(resp, &settings)
}

/// The sealed pending request a page carries (`request`, in the query or the form), opened and
/// checked against this browser and the page it was made for, with its client and, for the
/// consent page, the `sid` of the session consent was asked of.
async fn pending<P: Ports>(
    ports: &P,
    req: &Request,
    form: &web::Form,
    page: Page,
    now: UnixTime,
) -> Result<Pending, OAuthError> {
    let sealed = form
        .get("request")
        .ok_or_else(|| OAuthError::invalid_request("The request parameter is missing."))?;
    pending_sealed(ports, req, sealed, page, now).await
}

struct Pending {
    sealed: String,
    areq: AuthorizeRequest,
    client: Client,
    /// For the consent page: the session it was asked of.
    sid: Option<String>,
}

async fn pending_sealed<P: Ports>(
    ports: &P,
    req: &Request,
    sealed: &str,
    page: Page,
    now: UnixTime,
) -> Result<Pending, OAuthError> {
    let (areq, sid) = complete::open(ports, req, sealed, page, now)?;
    let client = client::load_cached(ports, &areq.reply.client_id, now)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "The client no longer exists."))?;
    Ok(Pending {
        sealed: sealed.to_owned(),
        areq,
        client,
        sid,
    })
}

async fn login_form<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let Pending {
        sealed,
        areq,
        client,
        ..
    } = pending(ports, req, &web::Form::from_request(req)?, Page::Login, now).await?;
    Ok(pages::login(
        settings,
        &client,
        &sealed,
        areq.login_hint.as_deref().unwrap_or(""),
        None,
        StatusCode::OK,
    ))
}

/// The outcome of checking a password at a sign-in form.
enum PasswordCheck {
    /// Throttled: retry after this many seconds (nothing was verified).
    Wait(i64),
    /// Wrong identifier or password, or a disabled account (recorded, same answer for all).
    Failed,
    Verified(User),
}

/// Checks `identifier` + `password` with throttling. The same work is done whether or not the
/// account exists (a dummy hash is verified), and the answer is the same.
async fn check_password<P: Ports>(
    ports: &P,
    req: &Request,
    identifier: &str,
    password: &str,
    client_id: Option<&str>,
    now: UnixTime,
) -> Result<PasswordCheck, OAuthError> {
    // Reserved before the hash is checked (one atomic SQL statement per counter): a
    // concurrent burst gets only the allowed number of attempts evaluated.
    let addr = throttle::client_addr(req);
    if let throttle::Verdict::Wait(seconds) =
        throttle::password_attempt(ports, identifier, &addr, now).await?
    {
        return Ok(PasswordCheck::Wait(seconds));
    }
    let found = if identifier.is_empty() {
        None
    } else {
        user::find_by_identifier(ports.sql(), identifier).await?
    };
    let phc = match &found {
        Some(u) => user::password_hash(ports.credentials(), &u.id).await?,
        None => None,
    };
    let stored = phc.as_deref().unwrap_or(user::DUMMY_PHC);
    let verified = user::verify_password(stored, password) && phc.is_some();
    match found {
        Some(u) if verified && !u.disabled => {
            throttle::password_verified(ports, identifier, &addr).await;
            if !user::is_current(stored) {
                upgrade_password(ports, &u, stored, password, now).await;
            }
            Ok(PasswordCheck::Verified(u))
        }
        other => {
            // The reservation stays counted.
            audit::record(
                ports.sql(),
                now,
                "login.failure",
                other.as_ref().map_or("", |u| u.id.as_str()),
                serde_json::json!({ "client_id": client_id, "addr": addr }),
            )
            .await;
            Ok(PasswordCheck::Failed)
        }
    }
}

/// An imported (legacy) hash that just verified is replaced by edgeid's own argon2id hash in
/// the same request (DESIGN.md, "Moving in and out"), as Kratos re-hashes on login
/// (`selfservice/strategy/password/login.go`). Best effort: should hashing or the write fail,
/// the old hash stays and still verifies, and the next sign-in tries again. A hash changed
/// meanwhile (a reset) is left alone ([`user::upgrade_password`] is conditional).
async fn upgrade_password<P: Ports>(ports: &P, u: &User, old: &str, password: &str, now: UnixTime) {
    let from = user::legacy::parse(old).map_or("argon2id", |h| h.scheme().name());
    let Ok(new) = user::hash_password(ports, password) else {
        return;
    };
    if let Ok(true) = user::upgrade_password(ports.credentials(), &u.id, old, &new, now).await {
        audit::record(
            ports.sql(),
            now,
            "password.upgraded",
            &u.id,
            serde_json::json!({ "from": from }),
        )
        .await;
    }
}

const WRONG_PASSWORD: &str = "The username or email, or the password, is not correct.";

fn throttled_message(seconds: i64) -> String {
    format!(
        "Too many failed attempts. Wait {} before trying again.",
        pages::duration(seconds)
    )
}

fn with_retry_after(mut resp: Response, seconds: i64) -> Response {
    if let Ok(v) = http::HeaderValue::from_str(&seconds.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// OIDC Core §3.1.2.3: authenticate the End-User.
async fn login_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let Pending {
        sealed,
        areq,
        client,
        ..
    } = pending(ports, req, &form, Page::Login, now).await?;
    let identifier = form.get("identifier").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    let render = |error: &str, status| {
        pages::login(settings, &client, &sealed, &identifier, Some(error), status)
    };
    let user = match check_password(
        ports,
        req,
        &identifier,
        password,
        Some(&client.client_id),
        now,
    )
    .await?
    {
        PasswordCheck::Wait(seconds) => {
            let resp = render(&throttled_message(seconds), StatusCode::TOO_MANY_REQUESTS);
            return Ok(with_retry_after(resp, seconds));
        }
        PasswordCheck::Failed => return Ok(render(WRONG_PASSWORD, StatusCode::UNAUTHORIZED)),
        PasswordCheck::Verified(u) => u,
    };
    let enrolled = totp::load(ports, &user.id).await?.is_some();
    // Keeps the main database's flag (what `decide` reads) in step with the credential, for
    // accounts enrolled before the flag existed and after a half-finished removal.
    if enrolled != totp::enrolled(ports.sql(), &user.id).await? {
        totp::set_enrolled(ports.sql(), &user.id, enrolled, now).await?;
    }
    if enrolled {
        let pending = seal_second_factor(ports, req, &user, &identifier, Some(sealed), now)?;
        let mut resp = pages::second_factor(settings, &pending, None, StatusCode::OK);
        // Its POST answers with a 303 to the client (see `html::allow_form_action`).
        html::allow_form_action(&mut resp, &pages::client_form_actions(&client));
        return Ok(resp);
    }
    let next = Next::Client {
        client: Box::new(client),
        areq: Box::new(areq),
    };
    finish_login(ports, settings, req, now, &user, &[AMR_PASSWORD], next).await
}

/// Where a completed sign-in goes.
enum Next {
    /// Back into the authorization request (consent, then the client).
    Client {
        client: Box<Client>,
        areq: Box<AuthorizeRequest>,
    },
    /// To the settings page.
    Settings,
}

/// Decides, then starts the session (replacing the browser's previous one: prompt=login,
/// another user), records the login and continues to `next`. The decision is taken for the
/// session about to start, before it exists: a sign-in the request refuses (no role on the
/// app, another user than `id_token_hint` names) hands out no session for another page to
/// accept (DESIGN.md, "One decision per question").
async fn finish_login<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
    user: &User,
    amr: &[&str],
    next: Next,
) -> Result<Response, OAuthError> {
    let decided = match &next {
        Next::Client { client, areq } => {
            let candidate = Session {
                token_sha256: String::new(),
                sid: String::new(),
                user_id: user.id.clone(),
                auth_time: now,
                amr: amr.iter().map(|m| (*m).to_owned()).collect(),
                expires_at: now + settings.session_ttl,
            };
            let d = decision::decide(ports, now, client, areq, Who::Fresh(&candidate)).await?;
            match d {
                Decision::Denied { app, username } => {
                    return Ok(complete::denied_page(settings, &app, &username));
                }
                Decision::Authenticate(why) => {
                    // A fresh authentication satisfies prompt=login and max_age; what is left
                    // is another user than the hint names, or a factor this sign-in lacks.
                    let e = OAuthError::new(
                        ErrorCode::LoginRequired,
                        "The application asked for a sign-in this account cannot give.",
                    )
                    .with_internal(format!("login refused by the decision: {why:?}"));
                    return Ok(respond::deliver_error(
                        &areq.reply,
                        settings.issuer.as_str(),
                        &settings.instance_name,
                        e,
                    ));
                }
                d => Some(d),
            }
        }
        Next::Settings => None,
    };
    if let Some(old) = session::current(ports.sql(), req, now).await? {
        session::end(ports.sql(), &old.token_sha256, now).await?;
    }
    let (token, s) = session::create(ports, &user.id, amr, now, settings.session_ttl).await?;
    let client_id = match &next {
        Next::Client { client, .. } => Some(client.client_id.clone()),
        Next::Settings => None,
    };
    audit::record(
        ports.sql(),
        now,
        "login.success",
        &user.id,
        serde_json::json!({ "client_id": client_id, "sid": s.sid, "amr": amr }),
    )
    .await;
    let mut resp = match (next, decided) {
        (Next::Client { areq, .. }, Some(Decision::Consent)) => {
            let step = Step::Consent { sid: s.sid.clone() };
            complete::to_page(ports, settings, now, req, &areq, &step)
        }
        (Next::Client { client, areq }, _) => {
            complete::respond_to_client(ports, settings, now, &client, &areq, &s).await
        }
        (Next::Settings, _) => web::see_other(&settings.issuer.endpoint("/settings")),
    };
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::cookie(
            &token,
            settings.session_ttl,
            settings.issuer.secure_cookies(),
        ),
    );
    Ok(resp)
}

const SECOND_FACTOR_CONTEXT: &str = "edgeid/login-second-factor/v1";
/// How long the second-factor form stays valid after the password was verified.
const SECOND_FACTOR_TTL: i64 = 300;

/// "The password of user X was verified; continue with pending request R" — sealed into the
/// second-factor form, short-lived and bound to this browser's flow cookie, so nothing is
/// stored before the second factor and the form cannot be replayed from another browser.
#[derive(Serialize, Deserialize)]
struct SecondFactor {
    user: String,
    /// What the form named, for throttling the codes under the same counter.
    identifier: String,
    /// The sealed authorization request; `None` for a sign-in to the settings page.
    request: Option<String>,
    /// SHA-256 of the browser's `edgeid_flow` cookie.
    bind: String,
    exp: UnixTime,
}

fn seal_second_factor<P: Ports>(
    ports: &P,
    req: &Request,
    user: &User,
    identifier: &str,
    request: Option<String>,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let flow = web::cookie(req, session::FLOW_COOKIE).ok_or_else(|| {
        OAuthError::invalid_request("Cookies are needed to sign in. Enable them and try again.")
    })?;
    let plain = serde_json::to_vec(&SecondFactor {
        user: user.id.clone(),
        identifier: identifier.to_owned(),
        request,
        bind: sha256_hex(flow.as_bytes()),
        exp: now + SECOND_FACTOR_TTL,
    })
    .map_err(OAuthError::server)?;
    Ok(config::kek(ports)?.seal(ports, SECOND_FACTOR_CONTEXT, &plain)?)
}

/// RFC 6238 as a second factor: the code (or a recovery code) for the user whose password the
/// sealed form vouches for; then the session has `amr` `["pwd", "otp"]` (RFC 8176 §2).
async fn second_factor_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let expired = || {
        OAuthError::invalid_request(
            "This sign-in has expired or was started in another browser. Sign in again.",
        )
    };
    let sealed = form.get("pending").ok_or_else(expired)?;
    let plain = config::kek(ports)?
        .open(SECOND_FACTOR_CONTEXT, sealed)
        .map_err(|_| expired())?;
    let p: SecondFactor = serde_json::from_slice(&plain).map_err(|_| expired())?;
    let flow = web::cookie(req, session::FLOW_COOKIE).ok_or_else(expired)?;
    if p.exp <= now || !crate::crypto::digest_eq(&p.bind, &sha256_hex(flow.as_bytes())) {
        return Err(expired());
    }
    // The authorization request is checked before the code is spent.
    let target = match &p.request {
        Some(r) => Some(pending_sealed(ports, req, r, Page::Login, now).await?),
        None => None,
    };
    let user = user::load(ports.sql(), &p.user)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(expired)?;
    let cred = totp::load(ports, &user.id).await?;
    // The user's own second-factor counter (never reset by the password), reserved before the
    // code is compared.
    if cred.is_some()
        && let throttle::Verdict::Wait(seconds) =
            throttle::second_factor_attempt(ports, &user.id, now).await?
    {
        let mut resp = pages::second_factor(
            settings,
            sealed,
            Some(&throttled_message(seconds)),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Some(Pending { client, .. }) = &target {
            html::allow_form_action(&mut resp, &pages::client_form_actions(client));
        }
        return Ok(with_retry_after(resp, seconds));
    }
    let code = form.get("code").unwrap_or("");
    let ok = match &cred {
        Some(c) => totp::verify_second_factor(ports, &user.id, c, code, now).await?,
        // Removed meanwhile: the password alone was what the account asked for.
        None => true,
    };
    if !ok {
        // The reservation stays counted.
        audit::record(
            ports.sql(),
            now,
            "login.failure",
            &user.id,
            serde_json::json!({
                "client_id": target.as_ref().map(|t| t.client.client_id.clone()),
                "factor": "otp",
            }),
        )
        .await;
        let mut resp = pages::second_factor(
            settings,
            sealed,
            Some("That code is not correct, or was already used."),
            StatusCode::UNAUTHORIZED,
        );
        if let Some(Pending { client, .. }) = &target {
            html::allow_form_action(&mut resp, &pages::client_form_actions(client));
        }
        return Ok(resp);
    }
    if cred.is_some() {
        throttle::second_factor_verified(ports, &user.id).await;
    }
    let amr: &[&str] = if cred.is_some() {
        &[AMR_PASSWORD, totp::AMR_OTP]
    } else {
        &[AMR_PASSWORD]
    };
    let next = match target {
        Some(Pending { areq, client, .. }) => Next::Client {
            client: Box::new(client),
            areq: Box::new(areq),
        },
        None => Next::Settings,
    };
    finish_login(ports, settings, req, now, &user, amr, next).await
}

/// The consent page (OIDC Core §3.1.2.4). It asks only when the decision for the browser's
/// current session says so; otherwise it sends the browser where the decision points.
async fn consent_form<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::from_request(req)?;
    let p = pending(ports, req, &form, Page::Consent, now).await?;
    let current = session::current(ports.sql(), req, now).await?;
    let asked_of_this_session = matches!((&current, &p.sid), (Some(s), Some(sid)) if s.sid == *sid);
    if !asked_of_this_session {
        // Another session (or none) since consent was asked: decide afresh for this one.
        return Ok(complete::proceed(
            ports,
            settings,
            now,
            &p.client,
            &p.areq,
            Who::returning(current.as_ref()),
            req,
        )
        .await);
    }
    let Some(s) = current else {
        return Ok(complete::to_page(
            ports,
            settings,
            now,
            req,
            &p.areq,
            &Step::Login,
        ));
    };
    if let Some(elsewhere) = unless_consent_fits(ports, settings, now, &p, &s, req).await? {
        return Ok(elsewhere);
    }
    let user = user::load(ports.sql(), &s.user_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::LoginRequired, "The user must log in."))?;
    let app = crate::app::for_client(ports.sql(), &p.client.client_id).await?;
    Ok(pages::consent(
        settings,
        &p.client,
        app.as_ref(),
        &user,
        &p.areq.scope,
        &p.sealed,
    ))
}

/// Decides again for the session consent was asked of: `None` when consent may be given,
/// else where the decision sends the browser instead (a role removed meanwhile, a user
/// disabled, a second factor enrolled since).
async fn unless_consent_fits<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    p: &Pending,
    s: &Session,
    req: &Request,
) -> Result<Option<Response>, OAuthError> {
    let who = Who::Fresh(s);
    Ok(
        match decision::decide(ports, now, &p.client, &p.areq, who).await? {
            Decision::Consent | Decision::Proceed => None,
            _ => Some(complete::proceed(ports, settings, now, &p.client, &p.areq, who, req).await),
        },
    )
}

/// OIDC Core §3.1.2.4: the user's decision. Deny answers `access_denied` (RFC 6749 §4.1.2.1).
/// Allow completes the request only when the decision for this session still lets it (the
/// consent value was asked of this very session, which still passes every check).
async fn consent_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let p = pending(ports, req, &form, Page::Consent, now).await?;
    let current = session::current(ports.sql(), req, now).await?;
    let s = match (current, &p.sid) {
        (Some(s), Some(sid)) if s.sid == *sid => s,
        _ => {
            return Err(OAuthError::invalid_request(
                "This consent was asked in another sign-in. Return to the application and \
                 start again.",
            ));
        }
    };
    let issuer = settings.issuer.as_str();
    match form.get("decision") {
        Some("allow") => {
            if let Some(elsewhere) = unless_consent_fits(ports, settings, now, &p, &s, req).await? {
                return Ok(elsewhere);
            }
            complete::remember_consent(ports, &s.user_id, &p.client.client_id, &p.areq.scope, now)
                .await?;
            Ok(complete::respond_to_client(ports, settings, now, &p.client, &p.areq, &s).await)
        }
        Some("deny") => Ok(respond::deliver_error(
            &p.areq.reply,
            issuer,
            &settings.instance_name,
            OAuthError::new(ErrorCode::AccessDenied, "The user denied the request."),
        )),
        _ => Err(OAuthError::invalid_request(
            "The decision must be allow or deny.",
        )),
    }
}
