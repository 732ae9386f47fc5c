//! Credential changes end what they should (issue 9, item 4), black-box: an attacker who holds
//! another session, a refresh token, an access token, an unredeemed code or an open recovery
//! link of a user keeps none of them once the password changes — on the settings page (the
//! changing session stays), through a reset link (its new session is the only one) or by an
//! admin (`PUT /admin/users/{user}/password`, nothing stays). A code issued before its grant
//! was revoked (the user revoked the app, an admin disabled the user) redeems to
//! `invalid_grant`; a client deleted and registered again under the same id inherits no
//! consent and no token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::oidc::{
    AuthRequest, Browser, CodeFlow, OidcClient, Pkce, User, callback_of, code_flow,
    create_oidc_client, create_user, drive, login_flow, oauth_error, userinfo_get,
};
use edgeid_suite::second_factor::submit;
use edgeid_suite::serde_json::json;
use edgeid_suite::{Resp, admin, unique};

const SCOPE: &str = "openid profile offline_access";

/// Signs `browser` in at the settings page's own form.
fn settings_login(browser: &Browser, user: &User) {
    let page = browser.get("/settings");
    assert_eq!(page.status, 200);
    let resp = submit(
        browser,
        &page,
        "/settings/login",
        &[("identifier", &user.username), ("password", &user.password)],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
}

fn signed_in_at_settings(browser: &Browser) -> bool {
    browser.get("/settings").text().contains("Your account")
}

/// A settings form submitted from a fresh copy of the page (its CSRF token included).
fn settings_post(browser: &Browser, action: &str, pairs: &[(&str, &str)]) -> Resp {
    let page = browser.get("/settings");
    assert_eq!(page.status, 200);
    submit(browser, &page, action, pairs)
}

/// Whether `browser`'s session still completes an authorization request without a login
/// (`prompt=none`, OIDC Core §3.1.2.1).
fn session_alive(browser: &Browser, client: &OidcClient) -> bool {
    let req = client
        .auth_request()
        .set("prompt", "none")
        .pkce(&Pkce::s256());
    let cb = callback_of(&browser.authorize(&req)).expect("a response to the client");
    match cb.param("error") {
        None => true,
        Some("login_required") => false,
        Some(other) => panic!("prompt=none answered {other}"),
    }
}

/// A code for a browser that is signed in already (no login form expected), not redeemed.
fn pending_code(browser: &Browser, client: &OidcClient) -> (String, Pkce) {
    let pkce = Pkce::s256();
    let req = client.auth_request().set("scope", SCOPE).pkce(&pkce);
    let flow = drive(browser, browser.authorize(&req), None, "allow");
    (flow.callback.code(&req), pkce)
}

/// An admin-issued reset link.
fn reset_link(user: &User) -> String {
    let resp = admin(
        "POST",
        &format!("/users/{}/recovery", user.id),
        Some(json!({"purpose": "reset"})),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()["link"].as_str().unwrap().to_owned()
}

/// Opens `link` in `browser` and sets `password` through its form.
fn use_link(browser: &Browser, link: &str, password: &str) -> Resp {
    let page = browser.get(link);
    assert_eq!(page.status, 200, "{}", page.text());
    submit(
        browser,
        &page,
        "/recovery/password",
        &[("password", password), ("confirm", password)],
    )
}

/// What a second party (the attacker) holds of `user`: a signed-in browser, a refresh token,
/// an access token, a code not yet redeemed, and an open reset link.
struct Held {
    browser: Browser,
    flow: CodeFlow,
    code: (String, Pkce),
    link: String,
}

fn hold(client: &OidcClient, user: &User) -> Held {
    let browser = Browser::new();
    let flow = code_flow(&browser, client, user, SCOPE);
    assert_eq!(userinfo_get(flow.access_token()).status, 200);
    let code = pending_code(&browser, client);
    assert!(session_alive(&browser, client));
    Held {
        browser,
        flow,
        code,
        link: reset_link(user),
    }
}

/// Everything `held` had is dead.
fn all_dead(held: &Held, client: &OidcClient) {
    assert!(!session_alive(&held.browser, client), "the session ended");
    assert!(!signed_in_at_settings(&held.browser));
    assert_eq!(
        oauth_error(&client.refresh(held.flow.refresh_token())),
        "invalid_grant",
        "the refresh token is revoked"
    );
    assert_eq!(
        userinfo_get(held.flow.access_token()).status,
        401,
        "the access token is no longer accepted"
    );
    let resp = client.exchange(&held.code.0, Some(&held.code.1.verifier));
    assert_eq!(
        oauth_error(&resp),
        "invalid_grant",
        "the pending code is dead"
    );
    assert_eq!(
        Browser::new().get(&held.link).status,
        410,
        "the open recovery link died"
    );
}

fn new_password() -> String {
    format!("{}-New!", unique("pw"))
}

#[test]
fn issue9_a_settings_password_change_ends_other_sessions_and_kills_refresh_tokens() {
    let mut user = create_user(json!({}));
    let client = create_oidc_client(json!({}));
    let held = hold(&client, &user);

    let me = Browser::new();
    settings_login(&me, &user);
    let mine = code_flow(&me, &client, &user, SCOPE);
    let password = new_password();
    let resp = settings_post(
        &me,
        "/settings/password",
        &[("new_password", &password), ("confirm_password", &password)],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());

    all_dead(&held, &client);
    assert!(signed_in_at_settings(&me), "the changing session stays");
    assert!(session_alive(&me, &client));
    assert_eq!(
        oauth_error(&client.refresh(mine.refresh_token())),
        "invalid_grant",
        "every grant is revoked, this session's too (its apps sign in again silently)"
    );
    user.password = password;
    code_flow(&Browser::new(), &client, &user, SCOPE);
}

#[test]
fn issue9_a_reset_through_a_recovery_link_leaves_its_new_session_the_only_one() {
    let mut user = create_user(json!({}));
    let client = create_oidc_client(json!({}));
    let held = hold(&client, &user);
    let also_signed_in = Browser::new();
    settings_login(&also_signed_in, &user);

    let me = Browser::new();
    let password = new_password();
    let resp = use_link(&me, &reset_link(&user), &password);
    assert_eq!(resp.status, 200, "{}", resp.text());

    all_dead(&held, &client);
    assert!(!signed_in_at_settings(&also_signed_in));
    assert!(session_alive(&me, &client), "the reset signs in");
    let page = me.get("/settings").text();
    assert_eq!(
        page.matches("<li><span>Signed in ").count(),
        1,
        "one session is listed: {page}"
    );
    assert!(page.contains("(this session)"));
    assert_eq!(
        page.matches("name=\"sid\"").count(),
        0,
        "no other session is left to end: {page}"
    );
    user.password = password;
    code_flow(&Browser::new(), &client, &user, SCOPE);
}

#[test]
fn issue9_an_admin_set_password_ends_all_sessions_and_tokens() {
    let mut user = create_user(json!({}));
    let client = create_oidc_client(json!({}));
    let held = hold(&client, &user);
    let own = Browser::new();
    settings_login(&own, &user);

    let password = new_password();
    let resp = admin(
        "PUT",
        &format!("/users/{}/password", user.id),
        Some(json!({ "password": password })),
    );
    assert_eq!(resp.status, 204, "{}", resp.text());

    all_dead(&held, &client);
    assert!(!signed_in_at_settings(&own), "no session is kept");
    user.password = password;
    code_flow(&Browser::new(), &client, &user, SCOPE);
}

#[test]
fn issue9_a_recovery_link_is_unusable_after_a_password_change() {
    let user = create_user(json!({}));
    let link = reset_link(&user);
    let me = Browser::new();
    settings_login(&me, &user);
    let password = new_password();
    let resp = settings_post(
        &me,
        "/settings/password",
        &[("new_password", &password), ("confirm_password", &password)],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    // Neither opening the link nor posting its form sets anything.
    let attacker = Browser::new();
    assert_eq!(attacker.get(&link).status, 410);
    let token = link.split_once("token=").unwrap().1;
    let resp = attacker.post_form(
        "/recovery/password",
        &[
            ("token", token),
            ("password", "attacker-chosen-9"),
            ("confirm", "attacker-chosen-9"),
        ],
    );
    assert!(
        resp.status >= 400,
        "a dead link sets nothing: {}",
        resp.status
    );
    assert!(
        attacker
            .cookie("edgeid_session")
            .is_none_or(|c| c.is_empty())
    );
    let stale = User {
        password: "attacker-chosen-9".into(),
        ..user.clone()
    };
    let page = Browser::new().get("/settings");
    let resp = submit(
        &Browser::new(),
        &page,
        "/settings/login",
        &[
            ("identifier", &stale.username),
            ("password", &stale.password),
        ],
    );
    assert_ne!(resp.status, 303, "the attacker's password was not set");
}

#[test]
fn issue9_a_code_issued_before_its_grant_was_revoked_fails_with_invalid_grant() {
    let user = create_user(json!({}));
    let client = create_oidc_client(json!({"skip_consent": false}));

    // The user revokes the app on the settings page while a code is in flight.
    let b = Browser::new();
    let pkce = Pkce::s256();
    let req = client.auth_request().set("scope", SCOPE).pkce(&pkce);
    let code = login_flow(&b, &req, &user).callback.code(&req);
    let resp = settings_post(&b, "/settings/apps/revoke", &[("client_id", &client.id)]);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let resp = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "invalid_grant");

    // An admin disables the user while a code is in flight; enabling does not revive it.
    let b = Browser::new();
    let pkce = Pkce::s256();
    let req = client.auth_request().set("scope", SCOPE).pkce(&pkce);
    let code = login_flow(&b, &req, &user).callback.code(&req);
    let path = |action: &str| format!("/users/{}/{action}", user.id);
    assert_eq!(admin("POST", &path("disable"), None).status, 204);
    assert_eq!(
        oauth_error(&client.exchange(&code, Some(&pkce.verifier))),
        "invalid_grant"
    );
    assert_eq!(admin("POST", &path("enable"), None).status, 204);
    assert_eq!(
        oauth_error(&client.exchange(&code, Some(&pkce.verifier))),
        "invalid_grant"
    );

    // A code whose grant stands redeems.
    let flow = code_flow(&Browser::new(), &client, &user, SCOPE);
    assert!(flow.tokens["access_token"].is_string());
}

#[test]
fn issue9_a_client_deleted_and_registered_again_inherits_nothing() {
    let user = create_user(json!({}));
    let client = create_oidc_client(json!({"skip_consent": false}));
    let b = Browser::new();
    let flow = code_flow(&b, &client, &user, SCOPE);
    assert!(flow.flow.saw_consent());
    // Consent is remembered: another code without the consent page.
    let pkce = Pkce::s256();
    let req: AuthRequest = client.auth_request().set("scope", SCOPE).pkce(&pkce);
    let again = drive(&b, b.authorize(&req), None, "allow");
    assert!(!again.saw_consent());
    let pending = again.callback.code(&req);

    assert_eq!(
        admin("DELETE", &format!("/clients/{}", client.id), None).status,
        204
    );
    // The same id, secret and redirect URIs again.
    let same = create_oidc_client(json!({
        "client_id": client.id, "client_secret": client.secret,
        "redirect_uris": [client.redirect_uri],
        "post_logout_redirect_uris": [client.post_logout_redirect_uri],
        "skip_consent": false,
    }));
    assert_eq!(same.id, client.id);

    assert_eq!(
        oauth_error(&client.refresh(flow.refresh_token())),
        "invalid_grant",
        "the old client's refresh token does not work for the new one"
    );
    assert_eq!(
        oauth_error(&client.exchange(&pending, Some(&pkce.verifier))),
        "invalid_grant",
        "nor its code"
    );
    assert_eq!(
        userinfo_get(flow.access_token()).status,
        401,
        "nor its access token"
    );
    let req = client
        .auth_request()
        .set("scope", SCOPE)
        .set("prompt", "none")
        .pkce(&Pkce::s256());
    let cb = callback_of(&b.authorize(&req)).expect("a response to the client");
    assert_eq!(cb.error(), "consent_required", "consent is asked again");
    let flow = code_flow(&b, &client, &user, SCOPE);
    assert!(flow.flow.saw_consent());
}
