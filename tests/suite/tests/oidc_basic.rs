//! The OpenID Foundation's basic certification plan (oidcc-basic-certification-test-plan), one
//! test per module, black-box. Module names are in each test's doc comment.

use std::thread::sleep;
use std::time::Duration;

use edgeid_suite::serde_json::{Value, json};
use edgeid_suite::{
    Browser, OidcClient, Pkce, ResponseMode, User, admin, base, callback_of, code_flow,
    create_oidc_client, create_user, drive, form, form_with_action, get, login_flow, now,
    oauth_error, userinfo_get, userinfo_post_body, userinfo_post_header, verify_id_token,
};

fn setup(overrides: Value) -> (OidcClient, User, Browser) {
    (
        create_oidc_client(overrides),
        create_user(json!({})),
        Browser::new(),
    )
}

fn auth_time(claims: &Value) -> i64 {
    claims["auth_time"]
        .as_i64()
        .unwrap_or_else(|| panic!("the ID token carries auth_time: {claims}"))
}

/// oidcc-server: the code flow end to end, the token response (RFC 6749 §5.1, OIDC Core
/// §3.1.3.3) and the ID token's required claims (§2).
#[test]
fn server_happy_path() {
    let (client, user, browser) = setup(json!({}));
    let before = now();
    let cf = code_flow(&browser, &client, &user, "openid");
    assert!(cf.flow.saw_login(), "a fresh browser sees the login form");
    assert_eq!(
        cf.flow.callback.mode,
        ResponseMode::Query,
        "code defaults to query"
    );
    assert_eq!(cf.flow.callback.status, 303);
    assert_eq!(cf.flow.callback.target(), client.redirect_uri);
    assert!(
        browser.cookie("edgeid_session").is_some(),
        "the login set the session cookie: {:?}",
        browser.cookie_names()
    );

    let t = &cf.tokens;
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["expires_in"].as_i64().is_some_and(|n| n > 0), "{t}");
    assert!(t["access_token"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        t.get("refresh_token").is_none(),
        "no offline_access, no refresh token: {t}"
    );
    let c = &cf.id_claims;
    assert_eq!(c["iss"], base().as_str());
    assert_eq!(c["sub"], user.id.as_str());
    let at = auth_time(c);
    assert!(at >= before - 5 && at <= now() + 5, "auth_time {at} is now");
    assert!(c["exp"].as_i64().unwrap_or(0) > now());
    assert!(
        c["amr"].as_array().is_some_and(|a| !a.is_empty()),
        "amr: {c}"
    );
    assert!(c["sid"].as_str().is_some_and(|s| !s.is_empty()), "sid: {c}");

    let info = userinfo_get(cf.access_token());
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["sub"], user.id.as_str());
}

/// The token response carries `Cache-Control: no-store` (RFC 6749 §5.1) and the code is bound
/// to its `redirect_uri` (§4.1.3).
#[test]
fn token_response_is_not_cached_and_redirect_uri_must_match() {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client.auth_request().pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let wrong = client.post(
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example.test/other"),
            ("code_verifier", &pkce.verifier),
        ],
    );
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert_eq!(oauth_error(&wrong), "invalid_grant");
    let ok = client.exchange(&code, Some(&pkce.verifier));
    // A failed attempt with the wrong redirect_uri may or may not burn the code; if it did not,
    // the right one succeeds with no-store.
    if ok.status == 200 {
        assert_eq!(ok.header("cache-control"), Some("no-store"));
    } else {
        assert_eq!(oauth_error(&ok), "invalid_grant");
    }
}

/// oidcc-response-type-missing: OIDC Core §3.1.2.6 — the error goes back to the (verified)
/// redirect_uri with state and iss.
#[test]
fn response_type_missing_is_an_error_redirect() {
    let (client, _user, browser) = setup(json!({}));
    let req = client.auth_request().without("response_type");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp).unwrap_or_else(|| {
        panic!(
            "expected a redirect to the client, got {}: {}",
            resp.status,
            resp.text()
        )
    });
    assert_eq!(cb.status, 303);
    assert_eq!(cb.target(), client.redirect_uri);
    assert!(
        matches!(cb.error(), "invalid_request" | "unsupported_response_type"),
        "{cb:?}"
    );
    assert!(cb.param("code").is_none());
    assert_eq!(cb.param("state"), Some(req.state()));
    assert_eq!(cb.param("iss"), Some(base().as_str()));
}

/// oidcc-idtoken-signature: RS256 by default, verified against the JWKS.
#[test]
fn idtoken_signature_rs256_verifies_against_the_jwks() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let h = jsonwebtoken::decode_header(cf.id_token()).expect("header");
    assert_eq!(h.alg, jsonwebtoken::Algorithm::RS256);
    // A flipped signature byte fails verification (the verifier is not a rubber stamp).
    let mut forged = cf.id_token().to_owned();
    let last = forged.pop().expect("non-empty");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let result = std::panic::catch_unwind(|| verify_id_token(&forged, &client, cf.request.nonce()));
    assert!(result.is_err(), "a forged ID token must not verify");
}

/// oidcc-idtoken-signature for a client registered for ES256.
#[test]
fn idtoken_signature_es256_for_clients_that_ask() {
    let (client, user, browser) = setup(json!({"id_token_signed_response_alg": "ES256"}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let h = jsonwebtoken::decode_header(cf.id_token()).expect("header");
    assert_eq!(h.alg, jsonwebtoken::Algorithm::ES256);
}

/// oidcc-idtoken-unsigned: unsecured ID tokens (alg none) are refused at registration, and
/// discovery does not offer them.
#[test]
fn idtoken_unsigned_alg_none_is_refused_at_registration() {
    let id = edgeid_suite::unique("none");
    let resp = admin(
        "POST",
        "/clients",
        Some(json!({
            "client_id": id,
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://rp.example.test/cb"],
            "scope": "openid",
            "id_token_signed_response_alg": "none",
        })),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(admin("GET", &format!("/clients/{id}"), None).status, 404);
    let doc = get("/.well-known/openid-configuration").json();
    let algs = doc["id_token_signing_alg_values_supported"].to_string();
    assert!(!algs.contains("\"none\""), "{algs}");
}

/// oidcc-userinfo-get (OIDC Core §5.3.1, RFC 6750 §2.1).
#[test]
fn userinfo_get_with_bearer_header() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let resp = userinfo_get(cf.access_token());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(resp.json()["sub"], user.id.as_str());
}

/// oidcc-userinfo-post-header.
#[test]
fn userinfo_post_with_bearer_header() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let resp = userinfo_post_header(cf.access_token());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["sub"], user.id.as_str());
}

/// oidcc-userinfo-post-body (RFC 6750 §2.2).
#[test]
fn userinfo_post_with_token_in_body() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid");
    let resp = userinfo_post_body(cf.access_token());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["sub"], user.id.as_str());
}

/// oidcc-ensure-request-without-nonce-succeeds-for-code-flow: nonce is optional for the code
/// flow (OIDC Core §3.1.2.1) and then absent from the ID token.
#[test]
fn request_without_nonce_succeeds_for_code_flow() {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client.auth_request().without("nonce").pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let resp = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let claims = verify_id_token(
        resp.json()["id_token"].as_str().expect("id_token"),
        &client,
        None,
    );
    assert_eq!(claims["sub"], user.id.as_str());
}

/// oidcc-scope-profile: OIDC Core §5.4 profile claims at userinfo, and no email claims.
#[test]
fn scope_profile() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid profile");
    let info = userinfo_get(cf.access_token());
    assert_eq!(info.status, 200, "{}", info.text());
    let info = info.json();
    assert_eq!(info["sub"], user.id.as_str());
    assert_eq!(info["name"], "Ada Lovelace");
    assert_eq!(info["given_name"], "Ada");
    assert_eq!(info["family_name"], "Lovelace");
    assert_eq!(info["preferred_username"], user.username.as_str());
    assert!(
        info["updated_at"].is_number(),
        "updated_at is a number: {info}"
    );
    assert!(info.get("email").is_none(), "email not granted: {info}");
    assert_eq!(cf.tokens["scope"], "openid profile");
}

/// oidcc-scope-email.
#[test]
fn scope_email() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid email");
    let info = userinfo_get(cf.access_token());
    assert_eq!(info.status, 200, "{}", info.text());
    let info = info.json();
    assert_eq!(info["email"], user.email.as_str());
    assert_eq!(info["email_verified"], true);
    assert!(info.get("name").is_none(), "profile not granted: {info}");
    assert!(info.get("preferred_username").is_none(), "{info}");
}

/// oidcc-scope-all: every scope the provider advertises that the client registered.
#[test]
fn scope_all() {
    let doc = get("/.well-known/openid-configuration").json();
    let advertised: Vec<String> = doc["scopes_supported"]
        .as_array()
        .expect("scopes_supported is advertised")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    assert!(advertised.iter().any(|s| s == "openid"), "{advertised:?}");
    let all = advertised.join(" ");
    let (client, user, browser) = setup(json!({"scope": all}));
    let cf = code_flow(&browser, &client, &user, &all);
    let info = userinfo_get(cf.access_token());
    assert_eq!(info.status, 200, "{}", info.text());
    let info = info.json();
    assert_eq!(info["sub"], user.id.as_str());
    if advertised.iter().any(|s| s == "profile") {
        assert_eq!(info["name"], "Ada Lovelace");
    }
    if advertised.iter().any(|s| s == "email") {
        assert_eq!(info["email"], user.email.as_str());
    }
}

/// oidcc-ensure-other-scope-order-succeeds / alternate happy flow: a second authorization in
/// the same browser reuses the session (no login form, same sid and auth_time).
#[test]
fn alternate_happy_flow_second_login_in_the_same_browser() {
    let (client, user, browser) = setup(json!({}));
    let first = code_flow(&browser, &client, &user, "openid profile");
    let second = code_flow(&browser, &client, &user, "profile openid");
    assert!(!second.flow.saw_login(), "the session is reused");
    assert_eq!(second.id_claims["sub"], first.id_claims["sub"]);
    assert_eq!(second.id_claims["sid"], first.id_claims["sid"]);
    assert_eq!(
        auth_time(&second.id_claims),
        auth_time(&first.id_claims),
        "auth_time is the session's, not the request's"
    );
    assert_ne!(second.access_token(), first.access_token());
}

fn accepted_param(key: &str, value: &str) {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client.auth_request().set(key, value).pkce(&pkce);
    let flow = login_flow(&browser, &req, &user);
    let code = flow.callback.code(&req);
    let resp = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(resp.status, 200, "{key}={value}: {}", resp.text());
    let claims = verify_id_token(
        resp.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert_eq!(claims["sub"], user.id.as_str());
}

/// oidcc-display-page.
#[test]
fn display_page() {
    accepted_param("display", "page");
}

/// oidcc-display-popup.
#[test]
fn display_popup() {
    accepted_param("display", "popup");
}

/// oidcc-unknown-parameter: OIDC Core §3.1.2.1 / RFC 6749 §3.1 — unknown parameters are
/// ignored.
#[test]
fn unknown_parameter_is_ignored() {
    accepted_param("extra", "foobar");
}

/// oidcc-ui-locales.
#[test]
fn ui_locales() {
    accepted_param("ui_locales", "se en-US");
}

/// oidcc-claims-locales.
#[test]
fn claims_locales() {
    accepted_param("claims_locales", "se en-US");
}

/// oidcc-ensure-request-with-acr-values-succeeds.
#[test]
fn acr_values() {
    accepted_param("acr_values", "1 2");
}

/// oidcc-prompt-login: OIDC Core §3.1.2.1 — the user is re-authenticated even with a session,
/// and auth_time advances.
#[test]
fn prompt_login_forces_the_login_form_again() {
    let (client, user, browser) = setup(json!({}));
    let first = code_flow(&browser, &client, &user, "openid");
    sleep(Duration::from_millis(1500));
    let pkce = Pkce::s256();
    let req = client.auth_request().set("prompt", "login").pkce(&pkce);
    let flow = login_flow(&browser, &req, &user);
    assert!(flow.saw_login(), "prompt=login shows the login form");
    let code = flow.callback.code(&req);
    let resp = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let claims = verify_id_token(
        resp.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert!(
        auth_time(&claims) > auth_time(&first.id_claims),
        "auth_time advances: {} then {}",
        auth_time(&first.id_claims),
        auth_time(&claims)
    );
}

/// oidcc-prompt-none-not-logged-in: OIDC Core §3.1.2.6 login_required, to the client.
#[test]
fn prompt_none_not_logged_in_is_login_required() {
    let (client, _user, browser) = setup(json!({}));
    let req = client.auth_request().set("prompt", "none");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.status, 303);
    assert_eq!(cb.target(), client.redirect_uri);
    assert_eq!(cb.error(), "login_required");
    assert_eq!(cb.param("state"), Some(req.state()));
    assert_eq!(cb.param("iss"), Some(base().as_str()));
}

/// oidcc-prompt-none-logged-in: no UI, a code straight away.
#[test]
fn prompt_none_logged_in_issues_a_code_without_ui() {
    let (client, user, browser) = setup(json!({}));
    let first = code_flow(&browser, &client, &user, "openid");
    let pkce = Pkce::s256();
    let req = client.auth_request().set("prompt", "none").pkce(&pkce);
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    let code = cb.code(&req);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());
    let claims = verify_id_token(
        t.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(auth_time(&claims), auth_time(&first.id_claims));
}

/// oidcc-max-age-1: a session older than max_age means a new login (OIDC Core §3.1.2.1), and
/// auth_time is then required in the ID token.
#[test]
fn max_age_1_forces_a_new_login_after_two_seconds() {
    let (client, user, browser) = setup(json!({}));
    let first = code_flow(&browser, &client, &user, "openid");
    sleep(Duration::from_secs(2));
    let pkce = Pkce::s256();
    let req = client.auth_request().set("max_age", "1").pkce(&pkce);
    let flow = login_flow(&browser, &req, &user);
    assert!(flow.saw_login(), "max_age=1 after 2 s shows the login form");
    let code = flow.callback.code(&req);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());
    let claims = verify_id_token(
        t.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert!(auth_time(&claims) > auth_time(&first.id_claims));
}

/// oidcc-max-age-10000: a recent session satisfies max_age; auth_time is present.
#[test]
fn max_age_10000_reuses_the_session() {
    let (client, user, browser) = setup(json!({}));
    let first = code_flow(&browser, &client, &user, "openid");
    let pkce = Pkce::s256();
    let req = client.auth_request().set("max_age", "10000").pkce(&pkce);
    let flow = login_flow(&browser, &req, &user);
    assert!(!flow.saw_login(), "no login form within max_age");
    let code = flow.callback.code(&req);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());
    let claims = verify_id_token(
        t.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert_eq!(auth_time(&claims), auth_time(&first.id_claims));
}

/// oidcc-id-token-hint: a previously issued ID token as id_token_hint with prompt=none.
#[test]
fn id_token_hint_with_prompt_none() {
    let (client, user, browser) = setup(json!({}));
    let first = code_flow(&browser, &client, &user, "openid");
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("prompt", "none")
        .set("id_token_hint", first.id_token())
        .pkce(&pkce);
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    let code = cb.code(&req);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());
    let claims = verify_id_token(
        t.json()["id_token"].as_str().expect("id_token"),
        &client,
        req.nonce(),
    );
    assert_eq!(claims["sub"], first.id_claims["sub"]);
}

/// id_token_hint naming another user than the session's: OIDC Core §3.1.2.1 says the OP
/// returns login_required (or similar) rather than the session's user.
#[test]
fn id_token_hint_for_another_user_is_not_silently_ignored() {
    let client = create_oidc_client(json!({}));
    let (alice, bob) = (create_user(json!({})), create_user(json!({})));
    let alices = code_flow(&Browser::new(), &client, &alice, "openid");
    let browser = Browser::new();
    code_flow(&browser, &client, &bob, "openid");
    let req = client
        .auth_request()
        .set("prompt", "none")
        .set("id_token_hint", alices.id_token());
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert!(
        matches!(
            cb.error(),
            "login_required" | "interaction_required" | "account_selection_required"
        ),
        "{cb:?}"
    );
}

/// oidcc-login-hint: the identifier field is prefilled.
#[test]
fn login_hint_prefills_the_identifier() {
    let (client, user, browser) = setup(json!({}));
    let req = client.auth_request().set("login_hint", &user.username);
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = browser.get(resp.header("location").expect("Location"));
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let f = form_with_action(&html, "/login").expect("the login form");
    assert_eq!(
        f.value("identifier"),
        Some(user.username.as_str()),
        "{html}"
    );
    let flow = drive(&browser, page, Some(&user), "allow");
    flow.callback.code(&req);
}

/// The login page itself: a form posting to /login with the sealed request, identifier and
/// password; a wrong password is 401 with the form again; the flow cookie binds the request.
#[test]
fn login_page_and_wrong_password() {
    let (client, user, browser) = setup(json!({}));
    let req = client.auth_request();
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let location = resp.header("location").expect("Location").to_owned();
    assert!(
        Browser::url(&location).starts_with(&format!("{}/login?", base())),
        "{location}"
    );
    assert!(
        browser.cookie("edgeid_flow").is_some(),
        "the flow cookie is set"
    );
    let page = browser.get(&location);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let html = page.text();
    let f = form_with_action(&html, "/login").expect("a form posting to /login");
    assert_eq!(f.method, "post");
    assert!(
        f.has_field("identifier") && f.has_field("password"),
        "{f:?}"
    );
    let request = f.value("request").expect("hidden request").to_owned();

    let wrong = browser.post_form(
        "/login",
        &[
            ("request", &request),
            ("identifier", &user.username),
            ("password", "not-the-password"),
        ],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(browser.cookie("edgeid_session").is_none());
    assert!(
        form_with_action(&wrong.text(), "/login").is_some(),
        "the form again"
    );

    // The sealed request does not work from another browser (no flow cookie).
    let other = Browser::new();
    let stolen = other.post_form(
        "/login",
        &[
            ("request", &request),
            ("identifier", &user.username),
            ("password", &user.password),
        ],
    );
    assert!(
        stolen.status >= 400 && other.cookie("edgeid_session").is_none(),
        "a request sealed for one browser is refused in another: {} {:?}",
        stolen.status,
        stolen.header("location")
    );

    // Login by email works too.
    let ok = browser.post_form(
        "/login",
        &[
            ("request", &request),
            ("identifier", &user.email),
            ("password", &user.password),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert!(browser.cookie("edgeid_session").is_some());
    let flow = drive(&browser, ok, Some(&user), "allow");
    flow.callback.code(&req);
}

/// oidcc-codereuse: RFC 6749 §4.1.2 — a second redemption fails and revokes what the first
/// issued (RFC 6819 §4.4.1.1).
#[test]
fn codereuse_fails_and_revokes_the_first_tokens() {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client.auth_request().pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let first = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(first.status, 200, "{}", first.text());
    let at = first.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_eq!(userinfo_get(&at).status, 200);
    let second = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(second.status, 400, "{}", second.text());
    assert_eq!(oauth_error(&second), "invalid_grant");
    assert_eq!(
        userinfo_get(&at).status,
        401,
        "the access token of the first redemption is revoked"
    );
}

/// oidcc-codereuse-30seconds (black-box variant: a short real wait before the reuse).
#[test]
fn codereuse_after_a_wait_fails() {
    let (client, user, browser) = setup(json!({"scope": "openid offline_access"}));
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("scope", "openid offline_access")
        .pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let first = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    sleep(Duration::from_secs(2));
    let second = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(second.status, 400, "{}", second.text());
    assert_eq!(oauth_error(&second), "invalid_grant");
    let at = first["access_token"].as_str().expect("access_token");
    assert_eq!(userinfo_get(at).status, 401);
    if let Some(rt) = first["refresh_token"].as_str() {
        let r = client.refresh(rt);
        assert_eq!(
            r.status, 400,
            "the refresh token of the reused code is revoked"
        );
        assert_eq!(oauth_error(&r), "invalid_grant");
    }
}

/// oidcc-ensure-registered-redirect-uri: RFC 6749 §4.1.2.1 — an unregistered redirect_uri gets
/// an error page, never a redirect.
#[test]
fn ensure_registered_redirect_uri() {
    let (client, _user, browser) = setup(json!({}));
    let req = client
        .auth_request()
        .set("redirect_uri", "https://attacker.example.test/cb");
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.header("location").is_none());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(resp.text().contains("invalid_request"), "{}", resp.text());
    assert!(
        !resp.text().contains("attacker.example.test/cb?"),
        "no link to it"
    );
}

/// Open-redirect attempts: anything but an exact match of a registered URI is refused with an
/// HTML page (RFC 6749 §3.1.2.3, OAuth 2.0 Security BCP §4.1).
#[test]
fn open_redirect_attempts_get_an_error_page() {
    let (client, _user, browser) = setup(json!({}));
    let r = &client.redirect_uri;
    let rest = r.trim_start_matches("https://");
    let attempts = [
        format!("{r}/extra"),
        format!("{r}?x=1"),
        format!("{r}#frag"),
        format!("https://evil@{rest}"),
        format!("http://{rest}"),
        format!(
            "https://evil.example.test/{}",
            rest.split_once('/').map_or("", |x| x.1)
        ),
        format!("{r}/../other"),
        r.to_uppercase(),
        String::new(),
    ];
    for uri in attempts {
        let req = client.auth_request().set("redirect_uri", &uri);
        let resp = browser.authorize(&req);
        assert_eq!(resp.status, 400, "redirect_uri {uri:?}: {}", resp.text());
        assert!(resp.header("location").is_none(), "redirect_uri {uri:?}");
    }
    // An unknown client_id: an error page too.
    let req = client.auth_request().set("client_id", "no-such-client");
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.header("location").is_none());
}

/// oidcc-ensure-post-request-succeeds: the authorization endpoint accepts POST (OIDC Core
/// §3.1.2.1).
#[test]
fn ensure_post_request_succeeds() {
    let (client, user, browser) = setup(json!({}));
    let pkce = Pkce::s256();
    let req = client.auth_request().pkce(&pkce);
    let first = browser.authorize_post(&req);
    let flow = drive(&browser, first, Some(&user), "allow");
    assert!(flow.saw_login());
    let code = flow.callback.code(&req);
    let t = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(t.status, 200, "{}", t.text());
}

/// oidcc-client-secret-post.
#[test]
fn client_secret_post() {
    let (client, user, browser) =
        setup(json!({"token_endpoint_auth_method": "client_secret_post"}));
    let cf = code_flow(&browser, &client, &user, "openid");
    assert_eq!(cf.id_claims["aud"], client.id.as_str());
    // The same client with Basic credentials is refused (it registered client_secret_post).
    let pkce = Pkce::s256();
    let req = client.auth_request().pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let resp = edgeid_suite::token(
        Some(&edgeid_suite::basic(&client.id, &client.secret)),
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &pkce.verifier),
        ]),
    );
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "invalid_client");
}

/// oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported: OIDC Core §6.3 /
/// §3.1.2.6 request_uri_not_supported.
#[test]
fn request_uri_is_rejected_as_unsupported() {
    let (client, _user, browser) = setup(json!({}));
    let req = client
        .auth_request()
        .set("request_uri", "https://rp.example.test/request.jwt");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.error(), "request_uri_not_supported");
    assert_eq!(cb.param("state"), Some(req.state()));
    assert_eq!(cb.param("iss"), Some(base().as_str()));
}

/// oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported:
/// request_not_supported.
#[test]
fn request_object_is_rejected_as_unsupported() {
    let (client, _user, browser) = setup(json!({}));
    // An unsigned request object (alg none) with the same parameters.
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let object = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(
            &json!({"client_id": client.id, "response_type": "code", "scope": "openid"})
                .to_string()
        )
    );
    let req = client.auth_request().set("request", &object);
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.error(), "request_not_supported");
    assert_eq!(cb.param("state"), Some(req.state()));
}

/// oidcc-refresh-token: RFC 6749 §6 with rotation; reuse of a rotated token revokes the family
/// (OAuth 2.0 Security BCP §4.14.2).
#[test]
fn refresh_token_rotation_and_reuse_revokes_the_family() {
    let (client, user, browser) = setup(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let rt1 = cf.refresh_token().to_owned();

    let r = client.refresh(&rt1);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = r.json();
    let rt2 = r["refresh_token"]
        .as_str()
        .expect("a rotated refresh token")
        .to_owned();
    assert_ne!(rt2, rt1, "rotated on use");
    let at2 = r["access_token"].as_str().expect("access_token");
    assert_eq!(userinfo_get(at2).status, 200);
    if let Some(id) = r["id_token"].as_str() {
        // OIDC Core §12.2: same iss/sub/aud, no nonce requirement.
        let c = edgeid_suite::unverified_claims(id);
        assert_eq!(c["sub"], user.id.as_str());
        assert_eq!(c["iss"], base().as_str());
    }

    let reuse = client.refresh(&rt1);
    assert_eq!(reuse.status, 400, "{}", reuse.text());
    assert_eq!(oauth_error(&reuse), "invalid_grant");
    let after = client.refresh(&rt2);
    assert_eq!(
        after.status,
        400,
        "the whole family is revoked: {}",
        after.text()
    );
    assert_eq!(oauth_error(&after), "invalid_grant");
}

/// A refresh token is bound to its client (RFC 6749 §6).
#[test]
fn refresh_token_of_another_client_is_invalid_grant() {
    let (client, user, browser) = setup(json!({}));
    let other = create_oidc_client(json!({}));
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let r = other.refresh(cf.refresh_token());
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(oauth_error(&r), "invalid_grant");
}

/// oidcc-ensure-pkce / valid PKCE (RFC 7636 §4.6): the right verifier works; a wrong one and a
/// missing one are invalid_grant.
#[test]
fn valid_pkce_and_wrong_verifier() {
    let (client, user, browser) = setup(json!({}));
    code_flow(&browser, &client, &user, "openid");

    let pkce = Pkce::s256();
    let req = client.auth_request().pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let wrong = client.exchange(&code, Some(&Pkce::s256().verifier));
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert_eq!(oauth_error(&wrong), "invalid_grant");

    // Downgrade: a code bound to a challenge redeemed without any verifier.
    let pkce = Pkce::s256();
    let req = client.auth_request().pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let missing = client.exchange(&code, None);
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert_eq!(oauth_error(&missing), "invalid_grant");
}

/// PKCE `plain` is refused (the provider advertises S256 only).
#[test]
fn pkce_plain_is_refused() {
    let (client, _user, browser) = setup(json!({}));
    let req = client
        .auth_request()
        .set("code_challenge", &Pkce::s256().verifier)
        .set("code_challenge_method", "plain");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.error(), "invalid_request");
    assert_eq!(cb.param("state"), Some(req.state()));
}

/// Public clients must use PKCE (OAuth 2.0 Security BCP §2.1.1), and then redeem without a
/// secret.
#[test]
fn public_client_requires_pkce() {
    let client = create_oidc_client(json!({"token_endpoint_auth_method": "none"}));
    let (user, browser) = (create_user(json!({})), Browser::new());
    let req = client.auth_request();
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.error(), "invalid_request");

    let cf = code_flow(&browser, &client, &user, "openid");
    assert_eq!(cf.id_claims["aud"], client.id.as_str());
}

/// Code injection across clients: a code issued to A cannot be redeemed by B (RFC 6749
/// §4.1.3).
#[test]
fn code_of_another_client_is_invalid_grant() {
    let (a, user, browser) = setup(json!({}));
    let b = create_oidc_client(json!({"redirect_uris": [a.redirect_uri.clone()]}));
    let pkce = Pkce::s256();
    let req = a.auth_request().pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let resp = b.exchange(&code, Some(&pkce.verifier));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "invalid_grant");
}

/// PKCE downgrade the other way (OAuth 2.0 Security BCP §4.8.2): a code issued without a
/// code_challenge is refused when a code_verifier is presented.
#[test]
fn code_verifier_without_a_challenge_is_invalid_grant() {
    let (client, user, browser) = setup(json!({}));
    let req = client.auth_request();
    let cb = login_flow(&browser, &req, &user).callback;
    if cb.param("error").is_some() {
        // A provider that requires PKCE from every client refuses earlier, which is fine.
        assert_eq!(cb.error(), "invalid_request");
        return;
    }
    let code = cb.code(&req);
    let resp = client.exchange(&code, Some(&Pkce::s256().verifier));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "invalid_grant");
}
