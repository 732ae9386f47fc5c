//! Whole flows through the router, in memory: fixed clock, seeded RNG, in-memory SQLite.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine as _;
use edgeid::testing::MemoryHost;
use edgeid::{Request, Response};
use futures_executor::block_on;
use serde_json::{Value, json};

const ADMIN: &str = "Bearer test-admin-token";

fn admin(host: &MemoryHost, method: &str, path: &str, body: Option<Value>) -> Response {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", ADMIN);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req: Request = req
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    block_on(host.request(req))
}

fn token(host: &MemoryHost, id: &str, secret: &str, form: &str) -> Response {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = http::Request::builder()
        .method("POST")
        .uri("/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(form.as_bytes().to_vec())
        .unwrap();
    block_on(host.request(req))
}

fn json_of(resp: &Response) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

fn get(host: &MemoryHost, path: &str) -> Response {
    block_on(host.request(http::Request::builder().uri(path).body(Vec::new()).unwrap()))
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn kid(jwt: &str) -> String {
    let h = jwt.split('.').next().unwrap();
    let h: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap();
    h["kid"].as_str().unwrap().to_owned()
}

fn register(host: &MemoryHost) {
    let resp = admin(
        host,
        "POST",
        "/admin/clients",
        Some(
            json!({"client_id": "svc", "client_secret": "svc-secret", "grant_types": ["client_credentials"], "scope": "read"}),
        ),
    );
    assert_eq!(resp.status(), 201);
}

#[test]
fn client_credentials_token_carries_rfc9068_claims_at_the_fixed_time() {
    let host = block_on(MemoryHost::new());
    register(&host);
    let resp = token(
        &host,
        "svc",
        "svc-secret",
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(resp.status(), 200);
    let at = json_of(&resp)["access_token"].as_str().unwrap().to_owned();
    let c = claims(&at);
    assert_eq!(c["iss"], "https://id.example.test");
    assert_eq!(c["iat"], host.clock.get());
    assert_eq!(c["exp"], host.clock.get() + 900);
    assert_eq!(c["aud"], json!(["svc"]));
}

#[test]
fn retired_keys_stay_published_until_their_tokens_expire() {
    let host = block_on(MemoryHost::new());
    register(&host);
    let first = json_of(&token(
        &host,
        "svc",
        "svc-secret",
        "grant_type=client_credentials",
    ))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = kid(&first);
    assert_eq!(
        admin(
            &host,
            "POST",
            "/admin/keys/rotate",
            Some(json!({"alg": "ES256"}))
        )
        .status(),
        200
    );

    let published = |host: &MemoryHost| -> Vec<String> {
        json_of(&get(host, "/.well-known/jwks.json"))["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(published(&host).contains(&old));
    // The longest token lifetime is the ID token's (3600 s), plus the minute a cached copy of
    // the key may keep signing (issue 12): the retired key survives until then, and the next
    // rotation after it deletes it.
    host.clock
        .advance(3600 + edgeid::keys::CURRENT_KEY_CACHE_TTL - 1);
    assert!(published(&host).contains(&old));
    // (The JWKS just read is cached for a minute; publishing a little longer is harmless.)
    host.clock.advance(2 + edgeid::keys::JWKS_CACHE_TTL);
    assert!(
        !published(&host).contains(&old),
        "the retired key is no longer published once expired"
    );
    assert_eq!(
        admin(
            &host,
            "POST",
            "/admin/keys/rotate",
            Some(json!({"alg": "ES256"}))
        )
        .status(),
        200
    );
    let keys = json_of(&admin(&host, "GET", "/admin/keys", None));
    assert!(
        !keys.to_string().contains(&old),
        "expired retired keys are deleted on rotation"
    );
}

#[test]
fn jwks_cache_is_invalidated_by_rotation() {
    let host = block_on(MemoryHost::new());
    let before = get(&host, "/.well-known/jwks.json").into_body();
    assert_eq!(
        admin(&host, "POST", "/admin/keys/rotate", None).status(),
        200
    );
    let after = get(&host, "/.well-known/jwks.json").into_body();
    assert_ne!(
        before, after,
        "a rotation is visible at once, not after the cache TTL"
    );
}

#[test]
fn token_signing_without_keys_is_a_server_error_without_details() {
    let host = MemoryHost::bare();
    register(&host);
    let resp = token(&host, "svc", "svc-secret", "grant_type=client_credentials");
    assert_eq!(resp.status(), 500);
    let body = String::from_utf8_lossy(resp.body()).into_owned();
    assert!(body.contains("server_error"));
    assert!(
        !body.contains("signing key"),
        "internal reasons stay in logs: {body}"
    );
}

#[test]
fn a_wrong_key_encryption_key_fails_closed() {
    let mut host = block_on(MemoryHost::new());
    register(&host);
    host.vars.insert(
        "key_encryption_key".into(),
        edgeid::crypto::b64url(&[1u8; 32]),
    );
    let resp = token(&host, "svc", "svc-secret", "grant_type=client_credentials");
    assert_eq!(resp.status(), 500);
}

#[test]
fn admin_token_digest_is_accepted_in_place_of_the_token() {
    let mut host = block_on(MemoryHost::new());
    host.vars.remove("admin_token");
    host.vars.insert(
        "admin_token_sha256".into(),
        edgeid::crypto::sha256_hex(b"test-admin-token"),
    );
    assert_eq!(admin(&host, "GET", "/admin/keys", None).status(), 200);
    host.vars.remove("admin_token_sha256");
    assert_eq!(
        admin(&host, "GET", "/admin/keys", None).status(),
        500,
        "no token configured: admin API disabled"
    );
}
