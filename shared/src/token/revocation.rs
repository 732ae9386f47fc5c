//! Token revocation (RFC 7009): `POST /oauth2/revoke`, client-authenticated.
//!
//! A refresh token revokes its whole grant (§2.1: "If the token passed to the request is a
//! refresh token ... the authorization server ... SHOULD also invalidate all access tokens
//! based on the same authorization grant"); an access token is revoked by its `jti`.
//! Unknown, invalid or foreign tokens get 200 as well (§2.2), so the answer reveals nothing.

use http::StatusCode;

use crate::config::Settings;
use crate::error::OAuthError;
use crate::{Ports, Request, Response, access, grant, web};

pub async fn handle<P: Ports>(ports: &P, req: &Request) -> Response {
    match revoke(ports, req).await {
        Ok(()) => {
            let mut resp = Response::new(Vec::new());
            *resp.status_mut() = StatusCode::OK;
            web::with_header(resp, http::header::CACHE_CONTROL, "no-store")
        }
        Err(e) => e.into_json_response(),
    }
}

async fn revoke<P: Ports>(ports: &P, req: &Request) -> Result<(), OAuthError> {
    let (mut form, client) = super::authenticated_form(ports, req).await?;
    let token = form
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("The token parameter is missing."))?;
    let now = ports.now();
    // `token_type_hint` only orders the lookups (§2.1); both are tried.
    if let Some((grant_id, owner)) = grant::refresh_grant(ports.sql(), &token).await? {
        if owner == client.client_id {
            grant::revoke_grant(ports.sql(), &grant_id, now).await?;
        }
        return Ok(());
    }
    let settings = Settings::load(ports)?;
    match access::verify(ports, &settings, &token, now).await {
        Ok(claims) if claims.client_id == client.client_id => {
            grant::revoke_access_token(ports.sql(), &claims.jti, claims.exp).await?;
        }
        Err(access::Rejected::Port(e)) => return Err(e.into()),
        _ => {}
    }
    Ok(())
}
