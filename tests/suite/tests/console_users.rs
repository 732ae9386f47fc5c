//! The console's users section on every host (issue 11 items 2 and 3): an admin creates a
//! user, copies the welcome link (the hosts run without a mail API, so it is shown once), the
//! new user sets a password through it and signs in to an empty launcher; the admin grants a
//! role on an app, which the user's launcher then shows; the admin deletes the user through
//! the confirmation page. No clock tricks: the admin's sign-in is fresh, so it is recent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::console::{self, create_admin, user_exists};
use edgeid_suite::oidc::{Browser, User, create_oidc_client, follow_and_set, html_unescape};
use edgeid_suite::serde_json::json;
use edgeid_suite::{Resp, admin, unique};

const USERS: &str = "/admin/console/users";

/// The value of the page's `<input name="NAME" value="...">`.
fn input_value(page: &Resp, name: &str) -> String {
    let html = page.text();
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} on the page: {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html_unescape(&html[start..end])
}

#[test]
fn issue11_an_admin_creates_invites_grants_and_deletes_a_user_in_the_console() {
    let root = create_admin();
    let b = Browser::new();
    console::sign_in(&b, &root);

    // Create, with the welcome link now.
    let username = unique("grace");
    let email = format!("{username}@example.test");
    let page = console::post(
        &b,
        &format!("{USERS}/new"),
        &format!("{USERS}/new"),
        &[
            ("name", "Grace <Hopper>"),
            ("email", &email),
            ("username", &username),
            ("welcome", "1"),
        ],
    );
    assert_eq!(page.status, 201, "{}", page.text());
    assert!(
        page.text().contains("Grace &#60;Hopper&#62;")
            || page.text().contains("Grace &lt;Hopper&gt;")
    );
    assert!(!page.text().contains("Grace <Hopper>"), "escaped");
    let link = input_value(&page, "link");
    assert!(link.contains("/recovery?token="), "{link}");
    let record = admin("GET", &format!("/users/{username}"), None).json();
    let id = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["name"], "Grace <Hopper>");
    let user_page = format!("{USERS}/{id}");
    let shown = b.get(&user_page);
    assert_eq!(shown.status, 200);
    assert!(!shown.text().contains(&link), "the link is shown once");
    let listed = b.get(&format!("{USERS}?q={username}"));
    assert!(
        listed.text().contains(&format!(">{username}</a>")),
        "{}",
        listed.text()
    );

    // The new user sets a password through the link and signs in to an empty launcher.
    let user = User {
        id: id.clone(),
        username: username.clone(),
        email,
        password: format!("{}-Pw!", unique("pass")),
        record,
    };
    let nb = Browser::new();
    let resp = follow_and_set(&nb, &link, &user.password, &user.password);
    assert!(resp.status < 400, "{}", resp.text());
    let ub = Browser::new();
    let launcher = console::sign_in(&ub, &user);
    assert!(
        launcher.text().contains("You have no applications yet"),
        "{}",
        launcher.text()
    );

    // The admin grants a role on an app; the user's launcher shows it.
    let client = create_oidc_client(json!({}));
    let slug = unique("app");
    let url = format!("https://{slug}.example.test/");
    let resp = admin(
        "POST",
        "/apps",
        Some(json!({"slug": slug, "name": "Suite App", "url": url, "client_id": client.id})),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let resp = console::post(
        &b,
        &user_page,
        &format!("{user_page}/roles"),
        &[("app", &slug), ("set", "user")],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    let roles = admin("GET", &format!("/users/{id}/roles"), None).json();
    assert_eq!(roles["roles"], json!([{"app": slug, "role": "user"}]));
    let launcher = ub.get("/");
    assert!(
        launcher.text().contains(&format!("href=\"{url}\"")),
        "{}",
        launcher.text()
    );

    // Delete, through the confirmation page.
    let confirm = format!("{user_page}/delete");
    let page = b.get(&confirm);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("cannot be undone"), "{}", page.text());
    let resp = console::post(&b, &confirm, &confirm, &[]);
    assert_eq!(resp.status, 303, "{}", resp.text());
    assert!(!user_exists(&id));
    assert_eq!(
        ub.get("/").status,
        303,
        "the deleted user's console sign-in ended"
    );
    assert_eq!(b.get(&user_page).status, 404);
}

#[test]
fn issue11_console_user_forms_refuse_a_missing_csrf_token_and_non_admins() {
    let root = create_admin();
    let b = Browser::new();
    console::sign_in(&b, &root);
    let username = unique("eve");
    let email = format!("{username}@example.test");
    let fields = [("email", email.as_str()), ("username", username.as_str())];
    let resp = b.post_form(&format!("{USERS}/new"), &fields);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(
        admin("GET", &format!("/users/{username}"), None).status,
        404
    );
    // A bad email: 400, nothing written.
    let resp = console::post(
        &b,
        &format!("{USERS}/new"),
        &format!("{USERS}/new"),
        &[("email", "nope"), ("username", &username)],
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        admin("GET", &format!("/users/{username}"), None).status,
        404
    );

    let plain = edgeid_suite::create_user(json!({}));
    let pb = Browser::new();
    let page = console::sign_in(&pb, &plain);
    let token = console::csrf(&page);
    let mut pairs = vec![("csrf", token.as_str())];
    pairs.extend_from_slice(&fields);
    assert_eq!(pb.post_form(&format!("{USERS}/new"), &pairs).status, 403);
    assert_eq!(pb.get(&format!("{USERS}/{}", plain.id)).status, 403);
    assert_eq!(
        admin("GET", &format!("/users/{username}"), None).status,
        404
    );
}
