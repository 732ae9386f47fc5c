//! Completing an authorization once the user is authenticated: consent, then the response
//! (code and/or tokens) to the client. Shared by the authorize function (live session) and
//! the login function (after the login form or the consent page).
//!
//! Between functions the request travels sealed (XChaCha20-Poly1305 under the key-encryption
//! key, expiry inside) and bound to the browser by the `edgeid_flow` cookie (DESIGN.md).

use serde::{Deserialize, Serialize};

use super::decision::{self, Decision, Who};
use super::request::AuthorizeRequest;
use super::respond;
use crate::client::Client;
use crate::config::{self, Settings};
use crate::crypto::{random_token, sha256_hex};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{self, Code, Grant};
use crate::issue::{self, IdTokenParts};
use crate::ports::{Ports, Sql as _, Statement, UnixTime};
use crate::session::{FLOW_COOKIE, Session};
use crate::{Request, Response, user, web};

const SEAL_CONTEXT: &str = "edgeid/pending-authorization/v2";

/// The page a sealed request was made for. A value minted for one page is refused at another
/// (DESIGN.md): the login page's value cannot be posted to the consent page to skip the
/// sign-in, and a consent value is bound to the session it was asked of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `/login` (and the TOTP step that follows it).
    Login,
    /// `/consent`, asked of the session with this `sid`.
    Consent { sid: String },
}

impl Step {
    fn page(&self) -> &'static str {
        match self {
            Step::Login => "/login",
            Step::Consent { .. } => "/consent",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    req: AuthorizeRequest,
    exp: UnixTime,
    /// SHA-256 of the browser's `edgeid_flow` cookie.
    bind: String,
    /// `login` or `consent`.
    step: String,
    /// For `consent`: the session's `sid`.
    #[serde(default)]
    sid: Option<String>,
}

/// Seals `areq` for the page of `step`, bound to `flow` (the cookie value).
pub fn seal<P: Ports>(
    ports: &P,
    areq: &AuthorizeRequest,
    flow: &str,
    step: &Step,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let (name, sid) = match step {
        Step::Login => ("login", None),
        Step::Consent { sid } => ("consent", Some(sid.clone())),
    };
    let sealed = Sealed {
        req: areq.clone(),
        exp: now + config::PENDING_REQUEST_TTL,
        bind: sha256_hex(flow.as_bytes()),
        step: name.to_owned(),
        sid,
    };
    let plain = serde_json::to_vec(&sealed).map_err(OAuthError::server)?;
    Ok(config::kek(ports)?.seal(ports, SEAL_CONTEXT, &plain)?)
}

/// What a page expects of a sealed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Login,
    Consent,
}

/// Opens a sealed request made for `page`; fails when tampered with, expired, opened in
/// another browser, or made for another page. For the consent page it also returns the `sid`
/// of the session consent was asked of.
pub fn open<P: Ports>(
    ports: &P,
    req: &Request,
    sealed: &str,
    page: Page,
    now: UnixTime,
) -> Result<(AuthorizeRequest, Option<String>), OAuthError> {
    let expired = || {
        OAuthError::invalid_request(
            "This sign-in request has expired or was started in another browser. \
             Return to the application and start again.",
        )
    };
    let plain = config::kek(ports)?
        .open(SEAL_CONTEXT, sealed)
        .map_err(|_| expired())?;
    let s: Sealed = serde_json::from_slice(&plain).map_err(|_| expired())?;
    let flow = web::cookie(req, FLOW_COOKIE).ok_or_else(expired)?;
    if s.exp <= now || !crate::crypto::digest_eq(&s.bind, &sha256_hex(flow.as_bytes())) {
        return Err(expired());
    }
    let made_for = match s.step.as_str() {
        "login" => Page::Login,
        "consent" => Page::Consent,
        _ => return Err(expired()),
    };
    if made_for != page {
        return Err(OAuthError::invalid_request(
            "This sign-in request belongs to another step. Return to the application and \
             start again.",
        ));
    }
    Ok((s.req, s.sid))
}

/// Redirects to the page of `step` (`/login`, `/consent`) with the request sealed for it,
/// setting the flow cookie when the browser has none yet.
pub fn to_page<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    req: &Request,
    areq: &AuthorizeRequest,
    step: &Step,
) -> Response {
    let fail = |e: OAuthError| {
        respond::deliver_error(
            &areq.reply,
            settings.issuer.as_str(),
            &settings.instance_name,
            e,
        )
    };
    let (flow, new) = match web::cookie(req, FLOW_COOKIE).filter(|f| f.len() >= 22) {
        Some(f) => (f.to_owned(), false),
        None => match random_token(ports, 18) {
            Ok(f) => (f, true),
            Err(e) => return fail(e.into()),
        },
    };
    let sealed = match seal(ports, areq, &flow, step, now) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut resp = web::see_other(
        &settings
            .issuer
            .endpoint(&format!("{}?request={sealed}", step.page())),
    );
    if new {
        resp.headers_mut().append(
            http::header::SET_COOKIE,
            web::set_cookie(FLOW_COOKIE, &flow, None, settings.issuer.secure_cookies()),
        );
    }
    resp
}

/// The scopes a user has granted a client before.
pub async fn remembered_consent<P: Ports>(
    ports: &P,
    user_id: &str,
    client_id: &str,
) -> Result<Vec<String>, OAuthError> {
    let rows = ports
        .sql()
        .query(Statement::new(
            "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?",
            vec![user_id.into(), client_id.into()],
        ))
        .await?;
    Ok(match rows.first() {
        Some(r) => r.text(0)?.split(' ').map(str::to_owned).collect(),
        None => Vec::new(),
    })
}

/// Remembers a granted consent (the union with what was granted before).
pub async fn remember_consent<P: Ports>(
    ports: &P,
    user_id: &str,
    client_id: &str,
    scope: &[String],
    now: UnixTime,
) -> Result<(), OAuthError> {
    let mut all = remembered_consent(ports, user_id, client_id).await?;
    for s in scope {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    ports
        .sql()
        .query(Statement::new(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, \
             granted_at = excluded.granted_at",
            vec![
                user_id.into(),
                client_id.into(),
                all.join(" ").into(),
                now.into(),
            ],
        ))
        .await?;
    Ok(())
}

/// Acts on the decision for a live session (or none): the authorization endpoint, and the
/// consent page when it finds the session no longer fits. `prompt=none` never shows a page
/// (OIDC Core §3.1.2.6: `login_required`, `consent_required`).
pub async fn proceed<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    areq: &AuthorizeRequest,
    who: Who<'_>,
    req: &Request,
) -> Response {
    let fail = |e: OAuthError| {
        respond::deliver_error(
            &areq.reply,
            settings.issuer.as_str(),
            &settings.instance_name,
            e,
        )
    };
    let none = areq.prompt.none;
    match decision::decide(ports, now, client, areq, who).await {
        Err(e) => fail(e),
        Ok(Decision::Authenticate(_)) if none => fail(OAuthError::new(
            ErrorCode::LoginRequired,
            "The user must log in.",
        )),
        Ok(Decision::Authenticate(_)) => to_page(ports, settings, now, req, areq, &Step::Login),
        Ok(Decision::Denied { .. }) if none => fail(OAuthError::new(
            ErrorCode::AccessDenied,
            "The user has no access to this application.",
        )),
        Ok(Decision::Denied { app, username }) => denied_page(settings, &app, &username),
        Ok(Decision::Consent) if none => fail(OAuthError::new(
            ErrorCode::ConsentRequired,
            "The user must consent to this request.",
        )),
        Ok(Decision::Consent) => match who.session() {
            Some(s) => {
                let step = Step::Consent { sid: s.sid.clone() };
                to_page(ports, settings, now, req, areq, &step)
            }
            // `decide` answers Consent only for a session.
            None => to_page(ports, settings, now, req, areq, &Step::Login),
        },
        Ok(Decision::Proceed) => match who.session() {
            Some(s) => respond_to_client(ports, settings, now, client, areq, s).await,
            None => to_page(ports, settings, now, req, areq, &Step::Login),
        },
    }
}

/// The `access_denied` page for a user without a role on the app: a page, not a redirect,
/// so the user learns why and whom to ask. It hands out no session.
pub fn denied_page(settings: &Settings, app: &str, username: &str) -> Response {
    use crate::html::escape;
    let body = format!(
        "<h1>No access to {app}</h1>\
         <p class=\"error\" id=\"error\">access_denied</p>\
         <p>You are signed in as <strong>{user}</strong>, but your account has no role on \
         {app}. Ask an administrator to give you access.</p>",
        app = escape(app),
        user = escape(username),
    );
    crate::html::response(
        http::StatusCode::FORBIDDEN,
        crate::html::page(&settings.instance_name, "No access", &body),
    )
}

/// Issues what the response type asks for and delivers it (RFC 6749 §4.1.2, §4.2.2; OIDC
/// Core §3.3.2.5 for the hybrid flow). Only for a request that [`decision::decide`] let
/// proceed (or whose consent the user just gave).
pub async fn respond_to_client<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    areq: &AuthorizeRequest,
    session: &Session,
) -> Response {
    let issuer = settings.issuer.as_str();
    let instance = settings.instance_name.as_str();
    match issue_response(ports, settings, now, client, areq, session).await {
        Ok(params) => respond::deliver(&areq.reply, issuer, instance, params),
        Err(e) => respond::deliver_error(&areq.reply, issuer, instance, e),
    }
}

async fn issue_response<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    areq: &AuthorizeRequest,
    session: &Session,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let user = user::load(ports.sql(), &session.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::new(ErrorCode::LoginRequired, "The user must log in."))?;
    let g = Grant {
        id: grant::new_grant_id(ports)?,
        client_id: client.client_id.clone(),
        user_id: user.id.clone(),
        sid: session.sid.clone(),
        scope: areq.scope_string(),
    };
    let mut stmts = vec![grant::insert_grant(&g, now)];
    let code = if areq.has("code") {
        let (code, stmt) = grant::new_code(
            ports,
            &Code {
                grant_id: g.id.clone(),
                client_id: client.client_id.clone(),
                redirect_uri: areq.redirect_uri_param().map(str::to_owned),
                code_challenge: areq.code_challenge.clone(),
                nonce: areq.nonce.clone(),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
            },
            now,
            config::CODE_TTL,
        )?;
        stmts.push(stmt);
        Some(code)
    } else {
        None
    };
    ports.sql().batch(stmts).await?;

    let scope: Vec<&str> = areq.scope.iter().map(String::as_str).collect();
    let mut params: Vec<(&'static str, String)> = Vec::new();
    let access = if areq.has("token") {
        let at = issue::access_token(ports, settings, now, client, &user.id, &scope, &g.id).await?;
        params.push(("access_token", at.access_token.clone()));
        params.push(("token_type", "Bearer".to_owned()));
        params.push(("expires_in", at.expires_in.to_string()));
        params.push(("scope", at.scope.clone()));
        Some(at.access_token)
    } else {
        None
    };
    if areq.has("id_token") {
        let id_token = issue::id_token(
            ports,
            settings,
            now,
            client,
            &user,
            &scope,
            IdTokenParts {
                nonce: areq.nonce.as_deref(),
                auth_time: session.auth_time,
                amr: &session.amr,
                sid: &session.sid,
                access_token: access.as_deref(),
                code: code.as_deref(),
            },
        )
        .await?;
        params.push(("id_token", id_token));
    }
    if let Some(code) = code {
        params.push(("code", code));
    }
    Ok(params)
}

/// Verifies an `id_token_hint` (OIDC Core §3.1.2.1): an ID token we issued, signature valid;
/// it may have expired. Returns its `sub`.
pub async fn verify_id_token_hint<P: Ports>(
    ports: &P,
    settings: &Settings,
    hint: &str,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let claims = verify_id_token(ports, settings, hint, now).await?;
    claims["sub"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| OAuthError::invalid_request("The id_token_hint has no sub."))
}

/// An ID token edgeid issued (signature and `iss`; expiry ignored): its claims.
pub async fn verify_id_token<P: Ports>(
    ports: &P,
    settings: &Settings,
    token: &str,
    now: UnixTime,
) -> Result<serde_json::Value, OAuthError> {
    let keys = crate::keys::published(ports.sql(), now).await?;
    let v = crate::jose::verify(token, &keys).map_err(|reason| {
        OAuthError::invalid_request("The id_token_hint is not a valid ID token.")
            .with_internal(format!("id_token_hint: {reason}"))
    })?;
    if v.typ.as_deref() == Some("at+jwt")
        || v.claims["iss"].as_str() != Some(settings.issuer.as_str())
    {
        return Err(OAuthError::invalid_request(
            "The id_token_hint is not a valid ID token.",
        ));
    }
    Ok(v.claims)
}
