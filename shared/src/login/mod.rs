//! The login function: the login page, the consent page, logout (RP-initiated and direct),
//! and the stylesheet. It is the only browser-facing function granted the credentials
//! database (DESIGN.md).

mod logout;
mod pages;

use http::{Method, StatusCode, header};

use crate::authorize::request::AuthorizeRequest;
use crate::authorize::{complete, respond};
use crate::client::{self, Client};
use crate::config::Settings;
use crate::error::{ErrorCode, OAuthError};
use crate::html;
use crate::ports::UnixTime;
use crate::session::{self, AMR_PASSWORD};
use crate::{Ports, Request, Response, audit, throttle, user, web};

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        html::STYLESHEET_PATH => return html::asset("text/css; charset=utf-8", html::STYLESHEET),
        html::FORM_POST_SCRIPT_PATH => {
            return html::asset("text/javascript; charset=utf-8", html::FORM_POST_SCRIPT);
        }
        "/login" | "/consent" | "/logout" | "/oauth2/sessions/logout" => {}
        _ => return web::not_found(),
    }
    if let Some(resp) = web::wrong_method(&req, &[Method::GET, Method::POST], "GET, POST") {
        return resp;
    }
    let settings = match Settings::load(ports) {
        Ok(s) => s,
        Err(e) => return respond::error_page("edgeid", e),
    };
    let now = ports.now();
    let result = match (path.as_str(), req.method() == Method::POST) {
        ("/login", false) => login_form(ports, &settings, &req, now).await,
        ("/login", true) => login_submit(ports, &settings, &req, now).await,
        ("/consent", false) => consent_form(ports, &settings, &req, now).await,
        ("/consent", true) => consent_submit(ports, &settings, &req, now).await,
        _ => logout::handle(ports, &settings, &req, now).await,
    };
    let resp = result.unwrap_or_else(|e| respond::error_page(&settings.instance_name, e));
    html::with_hsts(resp, &settings)
}

/// The sealed pending request a page carries (`request`, in the query or the form), opened and
/// checked against this browser, with its client.
async fn pending<P: Ports>(
    ports: &P,
    req: &Request,
    form: &web::Form,
    now: UnixTime,
) -> Result<(String, AuthorizeRequest, Client), OAuthError> {
    let sealed = form
        .get("request")
        .ok_or_else(|| OAuthError::invalid_request("The request parameter is missing."))?
        .to_owned();
    let areq = complete::open(ports, req, &sealed, now)?;
    let client = client::load_cached(ports, &areq.reply.client_id, now)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "The client no longer exists."))?;
    Ok((sealed, areq, client))
}

async fn login_form<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let (sealed, areq, client) = pending(ports, req, &web::Form::from_request(req)?, now).await?;
    Ok(pages::login(
        settings,
        &client,
        &sealed,
        areq.login_hint.as_deref().unwrap_or(""),
        None,
        StatusCode::OK,
    ))
}

/// OIDC Core §3.1.2.3: authenticate the End-User. The same work is done whether or not the
/// account exists (a dummy hash is verified), and the answer is the same.
async fn login_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let (sealed, areq, client) = pending(ports, req, &form, now).await?;
    let identifier = form.get("identifier").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    let addr = throttle::client_addr(req);
    if let throttle::Verdict::Wait(seconds) =
        throttle::check(ports, &identifier, &addr, now).await?
    {
        let message = format!(
            "Too many failed attempts. Wait {} before trying again.",
            pages::duration(seconds)
        );
        let mut resp = pages::login(
            settings,
            &client,
            &sealed,
            &identifier,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(v) = http::HeaderValue::from_str(&seconds.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }

    let found = if identifier.is_empty() {
        None
    } else {
        user::find_by_identifier(ports.sql(), &identifier).await?
    };
    let phc = match &found {
        Some(u) => user::password_hash(ports.credentials(), &u.id).await?,
        None => None,
    };
    let verified =
        user::verify_password(phc.as_deref().unwrap_or(user::DUMMY_PHC), password) && phc.is_some();
    let user = match found {
        Some(u) if verified && !u.disabled => u,
        other => {
            throttle::failed(ports, &identifier, &addr, now).await?;
            audit::record(
                ports.sql(),
                now,
                "login.failure",
                other.as_ref().map_or("", |u| u.id.as_str()),
                serde_json::json!({ "client_id": client.client_id }),
            )
            .await;
            return Ok(pages::login(
                settings,
                &client,
                &sealed,
                &identifier,
                Some("The username or email, or the password, is not correct."),
                StatusCode::UNAUTHORIZED,
            ));
        }
    };
    throttle::succeeded(ports, &identifier, &addr).await;
    // A fresh login replaces the browser's previous session (prompt=login, another user).
    if let Some(old) = session::current(ports.sql(), req, now).await? {
        session::end(ports.sql(), &old.token_sha256, now).await?;
    }
    let (token, s) =
        session::create(ports, &user.id, &[AMR_PASSWORD], now, settings.session_ttl).await?;
    audit::record(
        ports.sql(),
        now,
        "login.success",
        &user.id,
        serde_json::json!({ "client_id": client.client_id, "sid": s.sid }),
    )
    .await;
    let mut resp =
        complete::after_authentication(ports, settings, now, &client, areq, &s, req).await;
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

async fn consent_form<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let (sealed, areq, client) = pending(ports, req, &web::Form::from_request(req)?, now).await?;
    let Some(s) = session::current(ports.sql(), req, now).await? else {
        return Ok(web::see_other(
            &settings
                .issuer
                .endpoint(&format!("/login?request={sealed}")),
        ));
    };
    let user = user::load(ports.sql(), &s.user_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::LoginRequired, "The user must log in."))?;
    Ok(pages::consent(
        settings,
        &client,
        &user,
        &areq.scope,
        &sealed,
    ))
}

/// OIDC Core §3.1.2.4: the user's decision. Deny answers `access_denied` (RFC 6749 §4.1.2.1).
async fn consent_submit<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::parse(req)?;
    let (sealed, areq, client) = pending(ports, req, &form, now).await?;
    let Some(s) = session::current(ports.sql(), req, now).await? else {
        return Ok(web::see_other(
            &settings
                .issuer
                .endpoint(&format!("/login?request={sealed}")),
        ));
    };
    let issuer = settings.issuer.as_str();
    match form.get("decision") {
        Some("allow") => {
            complete::remember_consent(ports, &s.user_id, &client.client_id, &areq.scope, now)
                .await?;
            Ok(complete::respond_to_client(ports, settings, now, &client, &areq, &s).await)
        }
        Some("deny") => Ok(respond::deliver_error(
            &areq.reply,
            issuer,
            &settings.instance_name,
            OAuthError::new(ErrorCode::AccessDenied, "The user denied the request."),
        )),
        _ => Err(OAuthError::invalid_request(
            "The decision must be allow or deny.",
        )),
    }
}
