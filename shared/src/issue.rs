//! Issuing tokens to a user's grant: ID tokens (OIDC Core §2, §3.1.3.6, §3.3.2.11), access
//! tokens (RFC 9068) and the scope-dependent user claims (OIDC Core §5.4).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::config::Settings;
use crate::crypto::{b64url, sha256};
use crate::error::OAuthError;
use crate::jose::{self, Alg};
use crate::ports::{Ports, UnixTime};
use crate::user::User;
use crate::{keys, token};

/// The scopes whose claims edgeid can supply (OIDC Core §5.4), advertised in discovery.
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "offline",
    "stackspin_roles",
    "groups",
];

/// Claims that need the database: `stackspin_roles` (the user's roles on the client's app)
/// and `groups` (`admin` for global admins, `<app>:<role>` for every role).
pub async fn role_claims(
    sql: &impl crate::ports::Sql,
    user: &User,
    client_id: &str,
    scope: &[&str],
) -> Result<Map<String, Value>, crate::ports::PortError> {
    let mut m = Map::new();
    if scope.contains(&"stackspin_roles") {
        let roles = match crate::app::access(sql, user, client_id).await? {
            crate::app::Access::Roles { roles, .. } => roles,
            crate::app::Access::NoApp | crate::app::Access::Denied { .. } => Vec::new(),
        };
        m.insert("stackspin_roles".into(), Value::from(roles));
    }
    if scope.contains(&"groups") {
        m.insert(
            "groups".into(),
            Value::from(crate::app::groups(sql, user).await?),
        );
    }
    Ok(m)
}

/// Does this scope grant refresh tokens? `offline_access` (OIDC Core §11) and `offline`,
/// the spelling the replaced server also accepted.
pub fn is_offline(scope: &str) -> bool {
    scope == "offline_access" || scope == "offline"
}

/// Claims released for `scope` (OIDC Core §5.4): `profile` → name, given_name, family_name,
/// preferred_username, updated_at; `email` → email, email_verified. Empty values are omitted
/// (§5.3.2: "If a Claim is not returned, that Claim Name SHOULD be omitted").
pub fn user_claims(user: &User, scope: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    };
    if scope.contains(&"profile") {
        put("name", &user.name);
        put("given_name", &user.given_name);
        put("family_name", &user.family_name);
        put("preferred_username", &user.username);
    }
    if scope.contains(&"email") {
        put("email", &user.email);
    }
    if scope.contains(&"profile") {
        m.insert("updated_at".into(), Value::from(user.updated_at));
    }
    if scope.contains(&"email") {
        m.insert("email_verified".into(), Value::Bool(user.email_verified));
    }
    m
}

/// OIDC Core §3.1.3.6 / §3.3.2.11: `at_hash` and `c_hash` are the base64url of the left half
/// of the hash the ID token's alg uses (SHA-256 for both RS256 and ES256).
pub fn half_hash(value: &str) -> String {
    b64url(&sha256(value.as_bytes())[..16])
}

/// What an ID token says beyond the fixed claims.
#[derive(Debug, Default)]
pub struct IdTokenParts<'a> {
    pub nonce: Option<&'a str>,
    pub auth_time: UnixTime,
    pub amr: &'a [String],
    pub sid: &'a str,
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    auth_time: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    azp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c_hash: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    sid: &'a str,
    #[serde(flatten)]
    user: Map<String, Value>,
}

/// The ID token's signing algorithm: the client's `id_token_signed_response_alg` (RS256 by
/// default, OIDC Core §2 / Registration §2).
pub fn id_token_alg(client: &Client) -> Alg {
    client.id_token_signed_response_alg
}

/// Signs an ID token for `user` (OIDC Core §2). The user's scope claims go in too: relying
/// parties such as oauth2-proxy read `email` from the ID token.
#[allow(clippy::too_many_arguments)]
pub async fn id_token<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    user: &User,
    scope: &[&str],
    parts: IdTokenParts<'_>,
) -> Result<String, OAuthError> {
    let key = keys::current(ports, now, id_token_alg(client)).await?;
    let claims = IdTokenClaims {
        iss: settings.issuer.as_str(),
        sub: &user.id,
        aud: &client.client_id,
        exp: now + settings.id_token_ttl,
        iat: now,
        auth_time: parts.auth_time,
        nonce: parts.nonce,
        azp: &client.client_id,
        at_hash: parts.access_token.map(half_hash),
        c_hash: parts.code.map(half_hash),
        amr: parts.amr,
        sid: parts.sid,
        user: {
            let mut m = user_claims(user, scope);
            m.extend(role_claims(ports.sql(), user, &client.client_id, scope).await?);
            m
        },
    };
    Ok(jose::sign_jwt(ports, &key, "JWT", &claims).await?)
}

/// An RFC 9068 access token for a user's grant; `gid` ties it to the grant for revocation.
pub async fn access_token<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    user_id: &str,
    scope: &[&str],
    gid: &str,
) -> Result<token::TokenResponse, OAuthError> {
    let audience = if client.audience.is_empty() {
        vec![client.client_id.clone()]
    } else {
        client.audience.clone()
    };
    token::issue_access_token(
        ports,
        settings,
        now,
        client,
        user_id,
        token::Grant {
            scope: scope.iter().map(|s| (*s).to_owned()).collect(),
            audience,
        },
        Some(gid),
    )
    .await
}
