//! Token introspection (RFC 7662): `POST /oauth2/introspect`, client-authenticated (§2.1:
//! "the endpoint MUST also require some form of authorization").
//!
//! Inactive, revoked, expired and unknown tokens all answer `{"active": false}` (§2.2).

use http::StatusCode;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::error::OAuthError;
use crate::{Ports, Request, Response, access, grant, web};

pub async fn handle<P: Ports>(ports: &P, req: &Request) -> Response {
    match introspect(ports, req).await {
        Ok(body) => web::with_header(
            web::json(StatusCode::OK, &body),
            http::header::CACHE_CONTROL,
            "no-store",
        ),
        Err(e) => e.into_json_response(),
    }
}

async fn introspect<P: Ports>(ports: &P, req: &Request) -> Result<Value, OAuthError> {
    let (mut form, client) = super::authenticated_form(ports, req).await?;
    let token = form
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("The token parameter is missing."))?;
    let now = ports.now();
    let settings = Settings::load(ports)?;
    // RFC 7662 §2.2, §4: a caller learns only about tokens meant for it — a refresh token of
    // its own, an access token issued to it or naming it in `aud`. Anything else is
    // `{"active": false}`, indistinguishable from an invalid token.
    let inactive = json!({ "active": false });
    if let Some((r, iat, exp)) = grant::peek_refresh(ports.sql(), &token, now).await? {
        if r.client_id != client.client_id {
            return Ok(inactive);
        }
        let sub = grant::load_grant(ports.sql(), &r.grant_id)
            .await?
            .map(|(g, _)| g.user_id)
            .unwrap_or_default();
        return Ok(json!({
            "active": true,
            "scope": r.scope,
            "client_id": r.client_id,
            "sub": sub,
            "iat": iat,
            "exp": exp,
            "iss": settings.issuer.as_str(),
            "token_use": "refresh_token",
        }));
    }
    match access::verify(ports, &settings, &token, now).await {
        Ok(c) if !meant_for(&c, &client.client_id) => Ok(inactive),
        Ok(c) => Ok(json!({
            "active": true,
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iat": c.iat,
            "exp": c.exp,
            "iss": c.iss,
            "jti": c.jti,
            "token_type": "Bearer",
            "token_use": "access_token",
        })),
        Err(access::Rejected::Port(e)) => Err(e.into()),
        Err(access::Rejected::Invalid(_)) => Ok(inactive),
    }
}

fn meant_for(c: &access::AccessClaims, client_id: &str) -> bool {
    c.client_id == client_id
        || match &c.aud {
            Value::String(a) => a == client_id,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(client_id)),
            _ => false,
        }
}
