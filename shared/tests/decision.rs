//! Issue 9, item 1: one decision for "may this session complete this authorization request",
//! attacked in memory. Each test takes the value one page minted and tries to reach a code
//! through another page, or a session one path refused through another.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The sealed request on the login page an authorize response points to.
fn login_page_value(browser: &Browser<'_>, at: &Response) -> String {
    let loc = location(at);
    assert!(loc.contains("/login?request="), "sent to login: {loc}");
    let page = browser.get(&loc);
    assert_eq!(page.status(), 200, "{}", text(&page));
    input(&text(&page), "request")
}

/// Whether a response hands the browser a code (a redirect to the client with `code`).
fn has_code(resp: &Response) -> bool {
    resp.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.starts_with(CB) && l.contains("code="))
        || text(resp).contains("name=\"code\"")
}

fn sets_session(resp: &Response) -> bool {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .any(|c| c.starts_with("__Host-edgeid_session=") && !c.contains("Max-Age=0"))
}

fn no_role_app(host: &MemoryHost) {
    let resp = admin(
        host,
        "POST",
        "/admin/apps",
        json!({"slug": "ext-rp", "name": "The RP", "url": "https://rp.example.test", "client_id": "rp"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
}

#[test]
fn issue9_role_gate_refusal_hands_out_no_session_and_consent_refuses_the_login_value() {
    let (host, _) = setup(json!({}));
    no_role_app(&host);
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let sealed = login_page_value(&browser, &resp);
    let resp = browser.post(
        "/login",
        &form(&[
            ("request", &sealed),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert_eq!(resp.status(), 403, "{}", text(&resp));
    assert!(!sets_session(&resp), "a refusal page sets no session");
    // The reproduction: the same sealed request posted to /consent.
    for (method, body) in [
        (
            "POST",
            Some(form(&[("request", &sealed), ("decision", "allow")])),
        ),
        ("GET", None),
    ] {
        let uri = match body {
            Some(_) => "/consent".to_owned(),
            None => format!("/consent?request={sealed}"),
        };
        let resp = browser.request(method, &uri, body.as_deref());
        assert!(
            !has_code(&resp),
            "{method} /consent gave a code: {:?}",
            resp
        );
        assert_eq!(resp.status(), 400, "{}", text(&resp));
    }
}

#[test]
fn issue9_a_consent_value_of_a_session_with_the_role_is_refused_once_the_role_is_gone() {
    let (host, _) = setup(json!({}));
    no_role_app(&host);
    let put = admin(
        &host,
        "PUT",
        "/admin/users/alice/roles/ext-rp/user",
        json!({}),
    );
    assert_eq!(put.status(), 204, "{}", text(&put));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let consent_at = location(&resp);
    assert!(consent_at.contains("/consent?request="), "{consent_at}");
    let sealed = input(&text(&browser.get(&consent_at)), "request");
    let del = admin(
        &host,
        "DELETE",
        "/admin/users/alice/roles/ext-rp/user",
        json!({}),
    );
    assert_eq!(del.status(), 204);
    let resp = browser.post(
        "/consent",
        &form(&[("request", &sealed), ("decision", "allow")]),
    );
    assert_eq!(resp.status(), 403, "{}", text(&resp));
    assert!(!has_code(&resp));
}

#[test]
fn issue9_step_up_cannot_be_walked_around_through_consent() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let _ = first_login(&host, &browser);
    host.clock.advance(600);
    for extra in ["&max_age=60", "&prompt=login", "&prompt=select_account"] {
        let resp = browser.get(&authorize_url(extra));
        let sealed = login_page_value(&browser, &resp);
        let resp = browser.post(
            "/consent",
            &form(&[("request", &sealed), ("decision", "allow")]),
        );
        assert!(!has_code(&resp), "{extra}: consent issued a code");
        assert_eq!(resp.status(), 400, "{extra}: {}", text(&resp));
    }
    // The step-up done properly yields a new auth_time.
    let resp = browser.get(&authorize_url("&max_age=60"));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let id = claims(json_of(&redeem(&host, &code))["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], 1_700_000_600);
}

#[test]
fn issue9_an_id_token_hint_for_another_user_is_not_skipped() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let resp = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "bob@example.com", "username": "bob", "password": "builder-of-things-7"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    // Bob's ID token, then Alice's session presenting it as a hint.
    let bob = Browser::new(&host);
    let resp = bob.get(&authorize_url(""));
    let resp = bob.login(&resp, "bob", "builder-of-things-7");
    let bob_id = json_of(&redeem(&host, &callback(&resp)["code"]))["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = Browser::new(&host);
    let resp = alice.get(&authorize_url(""));
    let resp = alice.login(&resp, "alice", "wonderland-42");
    assert!(callback(&resp).contains_key("code"));
    let hinted = authorize_url(&format!("&id_token_hint={bob_id}"));
    let resp = alice.get(&(hinted.clone() + "&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
    let resp = alice.get(&hinted);
    let sealed = login_page_value(&alice, &resp);
    let resp = alice.post(
        "/consent",
        &form(&[("request", &sealed), ("decision", "allow")]),
    );
    assert!(!has_code(&resp));
    // Signing in as Alice again does not satisfy a hint for Bob: an error, no session.
    let resp = alice.post(
        "/login",
        &form(&[
            ("request", &sealed),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert_eq!(callback(&resp)["error"], "login_required");
    assert!(!sets_session(&resp));
}

#[test]
fn issue9_a_consent_value_is_bound_to_the_session_it_was_asked_of() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let sealed = input(&text(&browser.get(&location(&resp))), "request");
    // Another sign-in in this browser: the old consent value belongs to the old session.
    browser.cookies.borrow_mut().remove("__Host-edgeid_session");
    let resp = browser.get(&authorize_url(""));
    let _ = browser.login(&resp, "alice", "wonderland-42");
    let resp = browser.post(
        "/consent",
        &form(&[("request", &sealed), ("decision", "allow")]),
    );
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert!(!has_code(&resp));
}

#[test]
fn issue9_prompt_none_never_shows_a_page() {
    let (host, _) = setup(json!({"skip_consent": true}));
    no_role_app(&host);
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
    // A session of a user without a role: access_denied to the client, not a page.
    let settings = browser.get("/settings");
    let csrf = input(&text(&settings), "csrf");
    let resp = browser.post(
        "/settings/login",
        &form(&[
            ("csrf", &csrf),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "access_denied");
    let resp = browser.get(&authorize_url(""));
    assert_eq!(resp.status(), 403);
}

/// Enrols TOTP for `sub` directly through the core (as the settings page does on confirm).
fn enrol_totp(host: &MemoryHost, sub: &str) -> Vec<u8> {
    let secret = b"12345678901234567890".to_vec();
    let now = host.clock.get();
    let step = edgeid::totp::step(now) - 2;
    let codes = vec!["aaaa-bbbb-cccc".to_owned()];
    assert!(block_on(edgeid::totp::enroll(host, sub, &secret, step, &codes, now)).unwrap());
    secret
}

fn code_now(host: &MemoryHost, secret: &[u8]) -> String {
    edgeid::totp::code_at(secret, edgeid::totp::step(host.clock.get()))
}

#[test]
fn issue9_a_session_without_the_second_factor_is_not_accepted_once_totp_is_on() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert!(callback(&resp).contains_key("code"));
    // TOTP turned on elsewhere: this password-only session no longer completes a request.
    let _ = enrol_totp(&host, &sub);
    let resp = browser.get(&authorize_url(""));
    assert!(
        location(&resp).contains("/login?request="),
        "{}",
        location(&resp)
    );
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
}

/// A recovery link of a user with TOTP asks for the code before the link is used and before
/// any session exists; with the code, the session carries `otp`.
#[test]
fn issue9_a_recovery_link_does_not_skip_the_second_factor() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let secret = enrol_totp(&host, &sub);
    let resp = admin(
        &host,
        "POST",
        "/admin/users/alice/recovery",
        json!({"purpose": "reset"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let link = json_of(&resp)["link"].as_str().unwrap().to_owned();
    let token = link.split_once("token=").unwrap().1.to_owned();
    let browser = Browser::new(&host);
    let page = browser.get(&link);
    assert_eq!(page.status(), 200, "{}", text(&page));
    assert!(
        text(&page).contains("name=\"code\""),
        "the form asks for the code"
    );
    let value = input(&text(&page), "form");
    let post = |code: &str| {
        browser.post(
            "/recovery/password",
            &form(&[
                ("token", &token),
                ("form", &value),
                ("password", "a new long passphrase"),
                ("confirm", "a new long passphrase"),
                ("code", code),
            ]),
        )
    };
    let resp = post("000000");
    assert_eq!(resp.status(), 401, "{}", text(&resp));
    assert!(!sets_session(&resp));
    let phc = block_on(edgeid::user::password_hash(&host.credentials, &sub)).unwrap();
    assert!(
        edgeid::user::verify_password(&phc.unwrap(), "wonderland-42"),
        "a wrong code leaves the password and the link alone"
    );
    let resp = post(&code_now(&host, &secret));
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(sets_session(&resp));
    // That session completes a request: it has the second factor.
    let resp = browser.get(&authorize_url(""));
    assert!(callback(&resp).contains_key("code"), "{}", location(&resp));
}

#[test]
fn issue9_a_recovery_form_cannot_be_posted_from_another_browser() {
    let (host, _) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/users/alice/recovery",
        json!({"purpose": "reset"}),
    );
    let link = json_of(&resp)["link"].as_str().unwrap().to_owned();
    let token = link.split_once("token=").unwrap().1.to_owned();
    // The attacker opened the link in their browser; the victim's browser posts it.
    let attacker = Browser::new(&host);
    let page = attacker.get(&link);
    let value = input(&text(&page), "form");
    let victim = Browser::new(&host);
    let resp = victim.post(
        "/recovery/password",
        &form(&[
            ("token", &token),
            ("form", &value),
            ("password", "a new long passphrase"),
            ("confirm", "a new long passphrase"),
        ]),
    );
    assert_eq!(resp.status(), 403, "{}", text(&resp));
    assert!(!sets_session(&resp));
}

/// Signs in at the settings page's own form (password only: the user has no TOTP yet).
fn settings_sign_in(browser: &Browser<'_>) {
    let page = browser.get("/settings");
    let resp = browser.post(
        "/settings/login",
        &form(&[
            ("csrf", &input(&text(&page), "csrf")),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
}

/// Enrolling a second factor needs a recent sign-in or the password typed now; a session
/// that predates the enrolment no longer reaches the settings; removing the factor with the
/// password alone needs a recent session that used the factor.
#[test]
fn issue9_second_factor_changes_need_a_recent_authentication() {
    let (host, sub) = setup(json!({}));
    let browser = Browser::new(&host);
    settings_sign_in(&browser);
    let old_session = Browser::new(&host);
    settings_sign_in(&old_session);
    host.clock.advance(600);
    let page = browser.get("/settings/totp");
    assert_eq!(page.status(), 200);
    assert!(text(&page).contains("name=\"current_password\""));
    let html = text(&page);
    let start = html.find("<code class=\"secret\">").unwrap() + "<code class=\"secret\">".len();
    let end = html[start..].find("</code>").unwrap() + start;
    let key: String = html[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let secret = base32_decode(&key);
    let confirm = |password: &str| {
        browser.post(
            "/settings/totp",
            &form(&[
                ("csrf", &input(&html, "csrf")),
                ("pending", &input(&html, "pending")),
                ("code", &code_now(&host, &secret)),
                ("current_password", password),
            ]),
        )
    };
    let resp = confirm("");
    assert_eq!(resp.status(), 401, "{}", text(&resp));
    assert!(block_on(edgeid::totp::load(&host, &sub)).unwrap().is_none());
    let resp = confirm("wonderland-42");
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(block_on(edgeid::totp::load(&host, &sub)).unwrap().is_some());
    // The other browser's password-only session is signed out of the settings.
    let page = old_session.get("/settings");
    assert!(
        text(&page).contains("action=\"/settings/login\""),
        "{}",
        text(&page)
    );
    // This session proved the factor at enrolment, but it is not recent: the password alone
    // does not turn the factor off.
    let settings = browser.get("/settings");
    assert_eq!(settings.status(), 200);
    let resp = browser.post(
        "/settings/totp/remove",
        &form(&[
            ("csrf", &input(&text(&settings), "csrf")),
            ("totp_confirm", "wonderland-42"),
        ]),
    );
    assert_eq!(resp.status(), 401, "{}", text(&resp));
    assert!(block_on(edgeid::totp::load(&host, &sub)).unwrap().is_some());
}
