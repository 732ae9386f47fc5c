//! The console and the launcher in a real browser (issue 11): a person signs in through `/`
//! and the provider's login page, sees their launcher, is refused the admin views unless they
//! are an administrator, signs out; no CSP violations; a phone-sized window; keyboard only.
//! With `EDGEID_SCREENSHOTS=DIR` the tests save the screenshots the README shows.

use edgeid_browser_tests::fantoccini::key::Key;
use edgeid_browser_tests::{Browser, RelyingParty, client_for, suite};
use suite::console::create_admin;
use suite::serde_json::json;

/// No CSP errors and nothing failed to load (the favicon aside: the provider serves none).
async fn assert_clean(b: &Browser, page: &str) {
    let bad: Vec<_> = b
        .console()
        .await
        .into_iter()
        .filter(|e| {
            e.message.contains("Content Security Policy")
                || (e.level == "SEVERE"
                    && !e.message.contains("favicon.ico")
                    && !e.message.contains("403"))
        })
        .collect();
    assert!(bad.is_empty(), "the {page} page logged errors: {bad:?}");
}

/// From `/` through the login page to the launcher.
async fn console_sign_in(b: &Browser, user: &suite::User) {
    b.goto("/").await;
    b.sign_in(&user.username, &user.password).await;
    b.wait_title("Your apps").await;
}

#[tokio::test]
async fn issue11_a_user_signs_in_sees_the_launcher_and_is_refused_the_admin_views() {
    let user = suite::create_user(json!({}));
    let b = Browser::start().await;
    console_sign_in(&b, &user).await;
    assert!(b.text().await.contains("You have no applications yet"));
    assert!(!b.has("a[href='/admin/console/users']").await);
    assert_clean(&b, "launcher").await;
    b.screenshot("launcher-empty").await;
    for path in ["/admin/console/users", "/admin/console/keys"] {
        b.goto(path).await;
        let title = b.wait_title("Not allowed").await;
        assert!(title.contains('·'), "{title}");
    }
    // Sign out with the header's button.
    b.goto("/").await;
    b.wait_title("Your apps").await;
    b.css("header form[action='/admin/console/logout'] button")
        .await
        .click()
        .await
        .expect("Sign out");
    b.wait_title("Signed out").await;
    b.goto("/").await;
    b.wait_title("Sign in").await;
    b.quit().await;
}

#[tokio::test]
async fn issue11_an_admin_sees_the_admin_sections() {
    let root = create_admin();
    let b = Browser::start().await;
    console_sign_in(&b, &root).await;
    assert!(b.has("nav a[href='/admin/console/users']").await);
    assert!(b.text().await.contains("Administration"));
    assert_clean(&b, "admin launcher").await;
    b.screenshot("launcher-admin").await;
    b.quit().await;
}

#[tokio::test]
async fn issue11_the_launcher_fits_a_phone_and_works_by_keyboard() {
    let user = suite::create_user(json!({}));
    let b = Browser::start().await;
    b.client
        .set_window_size(375, 667)
        .await
        .expect("resizing the window");
    console_sign_in(&b, &user).await;
    let viewport = b
        .js("return document.documentElement.clientWidth")
        .await
        .as_f64()
        .expect("a width");
    let scroll = b
        .js("return document.documentElement.scrollWidth")
        .await
        .as_f64()
        .expect("a width");
    assert!(viewport <= 375.0, "{viewport}");
    assert!(
        scroll <= viewport,
        "no horizontal scrolling: {scroll} > {viewport}"
    );
    b.screenshot("launcher-phone").await;
    // Keyboard only: Tab from the top reaches the skip link first, then the navigation, and
    // Enter on the focused sign-out button signs out.
    let body = b.css("body").await;
    body.send_keys(&Key::Tab.to_string()).await.expect("Tab");
    let first = b.client.active_element().await.expect("focus");
    assert_eq!(
        first.attr("class").await.expect("class").as_deref(),
        Some("skip")
    );
    let mut reached = false;
    for _ in 0..20 {
        let el = b.client.active_element().await.expect("focus");
        if el.text().await.unwrap_or_default().starts_with("Sign out") {
            el.send_keys(&Key::Enter.to_string()).await.expect("Enter");
            reached = true;
            break;
        }
        el.send_keys(&Key::Tab.to_string()).await.expect("Tab");
    }
    assert!(reached, "the sign-out button is reachable by Tab");
    b.wait_title("Signed out").await;
    b.quit().await;
}

/// Types `text` into the field `selector`.
async fn fill(b: &Browser, selector: &str, text: &str) {
    b.css(selector)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
}

async fn click(b: &Browser, selector: &str) {
    b.css(selector)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
}

/// The Stackspin-style lifecycle (issue 11's browser test): an admin creates a user and copies
/// the welcome link; the user sets a password through it and sees an empty launcher; the admin
/// grants a role on an app; the user's launcher shows the app, and signing in to that app's
/// client succeeds. No CSP violations on the way.
#[tokio::test]
async fn issue11_an_admin_invites_a_user_who_then_reaches_an_app() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({ "skip_consent": true }));
    let slug = suite::unique("wiki");
    let resp = suite::admin(
        "POST",
        "/apps",
        Some(
            json!({"slug": slug, "name": "Team Wiki", "url": "https://wiki.example.test/",
                    "client_id": client.id}),
        ),
    );
    assert!((200..300).contains(&resp.status), "{}", resp.text());
    let root = create_admin();
    let admin = Browser::start().await;
    console_sign_in(&admin, &root).await;

    // Create the user; the welcome link is shown once (no mail configured in the tests).
    let username = suite::unique("grace");
    admin.goto("/admin/console/users/new").await;
    admin.wait_title("New user").await;
    fill(&admin, "#name", "Grace Hopper").await;
    fill(&admin, "#email", &format!("{username}@example.test")).await;
    fill(&admin, "#username", &username).await;
    click(&admin, "#welcome").await;
    admin.screenshot("user-new").await;
    click(&admin, "main form button[type=submit]").await;
    admin.wait_title(&format!("User {username}")).await;
    let link = admin
        .css("#link")
        .await
        .prop("value")
        .await
        .expect("the link's value")
        .expect("a welcome link");
    assert!(link.contains("/recovery"), "{link}");
    let id = admin
        .css("main p.muted code")
        .await
        .text()
        .await
        .expect("the user's id");
    admin.screenshot("user-created").await;
    assert_clean(&admin, "user").await;

    // The new user follows it, sets a password, and sees no apps yet.
    let person = Browser::start().await;
    person.goto(&link).await;
    person.wait_title("Set your password").await;
    fill(&person, "#password", "a-long-passphrase-for-grace").await;
    fill(&person, "#confirm", "a-long-passphrase-for-grace").await;
    click(
        &person,
        "form[action='/recovery/password'] button[type=submit]",
    )
    .await;
    person.wait_title("Password set").await;
    person.goto("/").await;
    person.wait_title("Your apps").await;
    assert!(person.text().await.contains("You have no applications yet"));

    // The admin grants the role on the user's page.
    admin.goto(&format!("/admin/console/users/{id}")).await;
    admin.wait_title(&format!("User {username}")).await;
    let row = format!("form:has(input[name=app][value='{slug}'])");
    let select = admin.css(&format!("{row} select")).await;
    select
        .select_by_value("user")
        .await
        .expect("choosing the user role");
    click(&admin, &format!("{row} button[type=submit]")).await;
    admin.wait_title(&format!("User {username}")).await;
    admin.screenshot("user-roles").await;

    // The user's launcher shows the app, and signing in to its client succeeds.
    person.goto("/").await;
    person.wait_title("Your apps").await;
    assert!(
        person.text().await.contains("Team Wiki"),
        "{}",
        person.text().await
    );
    assert!(person.has("a[href='https://wiki.example.test/']").await);
    assert_clean(&person, "launcher").await;
    person.screenshot("launcher-with-app").await;
    let req = client.auth_request();
    person.goto(&format!("/oauth2/auth?{}", req.query())).await;
    person
        .wait_url("the app's redirect URI", |u| {
            u.starts_with(&rp.redirect_uri())
        })
        .await;
    let hit = rp.callback().await;
    let code = hit.query.get("code").expect("a code for the app").clone();
    let tokens = client.exchange(&code, None);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    admin.quit().await;
    person.quit().await;
}
