//! The OpenID Connect flows through the router, in memory: a browser with a cookie jar drives
//! authorize → login → consent → token → userinfo → refresh → logout against a fixed clock.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

#[test]
fn code_flow_with_pkce_consent_userinfo_refresh_and_remembered_consent() {
    let (host, sub) = setup(json!({}));
    let browser = Browser::new(&host);

    let resp = browser.get(&authorize_url(""));
    assert_eq!(resp.status(), 303);
    assert!(browser.cookies.borrow().contains_key("__Host-edgeid_flow"));
    // A wrong password re-renders the form with 401 and no session.
    let bad = browser.login(&resp, "alice", "not-the-password");
    assert_eq!(bad.status(), 401);
    assert!(text(&bad).contains("not correct"));
    assert!(
        !browser
            .cookies
            .borrow()
            .contains_key("__Host-edgeid_session")
    );

    let resp = browser.login(&resp, "ALICE@example.com", "wonderland-42");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Secure")
    );
    let resp = browser.consent(&resp, "allow");
    let cb = callback(&resp);
    assert_eq!(cb["state"], "st-1");
    assert_eq!(cb["iss"], edgeid::testing::ISSUER);

    let resp = redeem(&host, &cb["code"]);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let body = json_of(&resp);
    let at = body["access_token"].as_str().unwrap();
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], sub.as_str());
    assert_eq!(id["aud"], "rp");
    assert_eq!(id["azp"], "rp");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["auth_time"], 1_700_000_000);
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["email"], "alice@example.com");
    assert!(id["sid"].as_str().is_some());
    let at_hash = b64(&sha2::Sha256::digest(at.as_bytes())[..16]);
    assert_eq!(id["at_hash"], at_hash.as_str());

    let info = userinfo(&host, at);
    assert_eq!(info.status(), 200, "{}", text(&info));
    let info = json_of(&info);
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email_verified"], true);

    // Refresh rotates; the old token is then a replay that revokes the family.
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let r1 = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(r1.status(), 200, "{}", text(&r1));
    let rt2 = json_of(&r1)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt, rt2);
    let replay = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(json_of(&replay)["error"], "invalid_grant");
    let after = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt2}"),
    );
    assert_eq!(json_of(&after)["error"], "invalid_grant");
    assert_eq!(userinfo(&host, at).status(), 401);

    // Same browser again: session and consent are remembered, straight back to the client.
    let resp = browser.get(&authorize_url(""));
    assert!(callback(&resp).contains_key("code"));
}

#[test]
fn code_reuse_after_30_seconds_fails_and_revokes_the_first_tokens() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let first = redeem(&host, &code);
    assert_eq!(first.status(), 200);
    let at = json_of(&first)["access_token"].as_str().unwrap().to_owned();
    host.clock.advance(30);
    let second = redeem(&host, &code);
    assert_eq!(second.status(), 400);
    assert_eq!(json_of(&second)["error"], "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
}

#[test]
fn pkce_is_verified_and_codes_expire() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let wrong = token(
        &host,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={}",
            form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
            "x".repeat(43)
        ),
    );
    assert_eq!(json_of(&wrong)["error"], "invalid_grant");

    let resp = browser.get(&authorize_url(""));
    let code = callback(&resp)["code"].clone();
    host.clock.advance(601);
    assert_eq!(json_of(&redeem(&host, &code))["error"], "invalid_grant");

    // `plain` is refused at the authorization endpoint.
    let resp = browser.get(&authorize_url("").replace("S256", "plain"));
    assert_eq!(callback(&resp)["error"], "invalid_request");
}

#[test]
fn unregistered_redirect_uri_and_unknown_client_get_a_page_not_a_redirect() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    for url in [
        authorize_url("").replace("rp.example.test", "evil.example"),
        authorize_url("").replace("client_id=rp", "client_id=nobody"),
    ] {
        let resp = browser.get(&url);
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[test]
fn prompt_none_login_and_consent_required_then_logged_in() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
    let code = first_login(&host, &browser);
    assert!(!code.is_empty());
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert!(callback(&resp).contains_key("code"));
    // A scope never consented to needs consent, which prompt=none cannot ask for.
    let resp = browser.get(&authorize_url("&prompt=none").replace("%20email", ""));
    assert!(callback(&resp).contains_key("code"), "a subset is covered");
    let resp = browser.get(&authorize_url("&prompt=consent"));
    assert!(location(&resp).contains("/consent?request="));
}

#[test]
fn max_age_and_prompt_login_force_a_new_login_with_a_new_auth_time() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert!(callback(&resp).contains_key("code"));
    host.clock.advance(10);
    let resp = browser.get(&authorize_url("&max_age=10000"));
    assert!(callback(&resp).contains_key("code"));
    let resp = browser.get(&authorize_url("&max_age=1"));
    assert!(location(&resp).contains("/login?request="));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let id = claims(json_of(&redeem(&host, &code))["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], 1_700_000_010);
    let resp = browser.get(&authorize_url("&prompt=login"));
    assert!(location(&resp).contains("/login?request="));
}

#[test]
fn hybrid_and_form_post_responses_carry_hashes_and_auto_submit() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let url = authorize_url("").replace("response_type=code", "response_type=code%20id_token");
    let resp = browser.get(&url);
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let loc = location(&resp);
    assert!(loc.contains('#'), "hybrid defaults to the fragment: {loc}");
    let cb = callback(&resp);
    let id = claims(&cb["id_token"]);
    assert_eq!(
        id["c_hash"],
        b64(&sha2::Sha256::digest(cb["code"].as_bytes())[..16]).as_str()
    );
    assert_eq!(id["nonce"], "n-1");

    let resp = browser.get(&format!("{url}&response_mode=form_post"));
    assert_eq!(resp.status(), 200);
    let page = text(&resp);
    assert!(page.contains(&format!("action=\"{CB}\"")));
    assert!(page.contains("name=\"code\""));
    assert!(page.contains("<button type=\"submit\">"));
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline") && csp.contains("https://rp.example.test"));

    // An ID token from the authorization endpoint needs a nonce.
    let resp = browser.get(&url.replace("&nonce=n-1", ""));
    assert_eq!(callback(&resp)["error"], "invalid_request");
}

#[test]
fn revocation_and_introspection() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let at = body["access_token"].as_str().unwrap();
    let rt = body["refresh_token"].as_str().unwrap();
    let call = |path: &str, form: &str| {
        let auth = basic();
        send(
            &host,
            "POST",
            path,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
    };
    let i = json_of(&call("/oauth2/introspect", &format!("token={at}")));
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "rp");
    let i = json_of(&call("/oauth2/introspect", &format!("token={rt}")));
    assert_eq!(i["active"], true);
    assert_eq!(
        json_of(&call("/oauth2/introspect", "token=garbage"))["active"],
        false
    );

    assert_eq!(call("/oauth2/revoke", &format!("token={at}")).status(), 200);
    assert_eq!(
        json_of(&call("/oauth2/introspect", &format!("token={at}")))["active"],
        false
    );
    assert_eq!(call("/oauth2/revoke", &format!("token={rt}")).status(), 200);
    assert_eq!(
        json_of(&call("/oauth2/introspect", &format!("token={rt}")))["active"],
        false
    );
    assert_eq!(call("/oauth2/revoke", "token=unknown").status(), 200);
    // Introspection requires client authentication.
    let anon = send(
        &host,
        "POST",
        "/oauth2/introspect",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("token={at}"),
    );
    assert_eq!(anon.status(), 401);
}

#[test]
fn rp_initiated_logout_ends_the_session() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let id_token = body["id_token"].as_str().unwrap();

    // Unregistered post-logout URI: no redirect.
    let resp = browser.get(&format!(
        "/oauth2/sessions/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
    ));
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    // Without a hint: a confirmation page, session still alive.
    let resp = browser.get("/oauth2/sessions/logout");
    assert_eq!(resp.status(), 200);
    assert!(text(&resp).contains("action=\"/logout\""));
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert!(callback(&resp).contains_key("code"));

    let resp = browser.get(&format!(
        "/oauth2/sessions/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Frp.example.test%2Fbye&state=s9"
    ));
    assert_eq!(location(&resp), "https://rp.example.test/bye?state=s9");
    assert!(
        !browser
            .cookies
            .borrow()
            .contains_key("__Host-edgeid_session")
    );
    // Even with the old cookie replayed, the session is over.
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
}

#[test]
fn a_sealed_request_is_bound_to_the_browser_that_started_it() {
    let (host, _) = setup(json!({}));
    let alice = Browser::new(&host);
    let resp = alice.get(&authorize_url(""));
    let mallory = Browser::new(&host);
    let page = mallory.get(&location(&resp));
    assert_eq!(page.status(), 400);
    assert!(text(&page).contains("another browser"));
}

#[test]
fn userinfo_errors_follow_rfc_6750() {
    let (host, _) = setup(
        json!({"grant_types": ["client_credentials", "authorization_code"], "scope": "openid read"}),
    );
    let resp = userinfo(&host, "garbage");
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""));
    let cc = token(&host, "grant_type=client_credentials&scope=read");
    let at = json_of(&cc)["access_token"].as_str().unwrap().to_owned();
    let resp = userinfo(&host, &at);
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(&resp)["error"], "insufficient_scope");
}

#[test]
fn deleting_a_user_revokes_their_tokens() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        admin(&host, "DELETE", &format!("/admin/users/{sub}"), json!({})).status(),
        204
    );
    assert_eq!(userinfo(&host, at).status(), 401);
    let rt = body["refresh_token"].as_str().unwrap();
    let r = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(json_of(&r)["error"], "invalid_grant");
}

#[test]
fn users_reach_an_app_only_with_a_role_and_get_their_roles_as_claims() {
    let (host, sub) = setup(json!({"skip_consent": true,
        "scope": "openid profile email offline_access stackspin_roles groups"}));
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "ext-rp", "name": "The RP", "url": "https://rp.example.test", "client_id": "rp"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    assert_eq!(json_of(&resp)["external"], true);

    let url = authorize_url("").replace("offline_access", "stackspin_roles%20groups");
    let browser = Browser::new(&host);
    let resp = browser.get(&url);
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert_eq!(resp.status(), 403, "no role, no access: {}", text(&resp));
    assert!(text(&resp).contains("access_denied") && text(&resp).contains("The RP"));
    assert!(resp.headers().get("location").is_none());
    // Issue 9: the refusal hands out no session another page would accept.
    assert!(
        !resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or("").contains("edgeid_session=")),
        "a refused sign-in sets no session cookie"
    );

    let put = admin(
        &host,
        "PUT",
        "/admin/users/alice/roles/ext-rp/user",
        json!({}),
    );
    assert_eq!(put.status(), 204, "{}", text(&put));
    let resp = browser.get(&url);
    assert!(
        location(&resp).contains("/login?request="),
        "no session yet"
    );
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["stackspin_roles"], json!(["user"]));
    assert_eq!(id["groups"], json!(["ext-rp:user"]));
    let info = json_of(&userinfo(&host, body["access_token"].as_str().unwrap()));
    assert_eq!(info["stackspin_roles"], json!(["user"]));

    let roles = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{sub}/roles"),
        json!({}),
    ));
    assert_eq!(roles["roles"], json!([{"app": "ext-rp", "role": "user"}]));
    let del = admin(
        &host,
        "DELETE",
        "/admin/users/alice@example.com/roles/ext-rp/user",
        json!({}),
    );
    assert_eq!(del.status(), 204);
    let resp = browser.get(&url);
    assert_eq!(resp.status(), 403, "the role is gone");

    // A global admin reaches every app, with the admin role.
    let resp = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "root@example.com", "username": "root", "is_admin": true,
               "password": "root-password-1"}),
    );
    assert_eq!(resp.status(), 201);
    let other = Browser::new(&host);
    let resp = other.get(&url);
    let resp = other.login(&resp, "root", "root-password-1");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["stackspin_roles"], json!(["admin"]));
    assert_eq!(id["groups"], json!(["admin"]));
}

#[test]
fn repeated_failures_are_throttled_the_same_way_whether_or_not_the_account_exists() {
    let (host, _) = setup(json!({"skip_consent": true}));
    for name in ["alice", "nobody-here"] {
        let browser = Browser::new(&host);
        let start = browser.get(&authorize_url(""));
        for _ in 0..5 {
            assert_eq!(browser.login(&start, name, "wrong-password").status(), 401);
        }
        // Past the free attempts: answered without checking the password, even a right one.
        let resp = browser.login(&start, name, "wonderland-42");
        assert_eq!(resp.status(), 429, "{}", text(&resp));
        assert!(resp.headers().contains_key("retry-after"));
        assert!(text(&resp).contains("Too many failed attempts"));
        host.clock.advance(2);
    }
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    let resp = browser.login(&start, "alice", "wonderland-42");
    assert_eq!(
        resp.status(),
        303,
        "after the back-off the right password works"
    );

    // Many failures in a row lock the account name (in SQL, like every throttle count).
    // (A fresh request each time: the sealed one expires after 30 minutes.)
    for _ in 0..edgeid::throttle::PASSWORD_LOCK_AFTER {
        host.clock.advance(16 * 60);
        let start = browser.get(&authorize_url("&prompt=login"));
        assert_eq!(
            browser.login(&start, "alice", "wrong-password").status(),
            401
        );
    }
    host.clock.advance(16 * 60);
    let start = browser.get(&authorize_url("&prompt=login"));
    let resp = browser.login(&start, "alice", "wonderland-42");
    assert_eq!(resp.status(), 429, "locked: {}", text(&resp));
    host.clock.advance(edgeid::throttle::LOCK_SECONDS);
    let start = browser.get(&authorize_url("&prompt=login"));
    assert_eq!(
        browser.login(&start, "alice", "wonderland-42").status(),
        303
    );
}

/// Browsers apply CSP `form-action` to the redirect after a form POST: the login and consent
/// pages must allow the client's redirect origin or the 303 back to the client is blocked.
#[test]
fn login_and_consent_pages_allow_the_redirect_to_the_client_in_form_action() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    let page = browser.get(&location(&start));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://rp.example.test"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    let resp = browser.login(&start, "alice", "wonderland-42");
    let consent = browser.get(&location(&resp));
    let csp = consent.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example.test"),
        "{csp}"
    );
}

#[test]
fn logo_and_accent_colour_come_from_configuration() {
    let (mut host, _) = setup(json!({}));
    host.vars.insert(
        "logo_url".into(),
        "https://cdn.example.test/logo.svg".into(),
    );
    host.vars.insert("accent_color".into(), "#aa3300".into());
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    let page = text(&browser.get(&location(&start)));
    assert!(page.contains("<img class=\"logo\" src=\"https://cdn.example.test/logo.svg\""));
    assert!(page.contains("/assets/theme.css"));
    let theme = browser.get("/assets/theme.css");
    assert_eq!(text(&theme), ":root{--accent:#aa3300}\n");
    // Invalid values are ignored, not rendered.
    host.vars
        .insert("accent_color".into(), "red;}body{display:none".into());
    host.vars
        .insert("logo_url".into(), "javascript:alert(1)".into());
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    assert!(!text(&browser.get(&location(&start))).contains("img class=\"logo\""));
    assert_eq!(text(&browser.get("/assets/theme.css")), "");
}

#[test]
fn the_consent_page_names_the_app_and_its_url() {
    let (host, _) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "wiki", "name": "Team Wiki", "url": "https://wiki.example.test", "client_id": "rp"}),
    );
    assert_eq!(resp.status(), 201);
    assert_eq!(
        admin(
            &host,
            "PUT",
            "/admin/users/alice/roles/wiki/user",
            json!({})
        )
        .status(),
        204
    );
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let page = text(&browser.get(&location(&resp)));
    assert!(page.contains("<strong>Team Wiki</strong>"), "{page}");
    assert!(
        page.contains("href=\"https://wiki.example.test/\""),
        "{page}"
    );
    assert!(page.contains("See your email address"));
}
