//! Issue 9: bounded, linear-time request handling and RFC 6749 §4.1.3's `redirect_uri` rule at
//! the token endpoint, through the router in memory.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `n` distinct three-character scope tokens (4 bytes each with the separator).
fn distinct_tokens(n: usize) -> Vec<String> {
    const A: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..n)
        .map(|i| {
            let c = |k: usize| A[k % A.len()] as char;
            [c(i / (A.len() * A.len())), c(i / A.len()), c(i)]
                .iter()
                .collect()
        })
        .collect()
}

/// The reproduction: 16,000 distinct short scope tokens in one POST body (just under the
/// 64 KiB body limit) used to cost 0.3 s of quadratic de-duplication. Now the value is over
/// the per-parameter cap and the request is refused while parsing, with a page (the client is
/// not verified yet, RFC 6749 §4.1.2.1).
#[test]
fn issue9_huge_scope_post_is_refused_while_parsing() {
    let (host, _) = setup(json!({}));
    let tokens = distinct_tokens(16_000);
    let body = format!(
        "client_id=rp&response_type=code&redirect_uri={}&scope={}",
        enc(CB),
        tokens.join("+")
    );
    assert!(body.len() <= edgeid::web::MAX_BODY_BYTES, "{}", body.len());
    let start = std::time::Instant::now();
    let resp = send(
        &host,
        "POST",
        "/oauth2/auth",
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    );
    println!(
        "16,000-token scope refused in {:?} (in memory)",
        start.elapsed()
    );
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert!(text(&resp).contains("invalid_request"), "{}", text(&resp));
    assert!(resp.headers().get("location").is_none());
}

/// Over the token cap but within the value cap: refused with `invalid_scope`, redirected to
/// the verified client (RFC 6749 §4.1.2.1).
#[test]
fn issue9_too_many_scope_tokens_redirect_invalid_scope() {
    let (host, _) = setup(json!({}));
    let scope = vec!["openid"; 65].join("%20");
    let url = authorize_url("").replace(
        "scope=openid%20profile%20email%20offline_access",
        &format!("scope={scope}"),
    );
    let resp = send(&host, "GET", &url, &[], "");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let p = callback(&resp);
    assert_eq!(p["error"], "invalid_scope");
    assert_eq!(p["state"], "st-1");
}

#[test]
fn issue9_repeated_and_too_many_parameters_are_invalid_request() {
    let (host, _) = setup(json!({}));
    let resp = send(&host, "GET", &authorize_url("&client_id=rp"), &[], "");
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("more than once"), "{}", text(&resp));
    let extra: String = (0..64).map(|i| format!("&x{i}=1")).collect();
    let resp = send(&host, "GET", &authorize_url(&extra), &[], "");
    assert_eq!(resp.status(), 400);
    assert!(
        text(&resp).contains("more than 64 parameters"),
        "{}",
        text(&resp)
    );
    let form: String = (0..65).map(|i| format!("x{i}=1&")).collect();
    let resp = token(&host, &format!("{form}grant_type=client_credentials"));
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(&resp)["error"], "invalid_request");
}

#[test]
fn issue9_overlong_values_are_refused() {
    let (host, _) = setup(json!({}));
    let long_uri = format!("{CB}?{}", "a".repeat(2100));
    let url = authorize_url("").replace(&enc(CB), &enc(&long_uri));
    let resp = send(&host, "GET", &url, &[], "");
    assert_eq!(resp.status(), 400, "an unverified redirect_uri gets a page");
    assert!(text(&resp).contains("longer than 2048"), "{}", text(&resp));
    let resp = send(
        &host,
        "GET",
        &authorize_url(&format!("&id_token_hint={}", "a".repeat(9000))),
        &[],
        "",
    );
    assert_eq!(callback(&resp)["error"], "invalid_request");
    let resp = token(
        &host,
        &format!("grant_type=authorization_code&code={}", "c".repeat(9000)),
    );
    assert_eq!(json_of(&resp)["error"], "invalid_request");
    let basic = format!("Basic {}", "QUFB".repeat(600));
    let resp = send(
        &host,
        "POST",
        "/oauth2/token",
        &[
            ("authorization", basic.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials",
    );
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(&resp)["error"], "invalid_request");
}

#[test]
fn issue9_oversized_body_and_headers_are_refused() {
    let (host, _) = setup(json!({}));
    let body = "a".repeat(edgeid::web::MAX_BODY_BYTES + 1);
    let resp = token(&host, &body);
    assert_eq!(resp.status(), 413);
    let filler = "f".repeat(edgeid::web::limits::MAX_HEADER_BYTES);
    let resp = send(
        &host,
        "GET",
        "/.well-known/openid-configuration",
        &[("x-filler", filler.as_str())],
        "",
    );
    assert_eq!(resp.status(), 431);
}

/// RFC 6749 §4.1.3: the authorization request carried `redirect_uri`, so the token request
/// must carry the identical value; a missing one is `invalid_grant` and spends the code.
#[test]
fn issue9_token_request_without_redirect_uri_is_invalid_grant() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let code = first_login(&host, &browser);
    let resp = token(
        &host,
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
    );
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert_eq!(json_of(&resp)["error"], "invalid_grant");
    // The code is spent: the correct request now fails too.
    assert_eq!(json_of(&redeem(&host, &code))["error"], "invalid_grant");
}

#[test]
fn issue9_token_request_with_another_redirect_uri_is_invalid_grant() {
    let other = "https://rp.example.test/other";
    let (host, _) = setup(json!({"redirect_uris": [CB, other]}));
    let browser = Browser::new(&host);
    let code = first_login(&host, &browser);
    let resp = token(
        &host,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            enc(other)
        ),
    );
    assert_eq!(json_of(&resp)["error"], "invalid_grant", "{}", text(&resp));
}

/// When the authorization request had no `redirect_uri` (one registered URI, not OpenID),
/// RFC 6749 §4.1.3 does not require it at the token endpoint; a value sent must be registered.
#[test]
fn issue9_redirect_uri_may_be_omitted_when_the_authorization_request_omitted_it() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let code_for = |browser: &Browser| {
        let url = format!(
            "/oauth2/auth?client_id=rp&response_type=code&scope=profile&state=st-2&code_challenge={}&code_challenge_method=S256",
            challenge(VERIFIER)
        );
        let resp = browser.get(&url);
        let resp = if location(&resp).contains("/login?") {
            browser.login(&resp, "alice", "wonderland-42")
        } else {
            resp
        };
        callback(&resp)["code"].clone()
    };
    let code = code_for(&browser);
    let resp = token(
        &host,
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let code = code_for(&browser);
    let resp = redeem(&host, &code);
    assert_eq!(
        resp.status(),
        200,
        "the registered URI may be named: {}",
        text(&resp)
    );
    let code = code_for(&browser);
    let resp = token(
        &host,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            enc("https://rp.example.test/elsewhere")
        ),
    );
    assert_eq!(json_of(&resp)["error"], "invalid_grant");
}
