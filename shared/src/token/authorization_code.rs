//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6,
//! OIDC Core §3.1.3).

use crate::client::Client;
use crate::config::Settings;
use crate::crypto::{b64url, digest_eq, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{self, Redeemed};
use crate::ports::{Ports, UnixTime};
use crate::token::TokenResponse;

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

/// RFC 7636 §4.1: `code_verifier` = 43*128 unreserved characters.
fn verifier_is_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 6749 §4.1.3: `redirect_uri` is "REQUIRED, if the redirect_uri parameter was included
/// in the authorization request ..., and their values MUST be identical."
///
/// A missing one is answered like a different one, `invalid_grant` (§5.2: the grant "does not
/// match the redirection URI used in the authorization request"), as Hydra's fosite and most
/// servers do; the code is spent either way. When the authorization request had none (one
/// registered URI, not OpenID), a token request may still name it, and then it must be one of
/// the client's registered URIs.
fn redirect_uri_matches(
    authorized: Option<&str>,
    presented: Option<&str>,
    client: &Client,
) -> bool {
    match (authorized, presented) {
        (Some(a), Some(p)) => a == p,
        (Some(_), None) => false,
        (None, Some(p)) => client.redirect_uris.iter().any(|r| r == p),
        (None, None) => true,
    }
}

pub async fn exchange<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if code_verifier.is_some_and(|v| !verifier_is_well_formed(v)) {
        return Err(OAuthError::invalid_request(
            "The code_verifier is malformed (RFC 7636 §4.1).",
        ));
    }
    let redeemed = match grant::redeem_code(ports.sql(), code, &client.client_id, now).await? {
        Redeemed::Won(c) => c,
        Redeemed::Replayed { grant_id } => {
            // RFC 6749 §4.1.2: "If an authorization code is used more than once, the
            // authorization server MUST deny the request and SHOULD revoke (when possible) all
            // tokens previously issued based on that authorization code."
            grant::revoke_grant(ports.sql(), &grant_id, now).await?;
            crate::audit::record_replay(
                ports.sql(),
                now,
                "code.replay",
                &grant_id,
                &client.client_id,
            )
            .await;
            return Err(invalid_grant(
                "The authorization code has already been used.",
            ));
        }
        Redeemed::Invalid => {
            return Err(invalid_grant(
                "The authorization code is invalid, expired, or was issued to another client.",
            ));
        }
    };
    if !redirect_uri_matches(redeemed.redirect_uri.as_deref(), redirect_uri, client) {
        return Err(invalid_grant(
            "The redirect_uri does not match the authorization request.",
        ));
    }
    // RFC 7636 §4.6; a verifier without a challenge is refused too (RFC 9700 §4.8.2: PKCE
    // downgrade).
    match (&redeemed.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !digest_eq(&b64url(&sha256(verifier.as_bytes())), challenge) {
                return Err(invalid_grant(
                    "The code_verifier does not match the code_challenge.",
                ));
            }
        }
        (Some(_), None) => {
            return Err(invalid_grant("The code_verifier is missing."));
        }
        (None, Some(_)) => {
            return Err(invalid_grant(
                "A code_verifier was sent but the authorization request had no code_challenge.",
            ));
        }
        (None, None) => {}
    }
    let issue = super::ForGrant {
        grant_id: &redeemed.grant_id,
        scope: None,
        nonce: redeemed.nonce.as_deref(),
        auth_time: redeemed.auth_time,
        amr: &redeemed.amr,
        rotating: false,
    };
    super::issue_for_grant(ports, settings, now, client, issue).await
}
