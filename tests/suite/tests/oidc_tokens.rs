//! Response types and modes, consent, userinfo errors, revocation (RFC 7009) and introspection
//! (RFC 7662), black-box.

use edgeid_suite::serde_json::{Value, json};
use edgeid_suite::{
    Browser, OidcClient, Pkce, ResponseMode, User, base, basic, callback_of, check_hash, code_flow,
    create_client, create_oidc_client, create_user, form_with_action, login_flow, oauth_error,
    token, userinfo_get, verify_id_token,
};

fn setup(overrides: Value) -> (OidcClient, User, Browser) {
    (
        create_oidc_client(overrides),
        create_user(json!({})),
        Browser::new(),
    )
}

fn hybrid_client() -> OidcClient {
    create_oidc_client(json!({
        "grant_types": ["authorization_code", "implicit", "refresh_token"],
        "response_types": ["code", "id_token", "id_token token", "code id_token", "code token",
                           "code id_token token"],
    }))
}

fn assert_invalid_token(resp: &edgeid_suite::Resp) {
    assert_eq!(resp.status, 401, "{}", resp.text());
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "RFC 6750 §3.1 challenge: {challenge:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Response modes and RFC 9207

/// RFC 9207 §2: `iss` in every authorization response, success and error alike.
#[test]
fn rfc9207_iss_in_success_and_error_responses() {
    let (client, user, browser) = setup(json!({}));
    let req = client.auth_request();
    let ok = login_flow(&browser, &req, &user).callback;
    assert_eq!(ok.param("iss"), Some(base().as_str()));
    let req = client.auth_request().set("prompt", "none");
    let resp = Browser::new().authorize(&req);
    let err = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(err.error(), "login_required");
    assert_eq!(err.param("iss"), Some(base().as_str()));
    assert_eq!(err.param("state"), Some(req.state()));
}

/// OAuth 2.0 Form Post Response Mode §2: an HTML form posting the response to the
/// redirect_uri, usable without JavaScript.
#[test]
fn form_post_response_mode() {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("response_mode", "form_post")
        .pkce(&pkce);
    let flow = login_flow(&browser, &req, &user);
    let cb = &flow.callback;
    assert_eq!(cb.mode, ResponseMode::FormPost);
    assert_eq!(cb.status, 200);
    assert_eq!(cb.url, client.redirect_uri);
    let code = cb.code(&req);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());

    // The page once more (session reused) to look at it: a submit control.
    let req = client.auth_request().set("response_mode", "form_post");
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let html = resp.text().to_ascii_lowercase();
    assert!(
        html.contains("<button") || html.contains("type=\"submit\""),
        "a submit button for browsers without JavaScript: {html}"
    );
    let f = form_with_action(&resp.text(), &client.redirect_uri).expect("form to the client");
    assert_eq!(f.method, "post");
    assert_eq!(f.value("state"), Some(req.state()));
}

/// `response_mode=fragment` for the code flow puts the code in the fragment.
#[test]
fn fragment_response_mode_for_code() {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("response_mode", "fragment")
        .pkce(&pkce);
    let flow = login_flow(&browser, &req, &user);
    assert_eq!(flow.callback.mode, ResponseMode::Fragment);
    let code = flow.callback.code(&req);
    assert_eq!(client.exchange(&code, Some(&pkce.verifier)).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Implicit and hybrid (OIDC Core §3.2, §3.3)

/// response_type=id_token: the ID token in the fragment, no code, no access token; nonce
/// required (§3.2.2.1), claims by scope in the ID token (§5.4).
#[test]
fn implicit_id_token() {
    let client = hybrid_client();
    let (user, browser) = (create_user(json!({})), Browser::new());
    let req = client
        .auth_request()
        .set("response_type", "id_token")
        .set("scope", "openid profile");
    let cb = login_flow(&browser, &req, &user).callback;
    assert_eq!(cb.mode, ResponseMode::Fragment);
    assert_eq!(cb.param("state"), Some(req.state()));
    assert_eq!(cb.param("iss"), Some(base().as_str()));
    assert!(
        cb.param("code").is_none() && cb.param("access_token").is_none(),
        "{cb:?}"
    );
    let claims = verify_id_token(cb.require("id_token"), &client, req.nonce());
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(
        claims["name"], "Ada Lovelace",
        "no access token: profile claims go in the ID token"
    );

    let req = client
        .auth_request()
        .set("response_type", "id_token")
        .without("nonce");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(
        cb.error(),
        "invalid_request",
        "nonce is required for implicit"
    );
    assert_eq!(
        cb.mode,
        ResponseMode::Fragment,
        "errors use the response type's mode"
    );
}

/// response_type=id_token token: at_hash required (§3.2.2.10), the access token works.
#[test]
fn implicit_id_token_token() {
    let client = hybrid_client();
    let (user, browser) = (create_user(json!({})), Browser::new());
    let req = client.auth_request().set("response_type", "id_token token");
    let cb = login_flow(&browser, &req, &user).callback;
    assert_eq!(cb.mode, ResponseMode::Fragment);
    assert_eq!(
        cb.param("token_type")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );
    let at = cb.require("access_token");
    let claims = verify_id_token(cb.require("id_token"), &client, req.nonce());
    check_hash(&claims, "at_hash", at, true);
    assert_eq!(userinfo_get(at).status, 200);
}

/// response_type=code id_token: c_hash required (§3.3.2.11); the code redeems to tokens for
/// the same subject.
#[test]
fn hybrid_code_id_token() {
    let client = hybrid_client();
    let (user, browser) = (create_user(json!({})), Browser::new());
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("response_type", "code id_token")
        .pkce(&pkce);
    let cb = login_flow(&browser, &req, &user).callback;
    assert_eq!(
        cb.mode,
        ResponseMode::Fragment,
        "hybrid defaults to fragment"
    );
    let code = cb.code(&req);
    let front = verify_id_token(cb.require("id_token"), &client, req.nonce());
    check_hash(&front, "c_hash", &code, true);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());
    let back = verify_id_token(
        t.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert_eq!(back["sub"], front["sub"]);
    assert_eq!(back["iss"], front["iss"]);
}

/// response_type=code id_token token: both c_hash and at_hash.
#[test]
fn hybrid_code_id_token_token() {
    let client = hybrid_client();
    let (user, browser) = (create_user(json!({})), Browser::new());
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("response_type", "code id_token token")
        .pkce(&pkce);
    let cb = login_flow(&browser, &req, &user).callback;
    assert_eq!(cb.mode, ResponseMode::Fragment);
    let code = cb.code(&req);
    let at = cb.require("access_token");
    let claims = verify_id_token(cb.require("id_token"), &client, req.nonce());
    check_hash(&claims, "c_hash", &code, true);
    check_hash(&claims, "at_hash", at, true);
    assert_eq!(userinfo_get(at).status, 200);
    assert_eq!(client.exchange(&code, Some(&pkce.verifier)).status, 200);
}

/// A client registered for `code` only cannot ask for an implicit response (RFC 6749
/// §4.2.2.1 unauthorized_client / unsupported_response_type).
#[test]
fn response_types_not_registered_are_refused() {
    let (client, _user, browser) = setup(json!({}));
    let req = client.auth_request().set("response_type", "id_token token");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert!(
        matches!(
            cb.error(),
            "unauthorized_client" | "unsupported_response_type"
        ),
        "{cb:?}"
    );
    assert!(cb.param("access_token").is_none() && cb.param("id_token").is_none());
}

// ---------------------------------------------------------------------------------------------
// Consent

/// A client without skip_consent asks once; the answer is remembered per user+client+scopes.
#[test]
fn consent_is_asked_once_then_remembered() {
    let (client, user, browser) = setup(json!({"skip_consent": false}));
    let first = code_flow(&browser, &client, &user, "openid profile");
    assert!(
        first.flow.saw_consent(),
        "a third-party client asks for consent"
    );
    let page = &first.flow.consent_pages[0];
    let f = form_with_action(page, "/consent").expect("consent form");
    assert_eq!(f.method, "post");
    let decisions: Vec<&str> = f
        .fields
        .iter()
        .filter(|(n, _, _)| n == "decision")
        .map(|(_, v, _)| v.as_str())
        .collect();
    assert!(
        decisions.contains(&"allow") && decisions.contains(&"deny"),
        "{f:?}"
    );
    assert!(
        !page.to_ascii_lowercase().contains("email"),
        "email was not asked for: {page}"
    );

    let second = code_flow(&browser, &client, &user, "openid profile");
    assert!(!second.flow.saw_consent(), "consent remembered");
    let wider = code_flow(&browser, &client, &user, "openid profile email");
    assert!(wider.flow.saw_consent(), "a new scope asks again");
    assert!(
        wider.flow.consent_pages[0]
            .to_ascii_lowercase()
            .contains("email"),
        "the page lists what is asked: {}",
        wider.flow.consent_pages[0]
    );
}

/// Deny → access_denied to the client (RFC 6749 §4.1.2.1).
#[test]
fn consent_denied_is_access_denied() {
    let (client, user, browser) = setup(json!({"skip_consent": false}));
    let req = client.auth_request();
    let first = browser.authorize(&req);
    let flow = edgeid_suite::drive(&browser, first, Some(&user), "deny");
    assert!(flow.saw_consent());
    assert_eq!(flow.callback.error(), "access_denied");
    assert_eq!(flow.callback.param("state"), Some(req.state()));
    assert_eq!(flow.callback.param("iss"), Some(base().as_str()));
    assert!(flow.callback.param("code").is_none());
}

/// Skip-consent clients never show the page.
#[test]
fn skip_consent_clients_get_no_consent_page() {
    let (client, user, browser) = setup(json!({"skip_consent": true}));
    let cf = code_flow(&browser, &client, &user, "openid profile email");
    assert!(!cf.flow.saw_consent());
}

// ---------------------------------------------------------------------------------------------
// Userinfo errors (RFC 6750 §3.1)

#[test]
fn userinfo_rejects_a_garbage_token_with_invalid_token() {
    assert_invalid_token(&userinfo_get("garbage.not.a-token"));
    let none = edgeid_suite::request("GET", "/userinfo", &[], None);
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer")),
        "RFC 6750 §3: a challenge without credentials"
    );
}

/// A client_credentials access token has no `openid` scope and no user: 403
/// insufficient_scope (RFC 6750 §3.1) — or 401 invalid_token as it is no user token at all.
#[test]
fn userinfo_rejects_a_token_without_openid_scope() {
    let (id, secret) = create_client(json!({"scope": "read"}));
    let t = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(t.status, 200, "{}", t.text());
    let at = t.json()["access_token"].as_str().expect("at").to_owned();
    let resp = userinfo_get(&at);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "insufficient_scope");
    // RFC 6750 §3: a token that does not enable access gets a WWW-Authenticate challenge.
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge:?}"
    );
}

/// A token signed by the provider but with its signature altered is invalid.
#[test]
fn userinfo_rejects_a_tampered_token() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let at = cf.access_token();
    let (head, sig) = at.rsplit_once('.').expect("a JWS");
    let mut sig = sig.to_owned();
    let first = sig.remove(0);
    sig.insert(0, if first == 'A' { 'B' } else { 'A' });
    assert_invalid_token(&userinfo_get(&format!("{head}.{sig}")));
}

// ---------------------------------------------------------------------------------------------
// Revocation (RFC 7009)

#[test]
fn revoking_a_refresh_token_revokes_its_family() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let rt1 = cf.refresh_token().to_owned();
    let r = client.refresh(&rt1);
    assert_eq!(r.status, 200, "{}", r.text());
    let rt2 = r.json()["refresh_token"].as_str().expect("rt2").to_owned();

    let resp = client.revoke(&rt2, Some("refresh_token"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let again = client.refresh(&rt2);
    assert_eq!(again.status, 400, "{}", again.text());
    assert_eq!(oauth_error(&again), "invalid_grant");
    let intro = client.introspect(&rt2);
    assert_eq!(intro.status, 200, "{}", intro.text());
    assert_eq!(intro.json(), json!({"active": false}));
}

#[test]
fn revoking_an_access_token_makes_userinfo_refuse_it() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let at = cf.access_token();
    assert_eq!(userinfo_get(at).status, 200);
    let resp = client.revoke(at, Some("access_token"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_invalid_token(&userinfo_get(at));
    assert_eq!(client.introspect(at).json(), json!({"active": false}));
}

/// RFC 7009 §2.2: an unknown or invalid token is still 200.
#[test]
fn revoking_an_unknown_token_is_200() {
    let client = create_oidc_client(json!({}));
    let resp = client.revoke("no-such-token", None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = client.revoke("no-such-token", Some("refresh_token"));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// RFC 7009 §2.1: client authentication is required.
#[test]
fn revocation_requires_client_authentication() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let resp = edgeid_suite::request(
        "POST",
        "/oauth2/revoke",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("token={}", cf.refresh_token()).as_bytes()),
    );
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "invalid_client");
    assert_eq!(
        client.refresh(cf.refresh_token()).status,
        200,
        "not revoked"
    );
}

/// RFC 7009 §2.1: a client cannot revoke another client's token.
#[test]
fn revoking_another_clients_token_has_no_effect() {
    let (client, user, browser) = setup(json!({}));
    let other = create_oidc_client(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let resp = other.revoke(cf.refresh_token(), None);
    assert!(matches!(resp.status, 200 | 400), "{}", resp.text());
    assert_eq!(
        client.refresh(cf.refresh_token()).status,
        200,
        "another client's revocation did not revoke it"
    );
}

// ---------------------------------------------------------------------------------------------
// Introspection (RFC 7662)

#[test]
fn introspection_of_an_active_access_token() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid profile offline_access");
    let resp = client.introspect(cf.access_token());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let body = resp.json();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], client.id.as_str());
    assert_eq!(body["sub"], user.id.as_str());
    assert_eq!(body["iss"], base().as_str());
    assert!(
        body["exp"]
            .as_i64()
            .is_some_and(|e| e > edgeid_suite::now())
    );
    let scope = body["scope"].as_str().unwrap_or_default();
    assert!(scope.split(' ').any(|s| s == "profile"), "{body}");
    if let Some(tt) = body["token_type"].as_str() {
        assert!(
            tt.eq_ignore_ascii_case("bearer") || tt == "access_token",
            "{body}"
        );
    }

    let rt = client.introspect(cf.refresh_token());
    assert_eq!(rt.status, 200, "{}", rt.text());
    let rt = rt.json();
    assert_eq!(rt["active"], true, "{rt}");
    assert_eq!(rt["client_id"], client.id.as_str());
}

#[test]
fn introspection_of_garbage_is_inactive() {
    let client = create_oidc_client(json!({}));
    let resp = client.introspect("garbage");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"active": false}));
}

/// RFC 7662 §2.1: the endpoint requires authorization; without it, 401.
#[test]
fn introspection_requires_client_authentication() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let body = format!("token={}", cf.access_token());
    let resp = edgeid_suite::request(
        "POST",
        "/oauth2/introspect",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    );
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(!resp.text().contains("\"active\":true"));
    let wrong = edgeid_suite::request(
        "POST",
        "/oauth2/introspect",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic(&client.id, "wrong-secret")),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
}

/// A token of client A introspected by client B reveals nothing (RFC 7662 §2.2, §4).
#[test]
fn introspection_by_another_client_is_inactive() {
    let (a, user, browser) = setup(json!({}));
    let b = create_oidc_client(json!({}));
    let cf = code_flow(&browser, &a, &user, "openid offline_access");
    for t in [cf.access_token(), cf.refresh_token()] {
        let resp = b.introspect(t);
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.json(), json!({"active": false}));
    }
}

/// A rotated (used) refresh token introspects as inactive.
#[test]
fn introspection_of_a_rotated_refresh_token_is_inactive() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let r = client.refresh(cf.refresh_token());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        client.introspect(cf.refresh_token()).json(),
        json!({"active": false})
    );
}

/// An expired access token (made by the provider with a lifetime in the past is not possible
/// black-box): a token whose payload was edited is inactive.
#[test]
fn introspection_of_a_tampered_token_is_inactive() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let parts: Vec<&str> = cf.access_token().split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut claims = edgeid_suite::unverified_claims(cf.access_token());
    claims["exp"] = json!(1);
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(client.introspect(&forged).json(), json!({"active": false}));
    assert_invalid_token(&userinfo_get(&forged));
}
