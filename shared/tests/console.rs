//! The console's sign-in, launcher and gate through the router, in memory (issue 11): the
//! console signs in through edgeid's own authorization endpoint; every other path to a
//! console sign-in (a replayed code, another browser's callback, the token endpoint, a
//! forged cookie, a form without its CSRF token) is refused; logout and disabling the user
//! end it; non-admins get 403 on every admin view.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

const ADMIN_PW: &str = "correct-horse-battery";

/// Every admin view a non-admin must be refused (403), GET and POST.
const ADMIN_VIEWS: &[&str] = &[
    "/admin/console",
    "/admin/console/users",
    "/admin/console/apps",
    "/admin/console/clients",
    "/admin/console/audit",
    "/admin/console/keys",
];

#[test]
fn issue11_a_user_signs_in_through_the_login_page_and_sees_an_empty_launcher() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    let page = b.console_sign_in("alice", "wonderland-42");
    assert_eq!(page.status(), 200, "{}", text(&page));
    let html = text(&page);
    assert!(html.contains("Your apps"), "{html}");
    assert!(html.contains("You have no applications yet"), "{html}");
    assert!(
        !html.contains("Administration"),
        "no admin links for a user: {html}"
    );
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // The console rests on the edgeid session: the settings pages know the user too.
    let settings = b.get("/settings");
    assert_eq!(settings.status(), 200);
    assert!(text(&settings).contains("alice"), "{}", text(&settings));
}

#[test]
fn issue11_non_admins_get_403_on_every_admin_view_and_admins_get_in() {
    let (host, _) = setup(json!({}));
    create_admin(&host, ADMIN_PW);
    let user = Browser::new(&host);
    user.console_sign_in("alice", "wonderland-42");
    let csrf = user.console_csrf("/");
    for path in ADMIN_VIEWS {
        let resp = user.get(path);
        assert_eq!(resp.status(), 403, "GET {path}: {}", text(&resp));
        let resp = user.post(path, &format!("csrf={csrf}"));
        assert_eq!(resp.status(), 403, "POST {path}: {}", text(&resp));
    }
    let root = Browser::new(&host);
    let page = root.console_sign_in("root", ADMIN_PW);
    assert!(text(&page).contains("Administration"), "{}", text(&page));
    let resp = root.get("/admin/console");
    assert_eq!(resp.status(), 303);
}

#[test]
fn issue11_the_bearer_api_is_not_reachable_with_the_console_cookie() {
    let (host, _) = setup(json!({}));
    create_admin(&host, ADMIN_PW);
    let root = Browser::new(&host);
    root.console_sign_in("root", ADMIN_PW);
    for path in ["/admin/users", "/admin/clients", "/admin/keys"] {
        let resp = root.get(path);
        assert_eq!(resp.status(), 401, "{path}: the API wants its bearer token");
    }
}

#[test]
fn issue11_a_console_form_without_its_csrf_token_is_refused() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.console_sign_in("alice", "wonderland-42");
    for form in [
        "",
        "csrf=",
        "csrf=0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let resp = b.post("/admin/console/logout", form);
        assert_eq!(resp.status(), 403, "{form:?}");
    }
    // Still signed in.
    assert_eq!(b.get("/").status(), 200);
}

#[test]
fn issue11_console_logout_ends_the_edgeid_session() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.console_sign_in("alice", "wonderland-42");
    let resp = b.console_post("/admin/console/logout", &[]);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(text(&resp).contains("signed out"));
    let resp = b.get("/");
    assert_eq!(resp.status(), 303, "signed out of the console");
    // ... and of edgeid: the settings page asks for a sign-in, and a relying party's
    // authorization request goes to the login page.
    assert!(text(&b.get("/settings")).contains("action=\"/settings/login\""));
    let resp = b.get(&authorize_url(""));
    assert!(
        location(&resp).contains("/login?request="),
        "{}",
        location(&resp)
    );
}

#[test]
fn issue11_a_copied_console_cookie_dies_with_the_session() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.console_sign_in("alice", "wonderland-42");
    let stolen = b.cookies.borrow().clone();
    b.console_post("/admin/console/logout", &[]);
    let thief = Browser::new(&host);
    *thief.cookies.borrow_mut() = stolen;
    assert_eq!(
        thief.get("/").status(),
        303,
        "the ended session's cookie opens nothing"
    );
}

#[test]
fn issue11_logging_out_at_edgeid_or_disabling_the_user_ends_the_console() {
    let (host, sub) = setup(json!({}));
    let b = Browser::new(&host);
    b.console_sign_in("alice", "wonderland-42");
    let resp = admin(
        &host,
        "POST",
        &format!("/admin/users/{sub}/disable"),
        json!({}),
    );
    assert!(resp.status().is_success(), "{}", text(&resp));
    assert_eq!(b.get("/").status(), 303, "a disabled user is signed out");
    admin(
        &host,
        "POST",
        &format!("/admin/users/{sub}/enable"),
        json!({}),
    );
    assert_eq!(
        b.get("/").status(),
        303,
        "enabling does not bring the old sign-in back"
    );

    let b = Browser::new(&host);
    b.console_sign_in("alice", "wonderland-42");
    let page = b.get("/logout");
    assert_eq!(page.status(), 200, "{}", text(&page));
    let request = input(&text(&page), "request");
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("request", &request)
        .append_pair("decision", "logout")
        .finish();
    b.post("/logout", &form);
    assert_eq!(
        b.get("/").status(),
        303,
        "logout at /logout ends the console too"
    );
}

/// Drives a console sign-in up to the callback and returns its URL (not yet followed).
fn callback_url(b: &Browser<'_>, identifier: &str, password: &str) -> String {
    let resp = b.get("/admin/console/login?next=%2F");
    let resp = b.get(&location(&resp));
    let resp = b.login(&resp, identifier, password);
    let loc = location(&resp);
    assert!(loc.contains("/admin/console/callback?"), "{loc}");
    loc
}

#[test]
fn issue11_a_console_code_is_single_use_and_bound_to_the_browser() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    let cb = callback_url(&b, "alice", "wonderland-42");
    let flow = b.cookies.borrow().clone();
    // Another browser (no flow cookie) cannot use it.
    let other = Browser::new(&host);
    let resp = other.get(&cb);
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert!(
        other
            .cookies
            .borrow()
            .keys()
            .all(|k| !k.contains("edgeid_console\0"))
    );
    // The right browser can, once.
    let resp = b.get(&cb);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(b.get("/").status(), 200);
    // A replay with the flow cookie put back is refused and sets no console cookie.
    let replay = Browser::new(&host);
    *replay.cookies.borrow_mut() = flow
        .into_iter()
        .filter(|(k, _)| !k.ends_with("edgeid_console"))
        .collect();
    let resp = replay.get(&cb);
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert!(resp.headers().get_all("set-cookie").iter().all(|v| {
        let v = v.to_str().unwrap();
        !v.contains("edgeid_console=") || v.contains("Max-Age=0")
    }));
    assert_eq!(replay.get("/").status(), 303);
}

#[test]
fn issue11_a_console_code_buys_nothing_at_the_token_endpoint() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    let cb = callback_url(&b, "alice", "wonderland-42");
    let code = params(cb.split_once('?').unwrap().1)["code"].clone();
    let resp = send(
        &host,
        "POST",
        "/oauth2/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!(
            "grant_type=authorization_code&client_id=edgeid-console&code={code}&redirect_uri={}&code_verifier=x",
            form_urlencoded::byte_serialize(
                format!("{}/admin/console/callback", edgeid::testing::ISSUER).as_bytes()
            )
            .collect::<String>()
        ),
    );
    assert_eq!(resp.status(), 401, "{}", text(&resp));
    assert_eq!(json_of(&resp)["error"], "invalid_client");
    // Nor can anyone register a client under the console's id.
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({"client_id": "edgeid-console", "redirect_uris": ["https://evil.example/cb"],
               "grant_types": ["authorization_code"], "response_types": ["code"],
               "token_endpoint_auth_method": "none"}),
    );
    assert_eq!(resp.status(), 400, "{}", text(&resp));
}

#[test]
fn issue11_a_forged_or_foreign_console_cookie_is_no_sign_in() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.cookies
        .borrow_mut()
        .insert("__Host-edgeid_console".into(), "AAAA".repeat(20));
    assert_eq!(b.get("/").status(), 303);
    // A sealed value of another step (the login page's pending request) is not a cookie.
    let resp = b.get(&authorize_url(""));
    let sealed = params(location(&resp).split_once('?').unwrap().1)["request"].clone();
    b.cookies
        .borrow_mut()
        .insert("__Host-edgeid_console".into(), sealed);
    assert_eq!(b.get("/").status(), 303);
}

#[test]
fn issue11_the_launcher_shows_the_apps_the_user_holds_a_role_on() {
    let (host, sub) = setup(json!({}));
    for (slug, name, client) in [("grafana", "Grafana", "rp"), ("wiki", "Wiki", "wiki")] {
        let resp = admin(
            &host,
            "POST",
            "/admin/apps",
            json!({"slug": slug, "name": name, "url": format!("https://{slug}.example.test/"),
                   "client_id": client}),
        );
        assert!(resp.status().is_success(), "{}", text(&resp));
    }
    let b = Browser::new(&host);
    let page = b.console_sign_in("alice", "wonderland-42");
    assert!(!text(&page).contains("Grafana"));
    let resp = admin(
        &host,
        "PUT",
        &format!("/admin/users/{sub}/roles/grafana/user"),
        json!({}),
    );
    assert!(resp.status().is_success(), "{}", text(&resp));
    let html = text(&b.get("/"));
    assert!(
        html.contains("href=\"https://grafana.example.test/\""),
        "{html}"
    );
    assert!(!html.contains("Wiki"), "no role on the wiki: {html}");
}

#[test]
fn issue11_a_reauthentication_asks_for_the_password_again() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.console_sign_in("alice", "wonderland-42");
    let resp = b.get("/admin/console/login?next=%2F&reauth=1");
    let auth = location(&resp);
    assert!(auth.contains("prompt=login"), "{auth}");
    let resp = b.get(&auth);
    assert!(
        location(&resp).contains("/login?request="),
        "the live session is not enough"
    );
    let resp = b.login(&resp, "alice", "wonderland-42");
    assert_eq!(b.console_follow(resp).status(), 200);
}

/// The second-factor rule of the settings pages and the authorization decision holds in the
/// console too: a console sign-in made before the user enrolled TOTP (a stolen password's
/// session, say) stops counting when they enrol from another browser.
#[test]
fn issue11_enrolling_a_second_factor_ends_older_console_sign_ins() {
    let (host, _) = setup(json!({}));
    let old = Browser::new(&host);
    old.console_sign_in("alice", "wonderland-42");
    assert_eq!(old.get("/").status(), 200);

    let b = Browser::new(&host);
    let page = b.get("/settings");
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &input(&text(&page), "csrf"))
        .append_pair("identifier", "alice")
        .append_pair("password", "wonderland-42")
        .finish();
    assert_eq!(b.post("/settings/login", &form).status(), 303);
    let page = b.get("/settings/totp");
    let html = text(&page);
    let start = html.find("<code class=\"secret\">").unwrap() + "<code class=\"secret\">".len();
    let secret = base32_decode(&html[start..start + html[start..].find("</code>").unwrap()]);
    let code = edgeid::totp::code_at(&secret, edgeid::totp::step(host.clock.get()));
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &input(&html, "csrf"))
        .append_pair("pending", &input(&html, "pending"))
        .append_pair("code", &code)
        .finish();
    assert_eq!(b.post("/settings/totp", &form).status(), 200);

    assert_eq!(
        old.get("/").status(),
        303,
        "the pre-enrolment sign-in no longer counts"
    );
    // The enrolling browser's session proved the new factor: its console sign-in works.
    let page = b.console_follow(b.get("/"));
    assert_eq!(page.status(), 200, "{}", text(&page));
    assert!(text(&page).contains("Your apps"));
}
