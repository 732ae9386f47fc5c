//! The refresh token grant (RFC 6749 §6) with rotation on every use; presenting a rotated
//! token again revokes the whole family (RFC 9700 §4.14.2).

use crate::client::Client;
use crate::config::Settings;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{self, Redeemed};
use crate::ports::{Ports, UnixTime};
use crate::token::TokenResponse;
use crate::web;

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
            crate::audit::record_replay(
                ports.sql(),
                now,
                "refresh.reuse",
                &grant_id,
                &client.client_id,
            )
            .await;
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
    let issue = super::ForGrant {
        grant_id: &r.grant_id,
        scope: Some(&granted),
        nonce: None,
        auth_time: r.auth_time,
        amr: &r.amr,
        rotating: true,
    };
    super::issue_for_grant(ports, settings, now, client, issue).await
}
