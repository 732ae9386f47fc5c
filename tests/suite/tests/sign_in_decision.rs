//! Issue 9, items 1, 2 and 6, black-box: one decision for "may this session complete this
//! authorization request". Each test takes what one page handed out (a sealed request, a
//! session, a recovery form) and tries to reach a code through another page.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::oidc::{
    AuthRequest, Browser, OidcClient, Pkce, User, callback_of, code_flow, create_oidc_client,
    create_user, form_with_action, unverified_claims,
};
use edgeid_suite::second_factor::{enrol, next_code, submit, wrong_code};
use edgeid_suite::serde_json::json;
use edgeid_suite::{Resp, admin, form_encode, unique};

/// The sealed `request` on the login page an authorize response points to.
fn login_value(browser: &Browser, resp: &Resp) -> String {
    let loc = resp.header("location").expect("a redirect").to_owned();
    assert!(loc.contains("/login?request="), "sent to login: {loc}");
    let page = browser.get(&loc);
    assert_eq!(page.status, 200, "{}", page.text());
    form_with_action(&page.text(), "/login")
        .expect("a login form")
        .value("request")
        .expect("a sealed request")
        .to_owned()
}

fn gives_code(resp: &Resp) -> bool {
    callback_of(resp).is_some_and(|c| c.param("code").is_some())
}

fn sets_session(resp: &Resp) -> bool {
    resp.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("set-cookie")
            && v.contains("edgeid_session=")
            && !v.contains("Max-Age=0")
    })
}

fn post_consent(browser: &Browser, sealed: &str) -> Resp {
    browser.post_form("/consent", &[("request", sealed), ("decision", "allow")])
}

fn app_without_roles(client: &OidcClient) {
    let slug = format!("ext-{}", unique("app"));
    let resp = admin(
        "POST",
        "/apps",
        Some(
            json!({"slug": slug, "name": "Gated App", "url": "https://app.example.test",
                    "client_id": client.id}),
        ),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
}

fn request(client: &OidcClient, pkce: &Pkce) -> AuthRequest {
    client
        .auth_request()
        .set("scope", "openid profile")
        .pkce(pkce)
}

/// The reproduction: no role → "No access" at /login, then the same sealed request posted to
/// /consent. The refusal sets no session, and /consent refuses a value made for /login.
#[test]
fn issue9_the_role_gate_cannot_be_walked_around_through_consent() {
    let client = create_oidc_client(json!({}));
    app_without_roles(&client);
    let user = create_user(json!({}));
    let browser = Browser::new();
    let pkce = Pkce::s256();
    let resp = browser.authorize(&request(&client, &pkce));
    let sealed = login_value(&browser, &resp);
    let resp = browser.post_form(
        "/login",
        &[
            ("request", &sealed),
            ("identifier", &user.username),
            ("password", &user.password),
        ],
    );
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(!sets_session(&resp), "the refusal page sets no session");
    assert!(browser.cookie("edgeid_session").is_none());
    let resp = post_consent(&browser, &sealed);
    assert!(
        !gives_code(&resp),
        "consent issued a code: {:?}",
        resp.headers
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = browser.get(&format!("/consent?request={}", form_encode(&sealed)));
    assert!(!gives_code(&resp));
    assert_eq!(resp.status, 400, "{}", resp.text());
}

/// Step-up: a session older than `max_age`, `prompt=login`, `prompt=select_account` and an
/// `id_token_hint` for another user all send the browser to /login; the sealed value posted to
/// /consent instead gives nothing.
#[test]
fn issue9_step_up_and_hints_cannot_be_skipped_through_consent() {
    let client = create_oidc_client(json!({}));
    let alice = create_user(json!({}));
    let bob = create_user(json!({}));
    let bob_flow = code_flow(&Browser::new(), &client, &bob, "openid");
    let browser = Browser::new();
    let flow = code_flow(&browser, &client, &alice, "openid profile");
    let auth_time = flow.id_claims["auth_time"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let pkce = Pkce::s256();
    let cases = [
        ("max_age", "1"),
        ("prompt", "login"),
        ("prompt", "select_account"),
        ("id_token_hint", bob_flow.id_token()),
    ];
    for (key, value) in cases {
        let resp = browser.authorize(&request(&client, &pkce).set(key, value));
        let sealed = login_value(&browser, &resp);
        let resp = post_consent(&browser, &sealed);
        assert!(!gives_code(&resp), "{key}={value}: consent gave a code");
        assert_eq!(resp.status, 400, "{key}: {}", resp.text());
    }
    // The step-up done properly gives a new auth_time.
    let resp = browser.authorize(&request(&client, &pkce).set("max_age", "1"));
    let sealed = login_value(&browser, &resp);
    let resp = browser.post_form(
        "/login",
        &[
            ("request", &sealed),
            ("identifier", &alice.username),
            ("password", &alice.password),
        ],
    );
    let cb = callback_of(&resp).expect("back to the client");
    let tokens = client
        .exchange(cb.require("code"), Some(&pkce.verifier))
        .json();
    let id = unverified_claims(tokens["id_token"].as_str().unwrap());
    assert!(id["auth_time"].as_i64().unwrap() > auth_time, "{id}");
    // Alice signing in does not satisfy a hint for Bob: an error for the client, no session.
    let resp =
        browser.authorize(&request(&client, &pkce).set("id_token_hint", bob_flow.id_token()));
    let sealed = login_value(&browser, &resp);
    let resp = browser.post_form(
        "/login",
        &[
            ("request", &sealed),
            ("identifier", &alice.username),
            ("password", &alice.password),
        ],
    );
    assert_eq!(
        callback_of(&resp).expect("to the client").error(),
        "login_required"
    );
    assert!(!sets_session(&resp));
}

/// A consent value belongs to the session it was asked of: another sign-in in the same
/// browser cannot use it.
#[test]
fn issue9_a_consent_value_is_refused_for_another_session() {
    let client = create_oidc_client(json!({"skip_consent": false}));
    let user = create_user(json!({}));
    let browser = Browser::new();
    let pkce = Pkce::s256();
    let resp = browser.authorize(&request(&client, &pkce));
    let sealed = login_value(&browser, &resp);
    let resp = browser.post_form(
        "/login",
        &[
            ("request", &sealed),
            ("identifier", &user.username),
            ("password", &user.password),
        ],
    );
    let loc = resp.header("location").unwrap().to_owned();
    assert!(loc.contains("/consent?request="), "{loc}");
    let page = browser.get(&loc);
    let consent_value = form_with_action(&page.text(), "/consent")
        .expect("a consent form")
        .value("request")
        .unwrap()
        .to_owned();
    browser.drop_cookie("edgeid_session");
    let resp = browser.authorize(&request(&client, &pkce));
    let sealed = login_value(&browser, &resp);
    let _ = browser.post_form(
        "/login",
        &[
            ("request", &sealed),
            ("identifier", &user.username),
            ("password", &user.password),
        ],
    );
    let resp = post_consent(&browser, &consent_value);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(!gives_code(&resp));
}

/// A password-only session of a user who then turns TOTP on no longer completes a request.
#[test]
fn issue9_a_session_without_the_second_factor_is_sent_back_to_sign_in() {
    let client = create_oidc_client(json!({"skip_consent": true}));
    let user = create_user(json!({}));
    let browser = Browser::new();
    let _ = code_flow(&browser, &client, &user, "openid");
    let _secret = enrol(&Browser::new(), &user);
    let pkce = Pkce::s256();
    let resp = browser.authorize(&request(&client, &pkce));
    assert!(!gives_code(&resp));
    let _ = login_value(&browser, &resp);
    let resp = browser.authorize(&request(&client, &pkce).set("prompt", "none"));
    assert_eq!(callback_of(&resp).unwrap().error(), "login_required");
}

fn reset_link(user: &User) -> String {
    let resp = admin(
        "POST",
        &format!("/users/{}/recovery", user.id),
        Some(json!({"purpose": "reset"})),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()["link"].as_str().unwrap().to_owned()
}

/// A recovery link of a user with TOTP asks for the code before the link is used and before
/// any session exists; the session it then starts carries the second factor.
#[test]
fn issue9_a_recovery_link_does_not_skip_the_second_factor() {
    let client = create_oidc_client(json!({"skip_consent": true}));
    let user = create_user(json!({}));
    let secret = enrol(&Browser::new(), &user);
    let browser = Browser::new();
    let page = browser.get(&reset_link(&user));
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        form_with_action(&page.text(), "/recovery/password")
            .unwrap()
            .has_field("code"),
        "the form asks for the code"
    );
    let new_password = "a brand new long passphrase";
    let set = |code: &str| {
        submit(
            &browser,
            &page,
            "/recovery/password",
            &[
                ("password", new_password),
                ("confirm", new_password),
                ("code", code),
            ],
        )
    };
    let resp = set(&wrong_code(&secret));
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(!sets_session(&resp));
    let resp = set("");
    assert!(!sets_session(&resp), "no code, no session");
    let resp = set(&next_code(&secret));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(sets_session(&resp));
    let pkce = Pkce::s256();
    let resp = browser.authorize(&request(&client, &pkce));
    assert!(
        gives_code(&resp),
        "the session has amr otp: {:?}",
        resp.headers
    );
}

/// Login CSRF: the set-password form of a link opened in one browser cannot be posted from
/// another (the attacker's own link into the victim's browser).
#[test]
fn issue9_a_recovery_form_is_bound_to_the_browser_that_opened_it() {
    let user = create_user(json!({}));
    let attacker = Browser::new();
    let page = attacker.get(&reset_link(&user));
    let form = form_with_action(&page.text(), "/recovery/password").expect("a form");
    let mut pairs: Vec<(String, String)> = form.hidden().into_iter().collect();
    pairs.push(("password".into(), "a brand new long passphrase".into()));
    pairs.push(("confirm".into(), "a brand new long passphrase".into()));
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let victim = Browser::new();
    let resp = victim.post_form("/recovery/password", &pairs);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(!sets_session(&resp));
    // The link still works in the browser that opened it.
    let resp = attacker.post_form("/recovery/password", &pairs);
    assert_eq!(resp.status, 200, "{}", resp.text());
}
