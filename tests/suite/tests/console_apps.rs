//! The console's applications and clients sections on every host (issue 11 items 3, 4): an
//! admin creates a client (its generated secret shown once, and working at the token
//! endpoint) and an app for it in the console, grants a user a role on the app's page, and
//! the user's launcher shows the app.

use edgeid_suite::console::{self, create_admin};
use edgeid_suite::{Browser, admin, basic, create_user, serde_json::json, token, unique};

/// The secret a client page shows once.
fn shown_secret(html: &str) -> Option<String> {
    let (_, rest) = html.split_once("<code class=\"secret\">")?;
    Some(rest.split_once("</code>")?.0.to_owned())
}

#[test]
fn issue11_an_admin_creates_a_client_and_an_app_and_grants_a_role_in_the_console() {
    let root = create_admin();
    let user = create_user(json!({}));
    let b = Browser::new();
    console::sign_in(&b, &root);

    let client_id = unique("console-client");
    let resp = console::post(
        &b,
        "/admin/console/clients/new",
        "/admin/console/clients/new",
        &[
            ("client_id", &client_id),
            ("client_name", "Suite app"),
            ("grant_authorization_code", "on"),
            ("grant_client_credentials", "on"),
            ("redirect_uris", "https://suite-app.example.test/cb"),
            ("scope", "openid profile"),
            ("token_endpoint_auth_method", "client_secret_basic"),
        ],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = console::follow(&b, resp, None);
    assert_eq!(page.status, 200, "{}", page.text());
    let secret = shown_secret(&page.text()).unwrap_or_else(|| panic!("{}", page.text()));
    let reload = b.get(&format!("/admin/console/clients/{client_id}"));
    assert!(shown_secret(&reload.text()).is_none(), "shown once");
    let stored = admin("GET", &format!("/clients/{client_id}"), None);
    assert_eq!(stored.status, 200, "{}", stored.text());
    assert_eq!(stored.json()["owner"], "console");
    let resp = token(
        Some(&basic(&client_id, &secret)),
        "grant_type=client_credentials",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());

    let slug = unique("app");
    let resp = console::post(
        &b,
        "/admin/console/apps/new",
        "/admin/console/apps/new",
        &[
            ("slug", &slug),
            ("name", "Suite <app>"),
            ("url", "https://suite-app.example.test/"),
            ("client_id", &client_id),
            ("logo_url", "https://suite-app.example.test/logo.png"),
        ],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    let app_page = format!("/admin/console/apps/{slug}");
    assert_eq!(
        resp.header("location"),
        Some(format!("{app_page}?done=created").as_str())
    );

    let ub = Browser::new();
    let launcher = console::sign_in(&ub, &user);
    assert!(!launcher.text().contains("suite-app.example.test"));

    let resp = console::post(
        &b,
        &app_page,
        &format!("{app_page}/roles"),
        &[("user", &user.username), ("role", "user")],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = b.get(&app_page).text();
    assert!(page.contains(&user.username), "{page}");

    let launcher = ub.get("/").text();
    assert!(
        launcher.contains("href=\"https://suite-app.example.test/\""),
        "{launcher}"
    );
    assert!(launcher.contains("Suite &#60;app&#62;"), "{launcher}");
    assert!(
        launcher.contains("src=\"https://suite-app.example.test/logo.png\""),
        "{launcher}"
    );
    let roles = admin("GET", &format!("/users/{}/roles", user.id), None).json();
    assert_eq!(roles["roles"], json!([{"app": slug, "role": "user"}]));

    // Clean up what this run made (the API's deletes).
    assert_eq!(admin("DELETE", &format!("/apps/{slug}"), None).status, 204);
    assert_eq!(
        admin("DELETE", &format!("/clients/{client_id}"), None).status,
        204
    );
}

#[test]
fn issue11_a_sidecar_client_is_read_only_in_the_console() {
    let id = unique("k8s");
    let resp = admin(
        "POST",
        "/clients",
        Some(json!({"client_id": id, "client_secret": "k8s-secret-123",
                    "grant_types": ["client_credentials"], "owner": format!("{id}/apps")})),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let root = create_admin();
    let b = Browser::new();
    console::sign_in(&b, &root);
    let page = b.get(&format!("/admin/console/clients/{id}"));
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains(&format!("Kubernetes OAuth2Client apps/{id}")),
        "{}",
        page.text()
    );
    let resp = console::post(&b, "/", &format!("/admin/console/clients/{id}/secret"), &[]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    let resp = token(
        Some(&basic(&id, "k8s-secret-123")),
        "grant_type=client_credentials",
    );
    assert_eq!(resp.status, 200, "the secret is unchanged: {}", resp.text());
    assert_eq!(admin("DELETE", &format!("/clients/{id}"), None).status, 204);
}
