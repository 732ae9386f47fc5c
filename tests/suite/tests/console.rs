//! The console's sign-in and gate on every host (issue 11): a user signs in through `/` and
//! the provider's login page and sees the launcher; a non-admin gets 403 on the admin views;
//! a form without its CSRF token is refused; logout and disabling the user end the console.

use edgeid_suite::console::{self, create_admin};
use edgeid_suite::{Browser, admin, create_user, serde_json::json};

#[test]
fn issue11_sign_in_shows_the_launcher_and_non_admins_get_403() {
    let user = create_user(json!({}));
    let b = Browser::new();
    let page = console::sign_in(&b, &user);
    assert!(!page.text().contains("Administration"), "{}", page.text());
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let token = console::csrf(&page);
    for path in [
        "/admin/console/users",
        "/admin/console/apps",
        "/admin/console/clients",
        "/admin/console/audit",
        "/admin/console/keys",
    ] {
        assert_eq!(b.get(path).status, 403, "GET {path}");
        assert_eq!(
            b.post_form(path, &[("csrf", &token)]).status,
            403,
            "POST {path}"
        );
    }
    let root = create_admin();
    let b = Browser::new();
    let page = console::sign_in(&b, &root);
    assert!(page.text().contains("Administration"), "{}", page.text());
    // The console cookie is no admin bearer token.
    assert_eq!(b.get("/admin/users").status, 401);
}

#[test]
fn issue11_csrf_logout_and_disable_end_the_console() {
    let user = create_user(json!({}));
    let b = Browser::new();
    console::sign_in(&b, &user);
    assert_eq!(
        b.post_form("/admin/console/logout", &[("csrf", "x")])
            .status,
        403
    );
    assert_eq!(b.get("/").status, 200, "still signed in");
    let resp = console::post(&b, "/", "/admin/console/logout", &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(b.get("/").status, 303, "signed out");

    let b = Browser::new();
    console::sign_in(&b, &user);
    let resp = admin(
        "POST",
        &format!("/users/{}/disable", user.id),
        Some(json!({})),
    );
    assert!((200..300).contains(&resp.status), "{}", resp.text());
    assert_eq!(
        b.get("/").status,
        303,
        "a disabled user's console sign-in ends"
    );
}

#[test]
fn issue11_a_console_callback_from_another_browser_is_refused() {
    let user = create_user(json!({}));
    let b = Browser::new();
    let mut resp = b.get("/admin/console/login?next=%2F");
    // To the callback, without following it.
    for _ in 0..8 {
        let loc = resp.header("location").unwrap_or("").to_owned();
        if loc.contains("/admin/console/callback?") {
            let other = Browser::new();
            let r = other.get(&loc);
            assert_eq!(r.status, 400, "{}", r.text());
            assert_eq!(other.get("/").status, 303);
            let r = b.get(&loc);
            assert_eq!(r.status, 303, "{}", r.text());
            assert_eq!(b.get("/").status, 200);
            let r = b.get(&loc);
            assert_eq!(r.status, 400, "a code is single use: {}", r.text());
            return;
        }
        resp = if resp.status == 200 {
            edgeid_suite::login_page_submit(&b, &resp, &user)
        } else {
            b.get(&loc)
        };
    }
    panic!("no callback reached");
}
