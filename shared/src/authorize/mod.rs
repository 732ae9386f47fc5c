//! The authorization endpoint (RFC 6749 §3.1, §4.1.1; OIDC Core §3.1.2, §3.2.2, §3.3.2):
//! `GET`/`POST /oauth2/auth`.
//!
//! Validates the request, then either answers at once (a live session that satisfies
//! `prompt`, `max_age` and `id_token_hint`, with consent remembered or skipped) or hands the
//! request, sealed, to the login function. Nothing is written before the user authenticates
//! (DESIGN.md).

pub mod complete;
pub mod decision;
pub mod request;
pub mod respond;

use http::Method;

use crate::client;
use crate::config::Settings;
use crate::error::{ErrorCode, OAuthError};
use crate::session;
use crate::{Ports, Request, Response, web};

use self::request::Unverified;

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    if req.uri().path() != "/oauth2/auth" {
        return web::not_found();
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
    let resp = authorize(ports, &settings, &req)
        .await
        .unwrap_or_else(|Unverified(e)| respond::error_page(&settings.instance_name, e));
    crate::html::with_hsts(resp, &settings)
}

async fn authorize<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
) -> Result<Response, Unverified> {
    let now = ports.now();
    let form = web::Form::from_request(req).map_err(Unverified)?;
    let client_id = form.get("client_id").ok_or_else(|| {
        Unverified(OAuthError::invalid_request(
            "The client_id parameter is missing.",
        ))
    })?;
    let client = client::load_cached(ports, client_id, now)
        .await
        .map_err(|e| Unverified(e.into()))?
        .ok_or_else(|| {
            Unverified(OAuthError::new(
                ErrorCode::InvalidClient,
                "The client_id is not registered.",
            ))
        })?;
    let redirect_uri = request::verify_redirect(&form, &client)?;
    let reply = request::reply_to(&form, &client, redirect_uri);
    let issuer = settings.issuer.as_str();
    let instance = settings.instance_name.as_str();
    let fail = |e: OAuthError| respond::deliver_error(&reply, issuer, instance, e);

    let mut areq = match request::validate(&form, &client, reply.clone()) {
        Ok(r) => r,
        Err(e) => return Ok(fail(e)),
    };
    if let Some(hint) = form.get("id_token_hint") {
        match complete::verify_id_token_hint(ports, settings, hint, now).await {
            Ok(sub) => areq.hint_sub = Some(sub),
            Err(e) => return Ok(fail(e)),
        }
    }
    let session = match session::current(ports.sql(), req, now).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e.into())),
    };
    let who = decision::Who::returning(session.as_ref());
    Ok(complete::proceed(ports, settings, now, &client, &areq, who, req).await)
}
