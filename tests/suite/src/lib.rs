//! The black-box suite's helpers. Every test talks HTTP to `BASE_URL` (set by
//! `cargo xtask test` for each host) with the admin token in `EDGEID_ADMIN_TOKEN`; redirects
//! are never followed and non-2xx statuses are data, not errors.

use std::sync::OnceLock;

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};

pub use serde_json;

pub mod console;
pub mod oidc;
pub mod second_factor;
pub use oidc::*;

pub fn base() -> String {
    if ON_TARGET.get() {
        return target_base().expect("on_target needs TARGET_BASE_URL");
    }
    std::env::var("BASE_URL")
        .expect("BASE_URL is not set: run the suite through `cargo xtask test`")
        .trim_end_matches('/')
        .to_owned()
}

pub fn admin_token() -> String {
    if ON_TARGET.get()
        && let Ok(t) = std::env::var("TARGET_EDGEID_ADMIN_TOKEN")
    {
        return t;
    }
    std::env::var("EDGEID_ADMIN_TOKEN").expect("EDGEID_ADMIN_TOKEN is not set")
}

thread_local! {
    /// Whether this test thread talks to the second host ([`on_target`]).
    static ON_TARGET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The second host of a two-host test (issue 10's round trip: export from `BASE_URL`, import
/// into `TARGET_BASE_URL`), when one is given.
pub fn target_base() -> Option<String> {
    std::env::var("TARGET_BASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// Runs `f` with every helper of this crate talking to `TARGET_BASE_URL` (admin token
/// `TARGET_EDGEID_ADMIN_TOKEN`, else `EDGEID_ADMIN_TOKEN`) instead of `BASE_URL`. Per test
/// thread, so tests running beside it are not affected.
pub fn on_target<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ON_TARGET.set(false);
        }
    }
    ON_TARGET.set(true);
    let _reset = Reset;
    f()
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into()
    })
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn convert(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut resp = resp.expect("the host answers");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(10 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// A request with arbitrary method, headers and raw body.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let url = format!("{}{path}", base());
    let mut builder = ureq::http::Request::builder().method(method).uri(&url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .expect("a valid request");
    convert(agent().run(req))
}

pub fn get(path: &str) -> Resp {
    request("GET", path, &[], None)
}

pub fn admin(method: &str, path: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bearer {}", admin_token());
    let body = body.map(|b| b.to_string());
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    request(
        method,
        &format!("/admin{path}"),
        &headers,
        body.as_deref().map(str::as_bytes),
    )
}

/// A unique id for this test run's objects.
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("OS randomness");
    format!("{prefix}-{}", hex(&b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Registers a client (fields merged over a client_credentials default) and returns its id and
/// secret.
pub fn create_client(overrides: Value) -> (String, String) {
    let id = unique("suite");
    let secret = format!("{}-secret", unique("s"));
    let mut body = json!({
        "client_id": id,
        "client_secret": secret,
        "grant_types": ["client_credentials"],
        "scope": "read write",
    });
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    let resp = admin("POST", "/clients", Some(body.clone()));
    assert_eq!(resp.status, 201, "creating client: {}", resp.text());
    (
        body["client_id"].as_str().unwrap_or_default().to_owned(),
        body["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| -> String { form_encode(s) };
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs a form to the token endpoint with optional Basic credentials.
pub fn token(basic_auth: Option<&str>, form: &str) -> Resp {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(b) = basic_auth {
        headers.push(("authorization", b));
    }
    request("POST", "/oauth2/token", &headers, Some(form.as_bytes()))
}

pub fn jwks() -> JwkSet {
    let resp = get("/.well-known/jwks.json");
    assert_eq!(resp.status, 200, "{}", resp.text());
    serde_json::from_slice(&resp.body).expect("a JWK Set")
}

/// The `kid` and `typ` of a JWT's header.
pub fn header(token: &str) -> jsonwebtoken::Header {
    jsonwebtoken::decode_header(token).expect("a JWS header")
}

/// Verifies an access token against the published JWKS with a real JOSE library, checking
/// signature, `iss`, `exp` and `aud`; returns the claims.
pub fn verify_access_token(token: &str, jwks: &JwkSet, audience: &str) -> Value {
    let header = header(token);
    let kid = header.kid.clone().expect("the header carries a kid");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is published in the JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[base()]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("token verifies: {e}"))
        .claims
}
