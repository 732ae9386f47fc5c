//! Applications and per-app roles, black-box: a user reaches an app's client only with a role
//! on the app (or as a global admin), and gets their roles as the `stackspin_roles` claim.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::oidc::{
    Browser, code_flow, create_oidc_client, create_user, form_with_action, userinfo_get,
};
use edgeid_suite::serde_json::json;
use edgeid_suite::{admin, form_encode, unique};

const SCOPE: &str = "openid profile email stackspin_roles groups";

fn app_for(client_id: &str) -> String {
    let slug = format!("ext-{}", unique("app"));
    let resp = admin(
        "POST",
        "/apps",
        Some(
            json!({"slug": slug, "name": "Suite App", "url": "https://app.example.test",
                    "client_id": client_id}),
        ),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.json()["external"], true, "an ext- slug is external");
    slug
}

fn role(method: &str, user: &str, app: &str, role: &str) -> u16 {
    admin(
        method,
        &format!("/users/{}/roles/{app}/{role}", form_encode(user)),
        None,
    )
    .status
}

#[test]
fn a_user_without_a_role_on_the_app_is_refused_with_a_page() {
    let client = create_oidc_client(json!({"scope": SCOPE}));
    app_for(&client.id);
    let user = create_user(json!({}));
    let browser = Browser::new();
    let pkce = edgeid_suite::oidc::Pkce::s256();
    let req = client.auth_request().set("scope", SCOPE).pkce(&pkce);
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303);
    let page = browser.get(resp.header("location").unwrap());
    let form = form_with_action(&page.text(), "/login").expect("a login form");
    let resp = browser.post_form(
        "/login",
        &[
            ("request", form.value("request").unwrap()),
            ("identifier", &user.username),
            ("password", &user.password),
        ],
    );
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp.header("location").is_none());
    let page = resp.text();
    assert!(
        page.contains("access_denied") && page.contains("Suite App"),
        "{page}"
    );
}

#[test]
fn roles_open_the_app_and_come_back_as_claims() {
    let client = create_oidc_client(json!({"scope": SCOPE}));
    let slug = app_for(&client.id);
    let user = create_user(json!({}));
    assert_eq!(role("PUT", &user.username, &slug, "user"), 204);
    assert_eq!(
        role("PUT", &user.email, &slug, "editor"),
        204,
        "custom roles are allowed"
    );
    let flow = code_flow(&Browser::new(), &client, &user, SCOPE);
    assert_eq!(flow.id_claims["stackspin_roles"], json!(["editor", "user"]));
    assert_eq!(
        flow.id_claims["groups"],
        json!([format!("{slug}:editor"), format!("{slug}:user")])
    );
    let info = userinfo_get(flow.access_token()).json();
    assert_eq!(info["stackspin_roles"], json!(["editor", "user"]));

    let listed = admin("GET", &format!("/users/{}/roles", user.id), None).json();
    assert_eq!(listed["roles"].as_array().unwrap().len(), 2);
    assert_eq!(role("DELETE", &user.id, &slug, "editor"), 204);
    assert_eq!(
        role("DELETE", &user.id, &slug, "editor"),
        404,
        "already revoked"
    );
    assert_eq!(role("PUT", &user.id, "no-such-app", "user"), 404);
}

#[test]
fn a_global_admin_reaches_every_app_as_admin() {
    let client = create_oidc_client(json!({"scope": SCOPE}));
    app_for(&client.id);
    let root = create_user(json!({"is_admin": true}));
    let flow = code_flow(&Browser::new(), &client, &root, SCOPE);
    assert_eq!(flow.id_claims["stackspin_roles"], json!(["admin"]));
    assert_eq!(flow.id_claims["groups"], json!(["admin"]));
}

#[test]
fn clients_without_an_app_need_no_role() {
    let client = create_oidc_client(json!({"scope": SCOPE}));
    let user = create_user(json!({}));
    let flow = code_flow(&Browser::new(), &client, &user, SCOPE);
    assert_eq!(flow.id_claims["stackspin_roles"], json!([]));
}
