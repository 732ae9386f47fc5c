//! Token endpoint errors (RFC 6749 §5.2) and hostile input, black-box.

use edgeid_suite::serde_json::json;
use edgeid_suite::{basic, create_client, request, token};

fn error_of(resp: &edgeid_suite::Resp) -> String {
    assert_eq!(
        resp.header("cache-control"),
        Some("no-store"),
        "{}",
        resp.text()
    );
    resp.json()["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn wrong_secret_is_invalid_client_with_basic_challenge() {
    let (id, _) = create_client(json!({}));
    let resp = token(
        Some(&basic(&id, "not-the-secret")),
        "grant_type=client_credentials",
    );
    assert_eq!(resp.status, 401);
    assert_eq!(error_of(&resp), "invalid_client");
    assert!(
        resp.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    assert!(
        !resp.text().contains("not-the-secret"),
        "the secret is never echoed"
    );
}

#[test]
fn unknown_client_is_invalid_client() {
    let resp = token(
        Some(&basic("no-such-client", "whatever-secret")),
        "grant_type=client_credentials",
    );
    assert_eq!(resp.status, 401);
    assert_eq!(error_of(&resp), "invalid_client");
}

#[test]
fn unknown_client_via_post_is_invalid_client_without_basic_challenge() {
    let resp = token(
        None,
        "grant_type=client_credentials&client_id=nobody&client_secret=whatever-secret",
    );
    assert_eq!(resp.status, 401);
    assert_eq!(error_of(&resp), "invalid_client");
    assert!(
        resp.header("www-authenticate")
            .is_none_or(|v| !v.starts_with("Basic"))
    );
}

#[test]
fn using_a_method_the_client_did_not_register_is_invalid_client() {
    let (id, secret) = create_client(json!({}));
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let resp = token(None, &form);
    assert_eq!(resp.status, 401);
    assert_eq!(error_of(&resp), "invalid_client");
}

#[test]
fn no_credentials_is_invalid_client() {
    let resp = token(None, "grant_type=client_credentials");
    assert_eq!(resp.status, 401);
    assert_eq!(error_of(&resp), "invalid_client");
}

#[test]
fn malformed_basic_header_is_invalid_client() {
    let resp = token(Some("Basic %%%not-base64"), "grant_type=client_credentials");
    assert_eq!(resp.status, 401);
    assert_eq!(error_of(&resp), "invalid_client");
}

#[test]
fn two_authentication_methods_are_invalid_request() {
    let (id, secret) = create_client(json!({}));
    let resp = token(
        Some(&basic(&id, &secret)),
        &format!("grant_type=client_credentials&client_secret={secret}"),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "invalid_request");
}

#[test]
fn missing_grant_type_is_invalid_request() {
    let (id, secret) = create_client(json!({}));
    let resp = token(Some(&basic(&id, &secret)), "scope=read");
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "invalid_request");
}

#[test]
fn unknown_grant_type_is_unsupported_grant_type() {
    let (id, secret) = create_client(json!({}));
    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=password&username=a&password=b",
    );
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "unsupported_grant_type");
}

#[test]
fn grant_not_registered_is_unauthorized_client() {
    let (id, secret) = create_client(json!({
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://rp.example/cb"],
    }));
    let resp = token(Some(&basic(&id, &secret)), "grant_type=client_credentials");
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "unauthorized_client");
}

#[test]
fn scope_beyond_registration_is_invalid_scope() {
    let (id, secret) = create_client(json!({"scope": "read"}));
    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&scope=read+admin",
    );
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "invalid_scope");
}

#[test]
fn wrong_content_type_is_invalid_request() {
    let (id, secret) = create_client(json!({}));
    let auth = basic(&id, &secret);
    let resp = request(
        "POST",
        "/oauth2/token",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        Some(br#"{"grant_type":"client_credentials"}"#),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "invalid_request");
}

#[test]
fn duplicate_parameters_are_invalid_request() {
    let (id, secret) = create_client(json!({}));
    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&scope=read&scope=write",
    );
    assert_eq!(resp.status, 400);
    assert_eq!(error_of(&resp), "invalid_request");
}

#[test]
fn malformed_bodies_get_a_clean_4xx() {
    let (id, secret) = create_client(json!({}));
    let auth = basic(&id, &secret);
    let bodies: [&[u8]; 4] = [b"\xff\xfe\x00garbage", b"%%%", b"grant_type", b"&&&=&="];
    for body in bodies {
        let resp = request(
            "POST",
            "/oauth2/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &auth),
            ],
            Some(body),
        );
        assert!(
            (400..500).contains(&resp.status),
            "{body:?} -> {}",
            resp.status
        );
        assert!(resp.json()["error"].is_string());
    }
}

#[test]
fn oversized_body_is_413() {
    let big = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(1024 * 1024)
    );
    let resp = token(None, &big);
    assert_eq!(resp.status, 413, "{}", resp.text());
}

#[test]
fn get_on_the_token_endpoint_is_405() {
    let resp = request("GET", "/oauth2/token", &[], None);
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
}
