//! Instance configuration, read from the [`Config`] port once per request.

use crate::OAuthError;
use crate::crypto::Kek;
use crate::ports::Config;

/// Names of the variables every host provides (Spin variables, Worker vars/secrets, CLI).
pub mod var {
    /// The issuer identifier (OIDC Discovery 1.0 §3 `issuer`): `https://` URL without query or
    /// fragment; `http://` only for loopback development.
    pub const ISSUER: &str = "issuer";
    /// The admin API bearer token (secret).
    pub const ADMIN_TOKEN: &str = "admin_token";
    /// Alternative to `admin_token`: its SHA-256 digest (hex), for hosts that keep no plaintext.
    pub const ADMIN_TOKEN_SHA256: &str = "admin_token_sha256";
    /// base64url of 32 random bytes sealing private signing keys at rest (secret).
    pub const KEY_ENCRYPTION_KEY: &str = "key_encryption_key";
    /// Access-token lifetime in seconds (default 900).
    pub const ACCESS_TOKEN_TTL: &str = "access_token_ttl";
    /// ID-token lifetime in seconds (default 3600).
    pub const ID_TOKEN_TTL: &str = "id_token_ttl";
    /// Refresh-token lifetime in seconds (default 30 days); each rotation starts a new one.
    pub const REFRESH_TOKEN_TTL: &str = "refresh_token_ttl";
    /// Browser-session lifetime in seconds (default 7 days).
    pub const SESSION_TTL: &str = "session_ttl";
    /// The name shown on the login and consent pages (default "edgeid").
    pub const INSTANCE_NAME: &str = "instance_name";
    /// An https URL of a logo shown on every page (optional).
    pub const LOGO_URL: &str = "logo_url";
    /// The accent colour of buttons and focus rings, `#rrggbb` (optional).
    pub const ACCENT_COLOR: &str = "accent_color";
    /// Reverse proxies whose forwarding headers are believed: CIDR blocks separated by commas
    /// or spaces (`10.0.0.0/8, fd00::/8`). Empty (the default): the socket peer is the client,
    /// and `Forwarded` / `X-Forwarded-For` are ignored ([`crate::throttle::address`]). Read by
    /// the native and Spin hosts; Cloudflare's edge sets `CF-Connecting-IP` itself.
    pub const TRUSTED_PROXIES: &str = "trusted_proxies";
}

pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 900;
pub const DEFAULT_ID_TOKEN_TTL: i64 = 3600;
pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 30 * 86_400;
pub const DEFAULT_SESSION_TTL: i64 = 7 * 86_400;
/// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
pub const CODE_TTL: i64 = 600;
/// How long a pending authorization request stays usable between authorize and login.
pub const PENDING_REQUEST_TTL: i64 = 1800;

/// A parsed issuer identifier: no trailing slash, so `{issuer}/oauth2/token` is well formed and
/// `iss` matches the discovery document byte for byte (OIDC Discovery 1.0 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(raw: &str) -> Result<Issuer, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("issuer {raw:?}: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "issuer {raw:?} must be an https URL (http only on loopback)"
                ));
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("issuer {raw:?} must not have a query or fragment"));
        }
        Ok(Issuer(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An absolute endpoint URL under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// Cookies carry `Secure` except on a plain-http loopback issuer (local development),
    /// where a browser would drop them.
    pub fn secure_cookies(&self) -> bool {
        self.0.starts_with("https://")
    }
}

/// What the flows need to know about the instance.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: Issuer,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub session_ttl: i64,
    pub instance_name: String,
    /// Validated: an https URL.
    pub logo_url: Option<String>,
    /// Validated: `#rrggbb`.
    pub accent_color: Option<String>,
}

impl Settings {
    pub fn load(config: &impl Config) -> Result<Settings, OAuthError> {
        let issuer = config
            .var(var::ISSUER)
            .ok_or_else(|| OAuthError::server("variable 'issuer' is not set"))?;
        let issuer = Issuer::parse(&issuer).map_err(OAuthError::server)?;
        Ok(Settings {
            issuer,
            access_token_ttl: seconds(config, var::ACCESS_TOKEN_TTL, DEFAULT_ACCESS_TOKEN_TTL)?,
            id_token_ttl: seconds(config, var::ID_TOKEN_TTL, DEFAULT_ID_TOKEN_TTL)?,
            refresh_token_ttl: seconds(config, var::REFRESH_TOKEN_TTL, DEFAULT_REFRESH_TOKEN_TTL)?,
            session_ttl: seconds(config, var::SESSION_TTL, DEFAULT_SESSION_TTL)?,
            instance_name: config
                .var(var::INSTANCE_NAME)
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "edgeid".to_owned()),
            // Invalid values are ignored rather than fatal: branding never stops a sign-in.
            logo_url: config
                .var(var::LOGO_URL)
                .map(|u| u.trim().to_owned())
                .filter(|u| url::Url::parse(u).is_ok_and(|p| p.scheme() == "https")),
            accent_color: config
                .var(var::ACCENT_COLOR)
                .map(|c| c.trim().to_owned())
                .filter(|c| {
                    c.len() == 7
                        && c.starts_with('#')
                        && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
                }),
        })
    }

    /// How long a retired key must stay published: the longest lifetime of anything it signed.
    pub fn longest_token_ttl(&self) -> i64 {
        self.access_token_ttl.max(self.id_token_ttl)
    }
}

fn seconds(config: &impl Config, name: &str, default: i64) -> Result<i64, OAuthError> {
    match config.var(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=366 * 86_400).contains(&n) => Ok(n),
            _ => Err(OAuthError::server(format!(
                "variable '{name}' must be seconds, got {v:?}"
            ))),
        },
    }
}

/// The key-encryption key, read only where private keys are sealed or opened.
pub fn kek(config: &impl Config) -> Result<Kek, OAuthError> {
    let raw = config
        .var(var::KEY_ENCRYPTION_KEY)
        .ok_or_else(|| OAuthError::server("variable 'key_encryption_key' is not set"))?;
    Kek::parse(&raw).map_err(OAuthError::server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_drops_trailing_slash_and_refuses_plain_http_off_loopback() {
        assert_eq!(
            Issuer::parse("https://id.example.com/").unwrap().as_str(),
            "https://id.example.com"
        );
        assert_eq!(
            Issuer::parse("http://127.0.0.1:3000").unwrap().as_str(),
            "http://127.0.0.1:3000"
        );
        assert!(Issuer::parse("http://id.example.com").is_err());
        assert!(Issuer::parse("https://id.example.com/?a=b").is_err());
    }
}
