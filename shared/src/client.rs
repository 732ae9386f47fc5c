//! OAuth 2.0 clients: the registration rules (shared by the admin API, the CLI and the
//! Kubernetes sidecar), their storage, and client authentication at the token endpoint.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::crypto::{digest_eq, random_token, sha256_hex};
use crate::error::{Challenge, ErrorCode, OAuthError};
use crate::jose::Alg;
use crate::ports::{PortErrorKind, Ports, Row, Sql, Statement, UnixTime, Value};
use crate::throttle;

/// Grant types a client may be registered for (RFC 6749 §4, OIDC Core §3.2 implicit).
/// Types implemented by later releases are stored and validated already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    Implicit,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Implicit => "implicit",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::Implicit,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }
}

/// Client authentication methods at the token endpoint (OIDC Core §9, RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client (RFC 6749 §2.1): no secret.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMethod> {
        [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::None,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// `response_type` values (OAuth 2.0 Multiple Response Type Encoding Practices §5), kept in
/// canonical order (`code id_token token`) so comparisons ignore the order a client used.
pub fn normalize_response_type(s: &str) -> Option<String> {
    let mut parts: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
    let rank = |p: &str| match p {
        "code" => Some(0),
        "id_token" => Some(1),
        "token" => Some(2),
        _ => None,
    };
    if parts.is_empty() || parts.iter().any(|p| rank(p).is_none()) {
        return None;
    }
    parts.sort_by_key(|p| rank(p));
    parts.dedup();
    Some(parts.join(" "))
}

/// Minimum client-secret length: the one the replaced OAuth server enforced, so existing
/// Kubernetes Secrets keep working; generated secrets carry 256 bits.
pub const MIN_SECRET_LEN: usize = 6;
pub const MAX_SECRET_LEN: usize = 512;

/// A client as registered through the admin API (Hydra's field names, snake_case).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_name: String,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub audience: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub skip_consent: bool,
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub owner: String,
    pub metadata: Option<serde_json::Value>,
}

/// A validated registration. Built only by [`ClientInput::validate`] (or read back from
/// storage that only ever received validated records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scope: String,
    pub audience: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub skip_consent: bool,
    pub id_token_signed_response_alg: Alg,
    pub owner: String,
    pub metadata: serde_json::Value,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    #[serde(skip)]
    pub client_secret_sha256: Option<String>,
}

/// Why a registration was refused; rendered as the admin API's `invalid_client_metadata`
/// (RFC 7591 §3.2.2 vocabulary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidClient(pub String);

/// What a validated input says about the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// Public client: no secret, any stored one is dropped.
    None,
    /// Keep the stored secret (update without `client_secret`).
    Keep,
    /// Store this secret's digest; the plaintext is returned once when it was generated.
    Set { plaintext: String, generated: bool },
}

impl ClientInput {
    /// Applies the registration rules. `client_id` and `client_secret` are generated when
    /// absent (`existing` is the stored record on update: its id wins, its secret is kept).
    pub fn validate(
        self,
        rng: &impl crate::ports::Rng,
        now: UnixTime,
        existing: Option<&Client>,
    ) -> Result<(Client, SecretChange), InvalidClient> {
        let bad = |m: String| Err(InvalidClient(m));
        let client_id = match (existing, self.client_id) {
            (Some(e), Some(id)) if id != e.client_id => {
                return bad("client_id cannot be changed".into());
            }
            (Some(e), _) => e.client_id.clone(),
            (None, Some(id)) => validate_client_id(&id)?,
            (None, None) => {
                random_uuid(rng).map_err(|e| InvalidClient(format!("random source: {e}")))?
            }
        };
        let method = match self.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::default(),
            Some(m) => match AuthMethod::parse(m) {
                Some(m) => m,
                None => return bad(format!("token_endpoint_auth_method {m:?} is not supported")),
            },
        };
        let secret = match (method, self.client_secret) {
            (AuthMethod::None, Some(_)) => {
                return bad("a client with token_endpoint_auth_method none has no secret".into());
            }
            (AuthMethod::None, None) => SecretChange::None,
            (_, Some(s)) => {
                if s.len() < MIN_SECRET_LEN || s.len() > MAX_SECRET_LEN {
                    return bad(format!(
                        "client_secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"
                    ));
                }
                if !s.chars().all(|c| matches!(c, ' '..='~')) {
                    return bad("client_secret must be printable ASCII".into());
                }
                SecretChange::Set {
                    plaintext: s,
                    generated: false,
                }
            }
            (_, None) if existing.is_some_and(|e| e.client_secret_sha256.is_some()) => {
                SecretChange::Keep
            }
            (_, None) => SecretChange::Set {
                plaintext: random_token(rng, 32)
                    .map_err(|e| InvalidClient(format!("random source: {e}")))?,
                generated: true,
            },
        };

        let mut grant_types = BTreeSet::new();
        for g in self
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into()])
        {
            match GrantType::parse(&g) {
                Some(g) => grant_types.insert(g),
                None => return bad(format!("grant_type {g:?} is not supported")),
            };
        }
        if method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
            return bad("a public client (auth method none) cannot use client_credentials".into());
        }
        let mut response_types = Vec::new();
        for r in self.response_types.unwrap_or_else(|| vec!["code".into()]) {
            match normalize_response_type(&r) {
                Some(r) if !response_types.contains(&r) => response_types.push(r),
                Some(_) => {}
                None => return bad(format!("response_type {r:?} is not supported")),
            }
        }
        let redirect_uris = validate_uris("redirect_uris", self.redirect_uris)?;
        let post_logout_redirect_uris =
            validate_uris("post_logout_redirect_uris", self.post_logout_redirect_uris)?;
        let needs_redirect = grant_types.contains(&GrantType::AuthorizationCode)
            || grant_types.contains(&GrantType::Implicit);
        if needs_redirect && redirect_uris.is_empty() {
            return bad(
                "authorization_code and implicit clients need at least one redirect_uri".into(),
            );
        }
        let scope = validate_scope(&self.scope)?;
        for a in &self.audience {
            validate_audience(a)?;
        }
        let alg = match self.id_token_signed_response_alg.as_deref() {
            None => Alg::RS256,
            Some(a) => match Alg::parse(a) {
                Some(a) => a,
                None => {
                    return bad(format!(
                        "id_token_signed_response_alg {a:?} is not supported"
                    ));
                }
            },
        };
        if self.client_name.len() > 1024 || self.owner.len() > 1024 {
            return bad("client_name and owner are limited to 1024 characters".into());
        }
        let metadata = match self.metadata {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(m @ serde_json::Value::Object(_)) => m,
            Some(_) => return bad("metadata must be a JSON object".into()),
        };
        let client = Client {
            client_id,
            client_name: self.client_name,
            grant_types: grant_types.into_iter().collect(),
            response_types,
            redirect_uris,
            post_logout_redirect_uris,
            scope,
            audience: dedup(self.audience),
            token_endpoint_auth_method: method,
            skip_consent: self.skip_consent,
            id_token_signed_response_alg: alg,
            owner: self.owner,
            metadata,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
            client_secret_sha256: match &secret {
                SecretChange::None => None,
                SecretChange::Keep => existing.and_then(|e| e.client_secret_sha256.clone()),
                SecretChange::Set { plaintext, .. } => Some(sha256_hex(plaintext.as_bytes())),
            },
        };
        Ok((client, secret))
    }
}

/// Distinct values in their first order; linear (a `HashSet` of what was kept).
fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    v.into_iter().filter(|s| seen.insert(s.clone())).collect()
}

/// An `audience` value: an absolute URI without a fragment (RFC 8707 §2: a resource
/// indicator "MUST be an absolute URI ... MUST NOT include a fragment component"), at most
/// 1024 characters. It becomes the access token's `aud` (RFC 9068 §3), which resource servers
/// compare with their own identifier; a relative or bare name could equal anything.
pub fn validate_audience(a: &str) -> Result<(), InvalidClient> {
    let refuse = || {
        Err(InvalidClient(format!(
            "audience {:?} must be an absolute URI (with a scheme, e.g. https://api.example.org) \
             without a fragment",
            crate::web::printable(a)
        )))
    };
    if a.is_empty() || a.len() > 1024 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse();
    }
    match url::Url::parse(a) {
        Ok(u) if u.fragment().is_none() => Ok(()),
        _ => refuse(),
    }
}

/// The key under which a `client_id` and a user id (`sub`) are compared: ASCII-lower-cased,
/// without any `urn:uuid:` and without hyphens, so the spellings of one UUID (RFC 9562 §4:
/// hexadecimal is case-insensitive on input; the URN form `urn:uuid:...`; the hyphen-less
/// form many stores use) are one key.
///
/// **Rule: a client_id never names a user.** RFC 9068 §2.2 makes a client-credentials token's
/// `sub` the client's own identifier, and RFC 9068 §5 / RFC 9700 §4.15 warn that a client
/// able to choose an id equal to a user's `sub` gets tokens a resource server takes for that
/// user's. Client ids are chosen freely (imported Hydra clients keep their ids, often UUIDs;
/// Kubernetes Secrets name them) and imported users keep their Kratos UUID as `sub`, so the
/// format alone cannot tell them apart. Instead the two id spaces are kept disjoint under this
/// key, checked atomically on both sides: [`insert`] refuses a client whose key equals a
/// user's, [`crate::user::insert`] a user whose key equals a client's (each check inside its
/// one INSERT statement). Given that, a token with `sub == client_id` (and no `gid`) is a
/// client's own token and every other token is a user's; userinfo answers only tokens of a
/// user's grant.
pub fn principal_key(id: &str) -> String {
    id.to_ascii_lowercase()
        .replace("urn:uuid:", "")
        .replace('-', "")
}

/// `client_id`: RFC 6749 Appendix A.1 allows any VSCHAR; edgeid narrows it to characters that
/// survive URLs, Kubernetes names and logs unescaped. That it names no user is checked where
/// it is stored ([`insert`], [`principal_key`]).
pub fn validate_client_id(id: &str) -> Result<String, InvalidClient> {
    if id == CONSOLE_CLIENT_ID {
        return Err(InvalidClient(format!(
            "client_id {CONSOLE_CLIENT_ID} is reserved for edgeid's own console"
        )));
    }
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-' | ':' | '@'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(InvalidClient(
            "client_id must be 1-255 characters of A-Z a-z 0-9 . _ ~ - : @".into(),
        ))
    }
}

/// Redirection endpoints (RFC 6749 §3.1.2): absolute, no fragment. `https` anywhere, `http`
/// only on loopback (RFC 8252 §7.3), private-use schemes for native apps (RFC 8252 §7.1).
pub fn validate_uris(field: &str, uris: Vec<String>) -> Result<Vec<String>, InvalidClient> {
    let mut out = Vec::with_capacity(uris.len());
    for raw in uris {
        // A longer one could never be sent back in an authorization request.
        if raw.len() > crate::web::limits::MAX_REDIRECT_URI_BYTES {
            return Err(InvalidClient(format!(
                "{field}: a URI is longer than {} bytes",
                crate::web::limits::MAX_REDIRECT_URI_BYTES
            )));
        }
        let url = url::Url::parse(&raw).map_err(|_| {
            InvalidClient(format!(
                "{field}: {:?} is not an absolute URI",
                crate::web::printable(&raw)
            ))
        })?;
        if url.fragment().is_some() {
            return Err(InvalidClient(format!(
                "{field}: {raw:?} must not contain a fragment"
            )));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let ok = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => loopback,
            "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => false,
            s => s.contains('.'),
        };
        if !ok {
            return Err(InvalidClient(format!(
                "{field}: {:?} must be https (http only on loopback) or a private-use scheme",
                crate::web::printable(&raw)
            )));
        }
        out.push(raw);
    }
    Ok(dedup(out))
}

/// A scope string (RFC 6749 §3.3): space-delimited tokens of NQCHAR.
pub fn validate_scope(scope: &str) -> Result<String, InvalidClient> {
    let tokens = scope_tokens_within(scope, MAX_REGISTERED_SCOPE_TOKENS)
        .map_err(|e| InvalidClient(format!("scope: {} (RFC 6749 §3.3)", e.description())))?;
    Ok(tokens.join(" "))
}

/// A client may register more scope tokens than one request may carry.
const MAX_REGISTERED_SCOPE_TOKENS: usize = 1024;

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// A token with a character outside NQCHAR (RFC 6749 §3.3).
    Malformed(String),
    /// More distinct-or-not tokens than the cap.
    TooMany(usize),
    /// A token longer than [`crate::web::limits::MAX_SCOPE_TOKEN_BYTES`].
    TooLong,
}

impl ScopeError {
    /// A public description (RFC 6749 §5.2 `error_description` characters only).
    pub fn description(&self) -> String {
        match self {
            ScopeError::Malformed(t) => {
                format!("The scope '{}' is malformed.", crate::web::printable(t))
            }
            ScopeError::TooMany(max) => format!("The scope has more than {max} values."),
            ScopeError::TooLong => format!(
                "A scope value is longer than {} bytes.",
                crate::web::limits::MAX_SCOPE_TOKEN_BYTES
            ),
        }
    }
}

/// Splits a requested scope into distinct tokens in their first order: at most
/// [`crate::web::limits::MAX_SCOPE_TOKENS`] tokens (counted before de-duplication), each at
/// most [`crate::web::limits::MAX_SCOPE_TOKEN_BYTES`]. Linear in the input (issue 9: the old
/// quadratic de-duplication made 16,000 tokens cost 0.3 s).
pub fn scope_tokens(scope: &str) -> Result<Vec<String>, ScopeError> {
    scope_tokens_within(scope, crate::web::limits::MAX_SCOPE_TOKENS)
}

pub(crate) fn scope_tokens_within(
    scope: &str,
    max_tokens: usize,
) -> Result<Vec<String>, ScopeError> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for (i, t) in scope.split(' ').filter(|t| !t.is_empty()).enumerate() {
        if i >= max_tokens {
            return Err(ScopeError::TooMany(max_tokens));
        }
        if t.len() > crate::web::limits::MAX_SCOPE_TOKEN_BYTES {
            return Err(ScopeError::TooLong);
        }
        if !t
            .chars()
            .all(|c| matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        {
            return Err(ScopeError::Malformed(t.to_owned()));
        }
        if seen.insert(t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// A random UUID v4 (RFC 9562 §5.4), the shape of generated client ids.
pub fn random_uuid(rng: &impl crate::ports::Rng) -> Result<String, crate::ports::PortError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

// ---- storage ----

fn json_list<T: serde::de::DeserializeOwned>(
    row: &Row,
    i: usize,
) -> Result<Vec<T>, crate::ports::PortError> {
    serde_json::from_str(row.text(i)?)
        .map_err(|e| crate::ports::PortError::other(format!("column {i}: {e}")))
}

fn from_row(row: &Row) -> Result<Client, crate::ports::PortError> {
    let bad = |what: &str| crate::ports::PortError::other(format!("clients: bad {what}"));
    Ok(Client {
        client_id: row.text(0)?.to_owned(),
        client_secret_sha256: row.opt_text(1)?.map(str::to_owned),
        client_name: row.text(2)?.to_owned(),
        grant_types: json_list(row, 3)?,
        response_types: json_list(row, 4)?,
        redirect_uris: json_list(row, 5)?,
        post_logout_redirect_uris: json_list(row, 6)?,
        scope: row.text(7)?.to_owned(),
        audience: json_list(row, 8)?,
        token_endpoint_auth_method: AuthMethod::parse(row.text(9)?)
            .ok_or_else(|| bad("auth method"))?,
        skip_consent: row.int(10)? != 0,
        id_token_signed_response_alg: Alg::parse(row.text(11)?).ok_or_else(|| bad("alg"))?,
        owner: row.text(12)?.to_owned(),
        metadata: serde_json::from_str(row.text(13)?).map_err(|_| bad("metadata"))?,
        created_at: row.int(14)?,
        updated_at: row.int(15)?,
    })
}

fn to_params(c: &Client) -> Vec<Value> {
    vec![
        c.client_id.as_str().into(),
        c.client_secret_sha256.clone().into(),
        c.client_name.as_str().into(),
        json_text(&c.grant_types),
        json_text(&c.response_types),
        json_text(&c.redirect_uris),
        json_text(&c.post_logout_redirect_uris),
        c.scope.as_str().into(),
        json_text(&c.audience),
        c.token_endpoint_auth_method.as_str().into(),
        c.skip_consent.into(),
        c.id_token_signed_response_alg.as_str().into(),
        c.owner.as_str().into(),
        Value::Text(c.metadata.to_string()),
        c.created_at.into(),
        c.updated_at.into(),
    ]
}

fn json_text<T: Serialize>(v: &T) -> Value {
    // Lists of strings and unit enums always serialize.
    Value::Text(serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
}

/// Outcome of a write that may collide with an existing row.
#[derive(Debug)]
pub enum WriteError {
    Conflict,
    NotFound,
    /// The `client_id` is (a spelling of) a user's id ([`principal_key`]).
    IdIsAUser,
    Storage(crate::ports::PortError),
}

impl From<crate::ports::PortError> for WriteError {
    fn from(e: crate::ports::PortError) -> Self {
        if e.kind == PortErrorKind::Conflict {
            WriteError::Conflict
        } else {
            WriteError::Storage(e)
        }
    }
}

/// KV cache of client records for the token endpoint (DESIGN.md: client metadata is a KV
/// cache). Short-lived, and dropped by the admin API on every update or delete.
pub const CACHE_TTL: i64 = 30;

fn cache_key(client_id: &str) -> String {
    format!("client:v1:{client_id}")
}

#[derive(Serialize, Deserialize)]
struct CachedClient {
    client: Client,
    secret_sha256: Option<String>,
}

/// The console's own client (issue 11; DESIGN.md, "The console"): the admin console and the
/// launcher sign in through edgeid's authorization endpoint like any relying party, so the
/// login page, the TOTP step, throttling and the one authorization decision apply unchanged.
/// It is built in, not stored: nothing (admin API, import, sidecar) can register, alter or
/// delete it, and [`validate_client_id`] refuses its id. A public client (RFC 6749 §2.1) with
/// PKCE; its code is redeemed by the admin function itself, never at the token endpoint.
pub const CONSOLE_CLIENT_ID: &str = "edgeid-console";
/// Where the console client's codes are delivered (its one registered redirect URI).
pub const CONSOLE_CALLBACK_PATH: &str = "/admin/console/callback";

/// The built-in console client of the instance at `issuer`.
pub fn console(issuer: &crate::config::Issuer) -> Client {
    Client {
        client_id: CONSOLE_CLIENT_ID.to_owned(),
        client_name: "Console".to_owned(),
        grant_types: vec![GrantType::AuthorizationCode],
        response_types: vec!["code".to_owned()],
        redirect_uris: vec![issuer.endpoint(CONSOLE_CALLBACK_PATH)],
        post_logout_redirect_uris: vec![issuer.endpoint("/")],
        scope: "openid".to_owned(),
        audience: Vec::new(),
        token_endpoint_auth_method: AuthMethod::None,
        skip_consent: true,
        id_token_signed_response_alg: Alg::ES256,
        owner: "edgeid".to_owned(),
        metadata: serde_json::Value::Object(Default::default()),
        created_at: 0,
        updated_at: 0,
        client_secret_sha256: None,
    }
}

/// The `owner` of the clients the console creates. The Kubernetes sidecar never touches
/// them: it writes over a stored client only when the owner is its own resource's
/// (`<name>/<namespace>`), and prunes only clients with that owner; it reports "belongs to
/// console" instead. Likewise the Hydra import writes only over a client of the same owner.
pub const CONSOLE_OWNER: &str = "console";

/// Who manages a client, read from its `owner` (issue 11: the console changes only clients
/// no one else manages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// The built-in console client ([`console`]): not stored, never changed.
    BuiltIn,
    /// Created in the console ([`CONSOLE_OWNER`]).
    Console,
    /// Created through the admin API or CLI without an owner: nobody else claims it.
    Unowned,
    /// The Kubernetes sidecar (or hydra-maester before it): `owner` is `<name>/<namespace>`
    /// of the `OAuth2Client` resource (`infra/sidecar/src/crd.rs`, `OAuth2Client::owner`).
    Kubernetes { namespace: String, name: String },
    /// Another tool's owner string.
    Other(String),
}

impl Manager {
    pub fn of(c: &Client) -> Manager {
        if c.client_id == CONSOLE_CLIENT_ID {
            return Manager::BuiltIn;
        }
        match c.owner.as_str() {
            "" => Manager::Unowned,
            CONSOLE_OWNER => Manager::Console,
            owner => match owner.split_once('/') {
                Some((name, namespace)) if is_k8s_name(name) && is_k8s_name(namespace) => {
                    Manager::Kubernetes {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                    }
                }
                _ => Manager::Other(owner.to_owned()),
            },
        }
    }

    /// Whether the console may edit or delete the client: only when it made it or nobody
    /// claims it; the sidecar would undo a change to its clients at its next sync.
    pub fn console_may_change(&self) -> bool {
        matches!(self, Manager::Console | Manager::Unowned)
    }
}

/// A Kubernetes object name or namespace (RFC 1123 subdomain: lower-case alphanumerics, `-`
/// and `.`, at most 253 characters).
fn is_k8s_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Loads a client through the KV cache (the built-in console client without either).
pub async fn load_cached<P: Ports>(
    ports: &P,
    client_id: &str,
    now: UnixTime,
) -> Result<Option<Client>, crate::ports::PortError> {
    if client_id == CONSOLE_CLIENT_ID {
        let issuer = ports
            .var(crate::config::var::ISSUER)
            .and_then(|i| crate::config::Issuer::parse(&i).ok())
            .ok_or_else(|| crate::ports::PortError::other("variable 'issuer' is not set"))?;
        return Ok(Some(console(&issuer)));
    }
    let key = cache_key(client_id);
    if let Some(raw) = crate::cache::get(ports.kv(), &key, now).await
        && let Ok(c) = serde_json::from_slice::<CachedClient>(&raw)
    {
        return Ok(Some(Client {
            client_secret_sha256: c.secret_sha256,
            ..c.client
        }));
    }
    let client = load(ports.sql(), client_id).await?;
    if let Some(c) = &client {
        let entry = CachedClient {
            client: c.clone(),
            secret_sha256: c.client_secret_sha256.clone(),
        };
        if let Ok(raw) = serde_json::to_vec(&entry) {
            crate::cache::put(ports.kv(), &key, now, CACHE_TTL, &raw).await;
        }
    }
    Ok(client)
}

/// Drops a client's cache entry (after an update or delete).
pub async fn invalidate_cached(kv: &impl crate::ports::Kv, client_id: &str) {
    crate::cache::invalidate(kv, &cache_key(client_id)).await;
}

pub async fn load(
    sql: &impl Sql,
    client_id: &str,
) -> Result<Option<Client>, crate::ports::PortError> {
    const Q: &str = "SELECT client_id, client_secret_sha256, client_name, grant_types, \
        response_types, redirect_uris, post_logout_redirect_uris, scope, audience, \
        token_endpoint_auth_method, skip_consent, id_token_signed_response_alg, owner, metadata, \
        created_at, updated_at FROM clients WHERE client_id = ?";
    let rows = sql.query(Statement::new(Q, vec![client_id.into()])).await?;
    rows.first().map(from_row).transpose()
}

/// Lists clients ordered by id, `limit` at a time after `after` (keyset paging).
pub async fn list(
    sql: &impl Sql,
    after: &str,
    limit: i64,
) -> Result<Vec<Client>, crate::ports::PortError> {
    const Q: &str = "SELECT client_id, client_secret_sha256, client_name, grant_types, \
        response_types, redirect_uris, post_logout_redirect_uris, scope, audience, \
        token_endpoint_auth_method, skip_consent, id_token_signed_response_alg, owner, metadata, \
        created_at, updated_at FROM clients WHERE client_id > ? ORDER BY client_id LIMIT ?";
    let rows = sql
        .query(Statement::new(Q, vec![after.into(), limit.into()]))
        .await?;
    rows.iter().map(from_row).collect()
}

/// Stores a new client, unless its id is taken by a client or names a user. The user check
/// is inside the INSERT (one statement: SQLite and D1 run one writer at a time, so a user
/// created concurrently with the same id is seen by one of the two checks); the key
/// expression is the SQL twin of [`principal_key`]. It scans `users` (no index on the
/// expression): client registration is rare and admin-only.
pub async fn insert(sql: &impl Sql, c: &Client) -> Result<(), WriteError> {
    let rows = sql.query(insert_statement(c)).await?;
    if rows.is_empty() {
        return Err(WriteError::IdIsAUser);
    }
    Ok(())
}

/// The statement [`insert`] runs, for a batch (importers): it inserts nothing when the id
/// names a user, so a caller batching it checks [`principal_key`] against the users first.
pub fn insert_statement(c: &Client) -> Statement {
    const Q: &str = "INSERT INTO clients (client_id, client_secret_sha256, client_name, \
        grant_types, response_types, redirect_uris, post_logout_redirect_uris, scope, audience, \
        token_endpoint_auth_method, skip_consent, id_token_signed_response_alg, owner, metadata, \
        created_at, updated_at) \
        SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 \
        WHERE NOT EXISTS (SELECT 1 FROM users \
            WHERE replace(replace(lower(id), 'urn:uuid:', ''), '-', '') = ?17) \
        RETURNING client_id";
    let mut params = to_params(c);
    params.push(principal_key(&c.client_id).into());
    Statement::new(Q, params)
}

pub async fn update(sql: &impl Sql, c: &Client) -> Result<(), WriteError> {
    let rows = sql.query(update_statement(c)).await?;
    if rows.is_empty() {
        Err(WriteError::NotFound)
    } else {
        Ok(())
    }
}

/// The statement [`update`] runs, for a batch (importers).
pub fn update_statement(c: &Client) -> Statement {
    const Q: &str = "UPDATE clients SET client_secret_sha256 = ?2, client_name = ?3, \
        grant_types = ?4, response_types = ?5, redirect_uris = ?6, post_logout_redirect_uris = ?7, \
        scope = ?8, audience = ?9, token_endpoint_auth_method = ?10, skip_consent = ?11, \
        id_token_signed_response_alg = ?12, owner = ?13, metadata = ?14, created_at = ?15, \
        updated_at = ?16 WHERE client_id = ?1 RETURNING client_id";
    Statement::new(Q, to_params(c))
}

/// Deletes a client with everything issued to it, in one batch: its users' remembered
/// consents, its grants (so its access tokens, which name their grant in `gid`, stop being
/// accepted), its codes and refresh tokens. A client registered later under the same id
/// inherits nothing: consent is asked again and no old token works (DESIGN.md: "deleting a
/// client deletes its consents and grants"). `Ok(false)` when there is no such client.
pub async fn delete(sql: &impl Sql, client_id: &str) -> Result<bool, crate::ports::PortError> {
    if load(sql, client_id).await?.is_none() {
        return Ok(false);
    }
    let by_id = |q: &'static str| Statement::new(q, vec![client_id.into()]);
    sql.batch(vec![
        by_id("DELETE FROM authorization_codes WHERE client_id = ?"),
        by_id("DELETE FROM refresh_tokens WHERE client_id = ?"),
        by_id("DELETE FROM grants WHERE client_id = ?"),
        by_id("DELETE FROM consents WHERE client_id = ?"),
        by_id("DELETE FROM clients WHERE client_id = ?"),
    ])
    .await?;
    Ok(true)
}

// ---- authentication at the token endpoint ----

/// The credentials a token-endpoint request presented (RFC 6749 §2.3.1).
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    /// A public client identifying itself with `client_id` only (RFC 6749 §3.2.1).
    PublicId {
        client_id: String,
    },
}

impl Presented {
    fn method(&self) -> AuthMethod {
        match self {
            Presented::Basic { .. } => AuthMethod::ClientSecretBasic,
            Presented::Post { .. } => AuthMethod::ClientSecretPost,
            Presented::PublicId { .. } => AuthMethod::None,
        }
    }

    fn challenge(&self) -> Option<Challenge> {
        matches!(self, Presented::Basic { .. }).then_some(Challenge::Basic)
    }
}

fn invalid_client(challenge: Option<Challenge>) -> OAuthError {
    let e = OAuthError::new(ErrorCode::InvalidClient, "Client authentication failed.");
    match challenge {
        Some(c) => e.with_challenge(c),
        None => e,
    }
}

/// Reads the client's credentials from the `Authorization` header and the form.
///
/// RFC 6749 §2.3: a client "MUST NOT use more than one authentication method in each request";
/// §2.3.1: Basic credentials are form-urlencoded before base64.
pub fn presented(
    authorization: Option<&str>,
    form: &mut crate::web::Form,
) -> Result<Presented, OAuthError> {
    let form_id = form.take("client_id");
    let form_secret = form.take("client_secret");
    if let Some(header) = authorization {
        let basic = || invalid_client(Some(Challenge::Basic));
        let (scheme, value) = header.trim().split_once(' ').ok_or_else(basic)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(basic().with_internal("unsupported Authorization scheme"));
        }
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value.trim())
                .map_err(|_| basic())?;
        let decoded = String::from_utf8(decoded).map_err(|_| basic())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(basic)?;
        let unescape = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (client_id, secret) = (unescape(id), unescape(secret));
        if form_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "The client used more than one authentication method.",
            ));
        }
        if form_id.as_ref().is_some_and(|f| *f != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body does not match the Authorization header.",
            ));
        }
        if client_id.is_empty() {
            return Err(basic());
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    match (form_id, form_secret) {
        (Some(client_id), Some(secret)) => Ok(Presented::Post { client_id, secret }),
        (Some(client_id), None) => Ok(Presented::PublicId { client_id }),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret without client_id.",
        )),
        // No credentials at all: answer with the Basic challenge so the client learns how.
        (None, None) => Err(invalid_client(Some(Challenge::Basic))),
    }
}

/// Authenticates the client: it must exist, use the method it registered, and present the
/// right secret (compared as SHA-256 digests in constant time).
///
/// Throttled per client id (RFC 6749 §2.3.1: the server "MUST protect any endpoint utilizing
/// it against brute force attacks"): every failure of a client that has a secret counts in
/// SQL, and after [`throttle::CLIENT_LOCK_AFTER`] the client is refused for
/// [`throttle::CLIENT_LOCK_SECONDS`] without its secret being looked at, a right one
/// included. The lock is checked from a KV marker so that a successful authentication adds no
/// SQL (trade-off in [`throttle::client_locked`]). Public clients have no secret to guess and
/// are not counted, so nobody can lock them out.
///
/// A locked client is answered `invalid_client` (401, with the challenge), not 429: RFC 6749
/// §5.2 makes `invalid_client` the answer whenever "client authentication failed", which is
/// what the client must learn (its request was not authenticated, and retrying at once will
/// not help), and it is the one error every OAuth client library parses; the description says
/// how long to wait. RFC 6749 defines no rate-limit error code, and `ErrorCode` holds only
/// spec codes.
pub async fn authenticate<P: Ports>(
    ports: &P,
    presented: &Presented,
) -> Result<Client, OAuthError> {
    let (client_id, secret) = match presented {
        Presented::Basic { client_id, secret } | Presented::Post { client_id, secret } => {
            (client_id, Some(secret))
        }
        Presented::PublicId { client_id } => (client_id, None),
    };
    let challenge = presented.challenge();
    let now = ports.now();
    if let Some(wait) = throttle::client_locked(ports.kv(), client_id, now).await {
        return Err(locked(challenge, wait));
    }
    // The console's client exists only for the authorization endpoint: its codes are
    // redeemed by the admin function, so at the token endpoint it is no client at all.
    let client = if client_id == CONSOLE_CLIENT_ID {
        None
    } else {
        load_cached(ports, client_id, now).await?
    };
    let presented_digest = secret.map(|s| sha256_hex(s.as_bytes()));
    let Some(client) = client else {
        // Spend the same comparison on unknown clients so timing does not reveal which exist.
        let _ = digest_eq(presented_digest.as_deref().unwrap_or(""), &"0".repeat(64));
        return Err(invalid_client(challenge).with_internal("unknown client"));
    };
    let failure = if client.token_endpoint_auth_method != presented.method() {
        format!(
            "client registered for {}, used {}",
            client.token_endpoint_auth_method.as_str(),
            presented.method().as_str()
        )
    } else {
        match (&client.client_secret_sha256, presented_digest) {
            (_, None) if client.token_endpoint_auth_method == AuthMethod::None => {
                return Ok(client);
            }
            (Some(stored), Some(given)) if digest_eq(stored, &given) => return Ok(client),
            _ => "wrong client secret".to_owned(),
        }
    };
    if client.token_endpoint_auth_method != AuthMethod::None
        && let Some(wait) = throttle::client_failed(ports, &client.client_id, now).await?
    {
        return Err(locked(challenge, wait).with_internal(failure));
    }
    Err(invalid_client(challenge).with_internal(failure))
}

/// `invalid_client` for a client locked after too many failures (see [`authenticate`]).
fn locked(challenge: Option<Challenge>, wait: i64) -> OAuthError {
    let e = OAuthError::new(
        ErrorCode::InvalidClient,
        format!(
            "Client authentication failed: too many failed attempts for this client. Retry in {wait} seconds."
        ),
    );
    match challenge {
        Some(c) => e.with_challenge(c),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;

    fn input(json: serde_json::Value) -> ClientInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn generates_id_and_secret_and_stores_only_the_digest() {
        let rng = SeededRng::new(3);
        let (c, secret) = input(serde_json::json!({"grant_types": ["client_credentials"]}))
            .validate(&rng, 100, None)
            .unwrap();
        assert_eq!(c.client_id.len(), 36);
        let SecretChange::Set {
            plaintext,
            generated: true,
        } = secret
        else {
            panic!("{secret:?}")
        };
        assert_eq!(
            c.client_secret_sha256,
            Some(sha256_hex(plaintext.as_bytes()))
        );
    }

    #[test]
    fn refuses_what_the_rules_forbid() {
        let rng = SeededRng::new(4);
        for bad in [
            serde_json::json!({"grant_types": ["password"]}),
            serde_json::json!({"grant_types": ["authorization_code"]}),
            serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            serde_json::json!({"grant_types": ["client_credentials"], "client_secret": "short"}),
            serde_json::json!({"redirect_uris": ["http://example.com/cb"]}),
            serde_json::json!({"redirect_uris": ["https://example.com/cb#frag"]}),
            serde_json::json!({"redirect_uris": ["javascript:alert(1)"]}),
            serde_json::json!({"client_id": "bad id", "grant_types": ["client_credentials"]}),
            serde_json::json!({"grant_types": ["client_credentials"], "scope": "a \"b"}),
            serde_json::json!({"grant_types": ["client_credentials"], "response_types": ["code foo"]}),
        ] {
            assert!(input(bad.clone()).validate(&rng, 0, None).is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<ClientInput>(serde_json::json!({"nope": 1})).is_err());
    }

    #[test]
    fn accepts_loopback_http_and_private_use_schemes() {
        let rng = SeededRng::new(5);
        let (c, _) = input(serde_json::json!({
            "redirect_uris": ["http://127.0.0.1:8080/cb", "com.example.app:/cb", "https://rp.example/cb"],
            "response_types": ["id_token code"],
            "scope": "openid  openid profile",
        }))
        .validate(&rng, 0, None)
        .unwrap();
        assert_eq!(c.response_types, vec!["code id_token"]);
        assert_eq!(c.scope, "openid profile");
    }

    #[test]
    fn issue9_audiences_are_absolute_uris_without_fragments() {
        for ok in [
            "https://api.example.org",
            "https://api.example.org/v1?x=1",
            "urn:example:resource",
            "http://localhost:8080/api",
        ] {
            assert!(validate_audience(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "api",
            "/api",
            "//api.example.org",
            "https://api.example.org/#frag",
            "https://api.example.org/ x",
            " https://api.example.org",
        ] {
            assert!(validate_audience(bad).is_err(), "{bad:?}");
        }
        assert!(validate_audience(&format!("https://a.example/{}", "x".repeat(1100))).is_err());
    }

    #[test]
    fn issue9_one_uuid_in_any_spelling_is_one_principal_key() {
        let id = "2be3de96-5386-4040-ada4-78bb70c8a224";
        let key = principal_key(id);
        assert_eq!(key, "2be3de9653864040ada478bb70c8a224");
        for spelling in [
            "2BE3DE96-5386-4040-ADA4-78BB70C8A224",
            "urn:uuid:2be3de96-5386-4040-ada4-78bb70c8a224",
            "URN:UUID:2be3de96-5386-4040-ada4-78bb70c8a224",
            "2be3de9653864040ada478bb70c8a224",
        ] {
            assert_eq!(principal_key(spelling), key, "{spelling}");
        }
        assert_ne!(principal_key("ext-gitlab"), key);
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let mut form = crate::web::Form::default();
        let header = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "my%3Aid:s%2Bcret"
            )
        );
        let p = presented(Some(&header), &mut form).unwrap();
        assert_eq!(
            p,
            Presented::Basic {
                client_id: "my:id".into(),
                secret: "s+cret".into()
            }
        );
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let mut form = crate::web::Form::parse_bytes(b"client_secret=x&client_id=a").unwrap();
        let header = "Basic YTp4";
        let e = presented(Some(header), &mut form).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
