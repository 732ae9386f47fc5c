//! The settings pages and the TOTP second factor through the router, in memory (issue 4):
//! enrolment, a TOTP login with `amr` ["pwd","otp"], replay and recovery codes, the password
//! change rule, ending sessions, revoking a connected app, and CSRF.
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

/// The secret shown on an enrolment page.
fn shown_secret(html: &str) -> Vec<u8> {
    let start = html.find("<code class=\"secret\">").unwrap() + "<code class=\"secret\">".len();
    let end = html[start..].find("</code>").unwrap() + start;
    base32_decode(&html[start..end])
}

fn now_code(host: &MemoryHost, secret: &[u8]) -> String {
    edgeid::totp::code_at(secret, edgeid::totp::step(host.clock.get()))
}

impl Browser<'_> {
    /// Signs in at the settings page's own form; returns the settings page.
    fn settings_login(&self, identifier: &str, password: &str) -> Response {
        let page = self.get("/settings");
        assert_eq!(page.status(), 200);
        assert!(text(&page).contains("action=\"/settings/login\""));
        let csrf = input(&text(&page), "csrf");
        let resp = self.post(
            "/settings/login",
            &form(&[
                ("csrf", &csrf),
                ("identifier", identifier),
                ("password", password),
            ]),
        );
        assert_eq!(resp.status(), 303, "{}", text(&resp));
        assert_eq!(
            location(&resp),
            format!("{}/settings", edgeid::testing::ISSUER)
        );
        self.settings()
    }

    fn settings(&self) -> Response {
        let page = self.get("/settings");
        assert_eq!(page.status(), 200);
        page
    }

    /// POSTs a settings form with the CSRF token of the current settings page.
    fn settings_post(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let csrf = input(&text(&self.settings()), "csrf");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post(path, &form(&all))
    }

    /// Enrols TOTP; returns the secret and the recovery codes.
    fn enrol(&self, host: &MemoryHost) -> (Vec<u8>, Vec<String>) {
        let page = self.get("/settings/totp");
        assert_eq!(page.status(), 200, "{}", text(&page));
        let html = text(&page);
        assert!(html.contains("<svg"), "QR code inline");
        let secret = shown_secret(&html);
        assert_eq!(secret.len(), 20);
        let resp = self.post(
            "/settings/totp",
            &form(&[
                ("csrf", &input(&html, "csrf")),
                ("pending", &input(&html, "pending")),
                ("code", &now_code(host, &secret)),
            ]),
        );
        assert_eq!(resp.status(), 200, "{}", text(&resp));
        let html = text(&resp);
        let codes: Vec<String> = html
            .split("<li><code>")
            .skip(1)
            .map(|s| s.split("</code>").next().unwrap().to_owned())
            .collect();
        assert_eq!(codes.len(), 10);
        (secret, codes)
    }

    /// Authorize → password → (second-factor page) → submit `code`.
    fn totp_login(&self, password: &str, code: &str) -> Response {
        let resp = self.get(&authorize_url(""));
        let page = self.login(&resp, "alice", password);
        assert_eq!(page.status(), 200, "{}", text(&page));
        assert!(text(&page).contains("action=\"/login/totp\""));
        assert!(!self.cookies.borrow().contains_key("__Host-edgeid_session"));
        self.post(
            "/login/totp",
            &form(&[("pending", &input(&text(&page), "pending")), ("code", code)]),
        )
    }
}

fn totp_stored(host: &MemoryHost, sub: &str) -> bool {
    block_on(edgeid::totp::load(host, sub)).unwrap().is_some()
}

#[test]
fn totp_enrolment_login_amr_replay_and_recovery_codes() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let alice = Browser::new(&host);
    alice.settings_login("alice", "wonderland-42");

    // A wrong code stores nothing.
    let page = alice.get("/settings/totp");
    let html = text(&page);
    let secret = shown_secret(&html);
    let uri_secret = html.contains("otpauth") || html.contains("<svg");
    assert!(uri_secret);
    let wrong = if now_code(&host, &secret) == "000000" {
        "000001"
    } else {
        "000000"
    };
    let resp = alice.post(
        "/settings/totp",
        &form(&[
            ("csrf", &input(&html, "csrf")),
            ("pending", &input(&html, "pending")),
            ("code", wrong),
        ]),
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("aria-describedby=\"code-error\""));
    assert!(!totp_stored(&host, &sub));

    // The right code stores it and shows the recovery codes once.
    let (secret, codes) = alice.enrol(&host);
    assert!(totp_stored(&host, &sub));
    assert!(text(&alice.settings()).contains("10 unused recovery codes"));

    // The code that confirmed enrolment is spent: the login needs the next step's code.
    let other = Browser::new(&host);
    let resp = other.totp_login("wonderland-42", &now_code(&host, &secret));
    assert_eq!(resp.status(), 401, "a code used at enrolment is a replay");
    assert!(!other.cookies.borrow().contains_key("__Host-edgeid_session"));

    host.clock.advance(30);
    let code = now_code(&host, &secret);
    let b = Browser::new(&host);
    let resp = b.totp_login("wonderland-42", &code);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let cb = callback(&resp);
    let tokens = json_of(&redeem(&host, &cb["code"]));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "otp"]));
    assert_eq!(id["sub"], sub.as_str());

    // The same code again (same step) is refused: replay.
    let c = Browser::new(&host);
    let resp = c.totp_login("wonderland-42", &code);
    assert_eq!(resp.status(), 401);
    assert!(text(&resp).contains("already used"));

    // A recovery code works once.
    let d = Browser::new(&host);
    let resp = d.totp_login("wonderland-42", &codes[0].to_uppercase());
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let e = Browser::new(&host);
    assert_eq!(e.totp_login("wonderland-42", &codes[0]).status(), 401);
    assert!(text(&d.settings()).contains("9 unused recovery codes"));

    // A wrong password never reaches the second step.
    let f = Browser::new(&host);
    let resp = f.get(&authorize_url(""));
    assert_eq!(f.login(&resp, "alice", "nope-nope-nope").status(), 401);

    // The second-factor form is bound to the browser that passed the password.
    let g = Browser::new(&host);
    let resp = g.get(&authorize_url(""));
    let page = g.login(&resp, "alice", "wonderland-42");
    let pending = input(&text(&page), "pending");
    host.clock.advance(30);
    let thief = Browser::new(&host);
    let _ = thief.get(&authorize_url(""));
    let resp = thief.post(
        "/login/totp",
        &form(&[("pending", &pending), ("code", &now_code(&host, &secret))]),
    );
    assert_eq!(resp.status(), 400);
    assert!(!thief.cookies.borrow().contains_key("__Host-edgeid_session"));

    // The settings sign-in asks for the code too, then lands on settings.
    host.clock.advance(30);
    let h = Browser::new(&host);
    let page = h.get("/settings");
    let resp = h.post(
        "/settings/login",
        &form(&[
            ("csrf", &input(&text(&page), "csrf")),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert!(text(&resp).contains("action=\"/login/totp\""));
    let resp = h.post(
        "/login/totp",
        &form(&[
            ("pending", &input(&text(&resp), "pending")),
            ("code", &now_code(&host, &secret)),
        ]),
    );
    assert_eq!(
        location(&resp),
        format!("{}/settings", edgeid::testing::ISSUER)
    );
    assert!(text(&h.settings()).contains("password and code"));

    // Removing needs a current code or the password.
    let resp = h.settings_post(
        "/settings/totp/remove",
        &[("totp_confirm", "wrong-password")],
    );
    assert_eq!(resp.status(), 401);
    assert!(totp_stored(&host, &sub));
    let resp = h.settings_post(
        "/settings/totp/remove",
        &[("totp_confirm", "wonderland-42")],
    );
    assert_eq!(resp.status(), 303);
    assert!(!totp_stored(&host, &sub));
    let after = Browser::new(&host);
    let resp = after.get(&authorize_url(""));
    assert!(callback(&after.login(&resp, "alice", "wonderland-42")).contains_key("code"));

    let audit = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/audit?subject={sub}"),
        json!({}),
    ));
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .or(audit["items"].as_array())
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"totp.enrolled") && kinds.contains(&"totp.removed"));
}

#[test]
fn password_change_needs_the_current_password_unless_the_login_is_recent() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.settings_login("alice", "wonderland-42");
    // Just signed in: the current password is not needed.
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("new_password", "looking-glass-1"),
            ("confirm_password", "looking-glass-1"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));

    host.clock.advance(6 * 60);
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("new_password", "looking-glass-2"),
            ("confirm_password", "looking-glass-2"),
        ],
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("id=\"current_password-error\""));
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("current_password", "wonderland-42"),
            ("new_password", "looking-glass-2"),
            ("confirm_password", "looking-glass-2"),
        ],
    );
    assert_eq!(resp.status(), 401, "the old password no longer works");
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("current_password", "looking-glass-1"),
            ("new_password", "short"),
            ("confirm_password", "short"),
        ],
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("8 to 1024 characters"));
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("current_password", "looking-glass-1"),
            ("new_password", "looking-glass-2"),
            ("confirm_password", "looking-glass-2"),
        ],
    );
    assert_eq!(resp.status(), 303);
    let fresh = Browser::new(&host);
    fresh.settings_login("alice", "looking-glass-2");
}

#[test]
fn ending_another_session_makes_its_cookie_useless() {
    let (host, _) = setup(json!({}));
    let a = Browser::new(&host);
    let b = Browser::new(&host);
    let c = Browser::new(&host);
    a.settings_login("alice", "wonderland-42");
    host.clock.advance(1);
    b.settings_login("alice", "wonderland-42");
    host.clock.advance(1);
    c.settings_login("alice", "wonderland-42");
    let html = text(&c.settings());
    assert_eq!(html.matches("Signed in 2023").count(), 3);
    assert!(html.contains("(this session)"));

    // c ends the first other session listed (b, the newest after itself).
    let resp = c.settings_post("/settings/sessions/end", &[("sid", &input(&html, "sid"))]);
    assert_eq!(resp.status(), 303);
    assert!(text(&b.get("/settings")).contains("action=\"/settings/login\""));
    assert!(text(&a.settings()).contains("Your account"));

    let resp = c.settings_post("/settings/sessions/end", &[("others", "1")]);
    assert_eq!(resp.status(), 303);
    assert!(text(&a.get("/settings")).contains("action=\"/settings/login\""));
    assert!(text(&c.settings()).contains("Your account"));
    assert_eq!(text(&c.settings()).matches("Signed in 2023").count(), 1);
}

#[test]
fn revoking_a_connected_app_asks_consent_again_and_kills_its_refresh_token() {
    let (host, _) = setup(json!({"client_name": "Rabbit <Hole>"}));
    let b = Browser::new(&host);
    let code = first_login(&host, &b);
    let tokens = json_of(&redeem(&host, &code));
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let at = tokens["access_token"].as_str().unwrap().to_owned();

    let html = text(&b.settings());
    assert!(html.contains("Rabbit &lt;Hole&gt;"));
    let resp = b.settings_post("/settings/apps/revoke", &[("client_id", "rp")]);
    assert_eq!(resp.status(), 303);
    assert!(text(&b.settings()).contains("not allowed any app"));

    let resp = b.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "consent_required");
    let refreshed = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(json_of(&refreshed)["error"], "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
}

#[test]
fn profile_changes_username_uniqueness_escaping_and_csrf() {
    let (host, sub) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "bob@example.com", "username": "bob"}),
    );
    assert_eq!(resp.status(), 201);
    let b = Browser::new(&host);
    b.settings_login("alice", "wonderland-42");

    // No token, or another token: 403 and nothing changes.
    let resp = b.post(
        "/settings/profile",
        &form(&[("name", "Mallory"), ("username", "alice")]),
    );
    assert_eq!(resp.status(), 403);
    let resp = b.post(
        "/settings/profile",
        &form(&[
            ("csrf", &"0".repeat(64)),
            ("name", "Mallory"),
            ("username", "alice"),
        ]),
    );
    assert_eq!(resp.status(), 403);
    let other = Browser::new(&host);
    let page = other.get("/settings");
    let resp = b.post(
        "/settings/profile",
        &form(&[
            ("csrf", &input(&text(&page), "csrf")),
            ("name", "Mallory"),
            ("username", "alice"),
        ]),
    );
    assert_eq!(resp.status(), 403, "a token of another browser");
    let resp = b.post(
        "/settings/login",
        &form(&[("identifier", "alice"), ("password", "x")]),
    );
    assert_eq!(resp.status(), 403);
    assert!(text(&b.settings()).contains("Alice Liddell"));

    // A taken username: the error sits next to the field.
    let resp = b.settings_post(
        "/settings/profile",
        &[("name", "Alice"), ("username", "BOB")],
    );
    assert_eq!(resp.status(), 409);
    let html = text(&resp);
    assert!(html.contains("id=\"username-error\""));
    assert!(html.contains("aria-describedby=\"username-hint username-error\""));
    let resp = b.settings_post(
        "/settings/profile",
        &[("name", "Alice"), ("username", "a b")],
    );
    assert_eq!(resp.status(), 400);

    let resp = b.settings_post(
        "/settings/profile",
        &[
            ("name", "<script>alert(1)</script>"),
            ("username", "alice2"),
        ],
    );
    assert_eq!(resp.status(), 303);
    let html = text(&b.settings());
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
    let user = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{sub}"),
        json!({}),
    ));
    assert_eq!(user["username"], "alice2");
    assert_eq!(user["id"], sub.as_str());
}

#[test]
fn settings_routes_belong_to_the_login_function() {
    for p in ["/settings", "/settings/totp", "/login/totp"] {
        assert_eq!(edgeid::Function::for_path(p), Some(edgeid::Function::Login));
    }
    assert_eq!(edgeid::Function::for_path("/settingsx"), None);
}
