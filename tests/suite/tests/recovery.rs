//! Recovery links, black-box (issue 4): the admin API's welcome link lets a new user set a
//! password, which signs them in and lets them sign in at a relying party; links are single
//! use; the forgot page answers the same whether or not the account exists (the hosts run
//! without a mail API here, so it mails nothing either way); the login page links to it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::oidc::{
    Browser, Pkce, code_flow, create_oidc_client, create_user, follow_and_set, form_with_action,
    unverified_claims,
};
use edgeid_suite::serde_json::json;
use edgeid_suite::{admin, unique};

const SCOPE: &str = "openid profile email";

#[test]
fn a_welcome_link_sets_the_password_signs_in_and_works_once() {
    let mut user = create_user(json!({"password": null, "email_verified": false}));
    let resp = admin(
        "POST",
        &format!("/users/{}/recovery", user.username),
        Some(json!({"purpose": "welcome"})),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let issued = resp.json();
    let link = issued["link"].as_str().unwrap().to_owned();
    assert!(link.contains("/recovery?token="), "{link}");
    assert_eq!(issued["purpose"], "welcome");
    assert_eq!(issued["sent"], false);
    let created = user.record["created_at"].as_i64().unwrap();
    let expires_at = issued["expires_at"].as_i64().unwrap();
    assert!(
        (24 * 3600 - 120..=24 * 3600 + 120).contains(&(expires_at - created)),
        "a welcome link lasts 24 hours: {issued}"
    );

    let browser = Browser::new();
    let resp = follow_and_set(&browser, &link, "new password 1", "other password 1");
    assert_eq!(
        resp.status,
        400,
        "mismatched passwords are refused: {}",
        resp.text()
    );
    user.password = format!("{}-Pw!", unique("new"));
    let resp = follow_and_set(&browser, &link, &user.password, &user.password);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("Password set"), "{}", resp.text());
    assert!(resp.text().contains("/settings"));
    assert!(
        browser
            .cookie("edgeid_session")
            .is_some_and(|c| !c.is_empty())
    );

    // Used: the link is gone, and the user is verified.
    assert_eq!(Browser::new().get(&link).status, 410);
    let record = admin("GET", &format!("/users/{}", user.id), None).json();
    assert_eq!(record["email_verified"], true);

    // The new password signs in at a relying party.
    let client = create_oidc_client(json!({}));
    let flow = code_flow(&Browser::new(), &client, &user, SCOPE);
    assert_eq!(unverified_claims(flow.id_token())["sub"], user.id.as_str());

    let events = admin("GET", &format!("/audit?subject={}", user.id), None).json();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"recovery.issued") && kinds.contains(&"recovery.used"),
        "{kinds:?}"
    );
}

#[test]
fn a_reset_link_lasts_an_hour_and_a_bad_token_gets_a_clear_page() {
    let user = create_user(json!({}));
    let resp = admin(
        "POST",
        &format!("/users/{}/recovery", user.id),
        Some(json!({})),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let issued = resp.json();
    assert_eq!(issued["purpose"], "reset", "the user has a password");
    let now = issued["expires_at"].as_i64().unwrap() - 3600;
    assert!((now - user.record["created_at"].as_i64().unwrap()).abs() < 600);

    let browser = Browser::new();
    let page = browser.get("/recovery?token=not-a-real-token");
    assert_eq!(page.status, 410);
    assert!(page.text().contains("no longer works"), "{}", page.text());
    let resp = browser.post_form(
        "/recovery/password",
        &[
            ("token", "not-a-real-token"),
            ("password", "whatever 12"),
            ("confirm", "whatever 12"),
        ],
    );
    assert_eq!(resp.status, 410);

    let resp = admin("POST", "/users/no-such-user/recovery", Some(json!({})));
    assert_eq!(resp.status, 404);
}

#[test]
fn the_forgot_page_answers_the_same_for_known_and_unknown_accounts() {
    let user = create_user(json!({}));
    let browser = Browser::new();
    let mut answers = Vec::new();
    for identifier in [
        user.email.clone(),
        format!("{}@example.test", unique("nobody")),
    ] {
        let page = browser.get("/recovery");
        assert_eq!(page.status, 200, "{}", page.text());
        let form = form_with_action(&page.text(), "/recovery").expect("a forgot form");
        let hidden = form.hidden();
        let mut pairs: Vec<(&str, &str)> = hidden
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push(("identifier", &identifier));
        let resp = browser.post_form("/recovery", &pairs);
        assert_eq!(resp.status, 200, "{}", resp.text());
        answers.push(resp.text());
    }
    assert!(
        answers[0].contains("If an account matches"),
        "{}",
        answers[0]
    );
    assert_eq!(answers[0], answers[1]);

    // Without the page's per-browser value, the post is refused.
    let resp = Browser::new().post_form("/recovery", &[("identifier", user.email.as_str())]);
    assert_eq!(resp.status, 403, "{}", resp.text());
}

#[test]
fn the_login_page_links_to_the_forgot_page() {
    let client = create_oidc_client(json!({}));
    let browser = Browser::new();
    let req = client
        .auth_request()
        .set("scope", SCOPE)
        .pkce(&Pkce::s256());
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = browser.get(resp.header("location").unwrap());
    assert!(
        page.text().contains("href=\"/recovery\""),
        "{}",
        page.text()
    );
}
