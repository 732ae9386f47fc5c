//! The UserInfo endpoint (OIDC Core §5.3): `GET`/`POST /userinfo` with a bearer access token
//! in the `Authorization` header or, for POST, the `access_token` form parameter
//! (RFC 6750 §2.1, §2.2). Errors per RFC 6750 §3.1: 401 `invalid_token` with a
//! `WWW-Authenticate: Bearer` challenge, 403 `insufficient_scope` without `openid`.

use http::{Method, StatusCode, header};

use crate::config::Settings;
use crate::error::{Challenge, ErrorCode, OAuthError};
use crate::{Ports, Request, Response, access, issue, user, web};

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    if req.uri().path() != "/userinfo" {
        return web::not_found();
    }
    if let Some(resp) = web::wrong_method(&req, &[Method::GET, Method::POST], "GET, POST") {
        return resp;
    }
    let mut resp = match userinfo(ports, &req).await {
        Ok(claims) => web::json(StatusCode::OK, &claims),
        Err(e) => e.with_challenge(Challenge::Bearer).into_json_response(),
    };
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    // Browser-based relying parties call userinfo cross-origin with a bearer token.
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    resp
}

fn invalid_token(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, description)
}

/// The bearer token: from the header, or (POST only) the form body; never both (RFC 6750 §2).
fn bearer(req: &Request) -> Result<String, OAuthError> {
    let header_token = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| invalid_token("Malformed Authorization header."))?;
            match v.trim().split_once(' ') {
                Some((scheme, t))
                    if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() =>
                {
                    Some(t.trim().to_owned())
                }
                _ => {
                    return Err(invalid_token(
                        "The Authorization header is not a Bearer token.",
                    ));
                }
            }
        }
    };
    let form_token = if req.method() == Method::POST && !req.body().is_empty() {
        web::Form::parse(req)?.take("access_token")
    } else {
        None
    };
    match (header_token, form_token) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "The access token was sent in more than one way.",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        // RFC 6750 §3.1: a request without authentication gets a challenge without an error code;
        // clients act on the 401 either way.
        (None, None) => Err(invalid_token("An access token is required.")),
    }
}

async fn userinfo<P: Ports>(ports: &P, req: &Request) -> Result<serde_json::Value, OAuthError> {
    let token = bearer(req)?;
    let settings = Settings::load(ports)?;
    let now = ports.now();
    let claims = match access::verify(ports, &settings, &token, now).await {
        Ok(c) => c,
        Err(access::Rejected::Port(e)) => return Err(e.into()),
        Err(access::Rejected::Invalid(_)) => {
            return Err(invalid_token(
                "The access token is invalid, expired or revoked.",
            ));
        }
    };
    let scopes = claims.scopes();
    if !scopes.contains(&"openid") || claims.gid.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "The access token was not granted the openid scope.",
        ));
    }
    let user = user::load(ports.sql(), &claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_token("The user of this access token is no longer active."))?;
    let mut out = issue::user_claims(&user, &scopes);
    out.extend(issue::role_claims(ports.sql(), &user, &claims.client_id, &scopes).await?);
    out.insert("sub".into(), serde_json::Value::String(user.id));
    Ok(serde_json::Value::Object(out))
}
