//! Accepting edgeid's own access tokens where the provider itself is the resource server
//! (userinfo, introspection): RFC 9068 §4 validation plus revocation (DESIGN.md: "revocation
//! checked where the provider itself accepts them").

use serde::Deserialize;

use crate::config::Settings;
use crate::grant;
use crate::jose::{self, Alg};
use crate::ports::{PortError, Ports, UnixTime};

/// The claims of a valid access token.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub aud: serde_json::Value,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub gid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.split(' ').filter(|s| !s.is_empty()).collect()
    }
}

/// Why a token is not accepted; for logs only (RFC 6750 §3.1 answers `invalid_token`).
#[derive(Debug)]
pub enum Rejected {
    Invalid(String),
    Port(PortError),
}

impl From<PortError> for Rejected {
    fn from(e: PortError) -> Self {
        Rejected::Port(e)
    }
}

/// RFC 9068 §4: `typ` is `at+jwt`, the signature verifies with one of our published ES256
/// keys, `iss` is ours, `exp` is in the future; then neither the token (`jti`) nor its grant
/// (`gid`) has been revoked.
pub async fn verify<P: Ports>(
    ports: &P,
    settings: &Settings,
    token: &str,
    now: UnixTime,
) -> Result<AccessClaims, Rejected> {
    if token.len() > 4096 {
        return Err(Rejected::Invalid("token too long".into()));
    }
    let keys = crate::keys::published(ports.sql(), now).await?;
    let v = jose::verify(token, &keys).map_err(Rejected::Invalid)?;
    if v.alg != Alg::ES256 || v.typ.as_deref() != Some("at+jwt") {
        return Err(Rejected::Invalid("not an access token".into()));
    }
    let claims: AccessClaims =
        serde_json::from_value(v.claims).map_err(|e| Rejected::Invalid(format!("claims: {e}")))?;
    if claims.iss != settings.issuer.as_str() {
        return Err(Rejected::Invalid("foreign issuer".into()));
    }
    if claims.exp <= now {
        return Err(Rejected::Invalid("expired".into()));
    }
    if grant::access_token_revoked(ports.sql(), &claims.jti).await? {
        return Err(Rejected::Invalid("revoked".into()));
    }
    if let Some(gid) = &claims.gid {
        match grant::load_grant(ports.sql(), gid).await? {
            Some((_, false)) => {}
            _ => return Err(Rejected::Invalid("grant revoked".into())),
        }
    }
    Ok(claims)
}
