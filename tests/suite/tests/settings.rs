//! The settings page and the TOTP second factor, black-box (issue 4): enrolment stores TOTP
//! only with a correct code, sign-in then asks for a code and the ID token says `amr`
//! ["pwd","otp"], a replayed code and a used recovery code are refused, ending another session
//! kills its cookie, revoking a connected app asks for consent again and kills its refresh
//! token, a password change follows the recent-login rule, and a form without its CSRF token
//! is refused with 403. The codes are computed here (RFC 6238), not by the provider.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::Resp;
use edgeid_suite::oidc::{
    Browser, OidcClient, Pkce, User, callback_of, code_flow, create_oidc_client, create_user,
    html_unescape, oauth_error, verify_id_token,
};
use edgeid_suite::second_factor::{base32_decode, hotp, step_now, submit};
use edgeid_suite::serde_json::json;

/// Signs in at the settings page's own form; answers the settings page.
fn settings_login(browser: &Browser, user: &User) -> Resp {
    let page = browser.get("/settings");
    assert_eq!(page.status, 200);
    let resp = submit(
        browser,
        &page,
        "/settings/login",
        &[("identifier", &user.username), ("password", &user.password)],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    settings(browser)
}

fn settings(browser: &Browser) -> Resp {
    let page = browser.get("/settings");
    assert_eq!(page.status, 200);
    page
}

fn signed_in(browser: &Browser) -> bool {
    let page = browser.get("/settings");
    page.text().contains("Your account")
}

/// A settings form submitted from a fresh copy of the page (its CSRF token included).
fn settings_post(browser: &Browser, action: &str, pairs: &[(&str, &str)]) -> Resp {
    let page = settings(browser);
    submit(browser, &page, action, pairs)
}

/// Authorize → password form → (the second-factor form when TOTP is on): answers the
/// second-factor page.
fn password_step(
    browser: &Browser,
    client: &OidcClient,
    user: &User,
) -> (Resp, Pkce, edgeid_suite::oidc::AuthRequest) {
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("scope", "openid profile")
        .pkce(&pkce);
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = browser.get(resp.header("location").unwrap());
    let resp = submit(
        browser,
        &page,
        "/login",
        &[("identifier", &user.username), ("password", &user.password)],
    );
    (resp, pkce, req)
}

#[test]
fn totp_enrolment_login_amr_replay_recovery_code_and_removal() {
    let user = create_user(json!({}));
    let client = create_oidc_client(json!({}));
    let b = Browser::new();
    settings_login(&b, &user);

    // Enrolment page: a QR code inline and the key.
    let page = b.get("/settings/totp");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("<svg"), "QR code rendered inline");
    let start = html.find("<code class=\"secret\">").unwrap() + "<code class=\"secret\">".len();
    let end = html[start..].find("</code>").unwrap() + start;
    let secret = base32_decode(&html_unescape(&html[start..end]));
    assert_eq!(secret.len(), 20);

    // A wrong code stores nothing: sign-in still needs only the password.
    let t = step_now();
    let wrong = if hotp(&secret, t) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let resp = submit(&b, &page, "/settings/totp", &[("code", wrong)]);
    assert_eq!(resp.status, 400);
    let fresh = Browser::new();
    let (resp, _, _) = password_step(&fresh, &client, &user);
    assert!(
        callback_of(&resp).is_some(),
        "no second step before enrolment"
    );

    // The right code turns it on and shows 10 recovery codes.
    let t = step_now();
    let resp = submit(&b, &page, "/settings/totp", &[("code", &hotp(&secret, t))]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let codes: Vec<String> = resp
        .text()
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);

    // Sign-in now asks for a code; the next step's code (one step of drift) is accepted.
    let c = Browser::new();
    let (page, pkce, req) = password_step(&c, &client, &user);
    assert_eq!(page.status, 200);
    assert!(
        c.cookie("edgeid_session").is_none(),
        "no session before the code"
    );
    let wrong = submit(&c, &page, "/login/totp", &[("code", "000000x")]);
    assert_eq!(wrong.status, 401);
    let code = hotp(&secret, t + 1);
    let resp = submit(&c, &page, "/login/totp", &[("code", &code)]);
    let cb = callback_of(&resp).unwrap_or_else(|| panic!("{} {}", resp.status, resp.text()));
    let tokens = client.exchange(&cb.code(&req), Some(&pkce.verifier)).json();
    let claims = verify_id_token(tokens["id_token"].as_str().unwrap(), &client, req.nonce());
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["sub"], user.id.as_str());

    // The same code in another browser: a replay.
    let d = Browser::new();
    let (page, _, _) = password_step(&d, &client, &user);
    let resp = submit(&d, &page, "/login/totp", &[("code", &code)]);
    assert_eq!(resp.status, 401);
    assert!(d.cookie("edgeid_session").is_none());

    // A recovery code works once.
    let e = Browser::new();
    let (page, _, _) = password_step(&e, &client, &user);
    let resp = submit(&e, &page, "/login/totp", &[("code", &codes[3])]);
    assert!(
        callback_of(&resp).is_some(),
        "{} {}",
        resp.status,
        resp.text()
    );
    let f = Browser::new();
    let (page, _, _) = password_step(&f, &client, &user);
    assert_eq!(
        submit(&f, &page, "/login/totp", &[("code", &codes[3])]).status,
        401
    );

    // Turning it off needs the password (or a code).
    let resp = settings_post(
        &b,
        "/settings/totp/remove",
        &[("totp_confirm", "not-my-password")],
    );
    assert_eq!(resp.status, 401);
    let resp = settings_post(
        &b,
        "/settings/totp/remove",
        &[("totp_confirm", &user.password)],
    );
    assert_eq!(resp.status, 303);
    let g = Browser::new();
    let (resp, _, _) = password_step(&g, &client, &user);
    assert!(callback_of(&resp).is_some(), "password alone again");
}

#[test]
fn sessions_connected_apps_password_and_csrf() {
    let user = create_user(json!({}));
    let client = create_oidc_client(json!({"skip_consent": false, "client_name": "Suite <RP>"}));
    let a = Browser::new();
    let flow = code_flow(&a, &client, &user, "openid profile offline_access");
    let refresh = flow.refresh_token().to_owned();
    let b = Browser::new();
    let page = settings_login(&b, &user);
    let html = page.text();
    assert!(html.contains("(this session)"));
    assert!(
        html.contains("Suite &lt;RP&gt;"),
        "connected app listed by name"
    );

    // CSRF: no token, or a forged one, is refused and changes nothing.
    let resp = b.post_form(
        "/settings/profile",
        &[("name", "Mallory"), ("username", "mallory")],
    );
    assert_eq!(resp.status, 403);
    let resp = b.post_form(
        "/settings/profile",
        &[
            ("csrf", &"0".repeat(64)),
            ("name", "Mallory"),
            ("username", "mallory"),
        ],
    );
    assert_eq!(resp.status, 403);
    assert!(!settings(&b).text().contains("Mallory"));

    // End the other session: its cookie no longer signs anyone in.
    assert!(signed_in(&a));
    let resp = settings_post(&b, "/settings/sessions/end", &[("others", "1")]);
    assert_eq!(resp.status, 303);
    assert!(!signed_in(&a));
    assert!(signed_in(&b));

    // Revoke the app: consent is asked again and its refresh token is dead.
    let resp = settings_post(&b, "/settings/apps/revoke", &[("client_id", &client.id)]);
    assert_eq!(resp.status, 303);
    let req = client
        .auth_request()
        .set("scope", "openid profile offline_access")
        .set("prompt", "none")
        .pkce(&Pkce::s256());
    let cb = callback_of(&b.authorize(&req)).expect("a response to the client");
    assert_eq!(cb.error(), "consent_required");
    assert_eq!(oauth_error(&client.refresh(&refresh)), "invalid_grant");

    // Password: just signed in, so the current one is not needed; a wrong one still fails.
    let resp = settings_post(
        &b,
        "/settings/password",
        &[
            ("current_password", "not-my-password"),
            ("new_password", "a-new-password-1"),
            ("confirm_password", "a-new-password-1"),
        ],
    );
    assert_eq!(resp.status, 401);
    let resp = settings_post(
        &b,
        "/settings/password",
        &[
            ("new_password", "a-new-password-1"),
            ("confirm_password", "a-new-password-1"),
        ],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    let c = Browser::new();
    settings_login(
        &c,
        &User {
            password: "a-new-password-1".into(),
            ..user.clone()
        },
    );

    // Username taken: the error is tied to the field.
    let other = create_user(json!({}));
    let resp = settings_post(
        &b,
        "/settings/profile",
        &[("name", "Ada"), ("username", &other.username)],
    );
    assert_eq!(resp.status, 409);
    assert!(
        resp.text()
            .contains("aria-describedby=\"username-hint username-error\"")
    );
}
