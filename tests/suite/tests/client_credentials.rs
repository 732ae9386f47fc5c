//! The client credentials grant (RFC 6749 §4.4) and RFC 9068 access tokens, black-box.

use edgeid_suite::serde_json::json;
use edgeid_suite::{basic, create_client, form_encode, header, jwks, token, verify_access_token};

#[test]
fn client_secret_basic_yields_a_verifiable_rfc9068_token() {
    let (id, secret) = create_client(json!({}));
    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    assert!(body["expires_in"].as_i64().is_some_and(|n| n > 0));
    let at = body["access_token"].as_str().expect("access_token");

    let h = header(at);
    assert_eq!(h.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    assert_eq!(h.alg, jsonwebtoken::Algorithm::ES256);
    let claims = verify_access_token(at, &jwks(), &id);
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "read");
    for claim in ["iat", "exp", "jti"] {
        assert!(!claims[claim].is_null(), "missing {claim}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        body["expires_in"].as_i64().unwrap_or(-1)
    );
}

#[test]
fn client_secret_post_yields_a_verifiable_token() {
    let (id, secret) = create_client(json!({"token_endpoint_auth_method": "client_secret_post"}));
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=read+write",
        form_encode(&id),
        form_encode(&secret)
    );
    let resp = token(None, &form);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let at = resp.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let claims = verify_access_token(&at, &jwks(), &id);
    assert_eq!(claims["scope"], "read write");
}

#[test]
fn no_scope_requested_grants_none_and_jti_is_unique() {
    let (id, secret) = create_client(json!({}));
    let a = token(Some(&basic(&id, &secret)), "grant_type=client_credentials").json();
    let b = token(Some(&basic(&id, &secret)), "grant_type=client_credentials").json();
    assert!(a.get("scope").is_none(), "{a}");
    let set = jwks();
    let ca = verify_access_token(a["access_token"].as_str().unwrap_or(""), &set, &id);
    let cb = verify_access_token(b["access_token"].as_str().unwrap_or(""), &set, &id);
    assert!(ca.get("scope").is_none());
    assert_ne!(ca["jti"], cb["jti"]);
}

#[test]
fn registered_audiences_become_aud_and_unregistered_ones_are_refused() {
    let (id, secret) =
        create_client(json!({"audience": ["https://api.example", "https://other.example"]}));
    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let claims = verify_access_token(
        resp.json()["access_token"].as_str().unwrap_or(""),
        &jwks(),
        "https://api.example",
    );
    assert_eq!(claims["aud"], json!(["https://api.example"]));

    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&audience=https%3A%2F%2Fevil.example",
    );
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "invalid_request");
}

#[test]
fn secrets_with_reserved_characters_work_with_basic() {
    let (id, secret) = create_client(json!({"client_secret": "p@ss:w+rd/?&=% ~"}));
    let resp = token(Some(&basic(&id, &secret)), "grant_type=client_credentials");
    assert_eq!(resp.status, 200, "{}", resp.text());
}
