//! The refresh token grant (RFC 6749 §6) with rotation on every use; presenting a rotated
//! token again revokes the whole family (RFC 9700 §4.14.2).

use crate::client::{Client, GrantType};
use crate::config::Settings;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{self, Redeemed};
use crate::issue::{self, IdTokenParts};
use crate::ports::{Ports, Sql as _, UnixTime};
use crate::token::TokenResponse;
use crate::{user, web};

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

pub async fn exchange<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let r = match grant::rotate_refresh(ports.sql(), refresh_token, &client.client_id, now).await? {
        Redeemed::Won(r) => r,
        Redeemed::Replayed { grant_id } => {
            grant::revoke_grant(ports.sql(), &grant_id, now).await?;
            return Err(invalid_grant(
                "The refresh token has already been used; its authorization is now revoked.",
            ));
        }
        Redeemed::Invalid => {
            return Err(invalid_grant(
                "The refresh token is invalid, expired, revoked, or was issued to another client.",
            ));
        }
    };
    let family: Vec<&str> = r.scope.split(' ').filter(|s| !s.is_empty()).collect();
    // RFC 6749 §6: a narrower scope may be requested, never a wider one.
    let granted: Vec<&str> = match scope {
        None => family.clone(),
        Some(s) => {
            let requested: Vec<&str> = s.split(' ').filter(|s| !s.is_empty()).collect();
            if let Some(extra) = requested.iter().find(|s| !family.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!(
                        "The scope '{}' exceeds what was originally granted.",
                        web::printable(extra)
                    ),
                ));
            }
            requested
        }
    };
    // Not re-checking revocation here is deliberate: winning the conditional UPDATE is the
    // decision. A concurrent replay may revoke the grant a moment later, and then revokes
    // what this call issues too (the family is revoked as a whole).
    let (g, _revoked) = grant::load_grant(ports.sql(), &r.grant_id)
        .await?
        .ok_or_else(|| invalid_grant("The refresh token is invalid."))?;
    let user = user::load(ports.sql(), &g.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_grant("The user of this authorization is no longer active."))?;
    let mut resp =
        issue::access_token(ports, settings, now, client, &user.id, &granted, &g.id).await?;
    if client.grant_types.contains(&GrantType::RefreshToken) {
        let (token, stmt) = grant::new_refresh(ports, &r, now, settings.refresh_token_ttl)?;
        ports.sql().query(stmt).await?;
        resp.refresh_token = Some(token);
    }
    // OIDC Core §12.2: an ID token may accompany the refreshed access token; no nonce.
    if granted.contains(&"openid") {
        resp.id_token = Some(
            issue::id_token(
                ports,
                settings,
                now,
                client,
                &user,
                &granted,
                IdTokenParts {
                    nonce: None,
                    auth_time: r.auth_time,
                    amr: &r.amr,
                    sid: &g.sid,
                    access_token: Some(&resp.access_token),
                    code: None,
                },
            )
            .await?,
        );
    }
    Ok(resp)
}
