//! The console's applications and clients sections through the router, in memory (issue 11
//! items 3 and 4): apps with a logo reach the launcher of a user with a role; a role changed
//! in place on the per-app page changes it, with the audit events of `edgeid role`; deletes
//! need a recent sign-in; a console client's generated secret is shown once and works at the
//! token endpoint; clients the Kubernetes sidecar manages, and the built-in console client,
//! are read-only; names are escaped; forms without their CSRF token do nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

const ADMIN_PW: &str = "correct-horse-battery";
const LOGO: &str = "https://cdn.example.test/grafana.png";

/// An admin browser signed in to the console.
fn root(host: &edgeid::testing::MemoryHost) -> Browser<'_> {
    create_admin(host, ADMIN_PW);
    let b = Browser::new(host);
    b.console_sign_in("root", ADMIN_PW);
    b
}

fn create_grafana(b: &Browser<'_>) {
    let resp = b.console_post(
        "/admin/console/apps/new",
        &[
            ("slug", "grafana"),
            ("name", "Grafana"),
            ("url", "https://grafana.example.test/"),
            ("client_id", "rp"),
            ("logo_url", LOGO),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(location(&resp), "/admin/console/apps/grafana?done=created");
}

fn set_role(b: &Browser<'_>, user: &str, role: &str, custom: &str) -> Response {
    b.console_post(
        "/admin/console/apps/grafana/roles",
        &[("user", user), ("role", role), ("custom", custom)],
    )
}

fn audit_kinds(host: &edgeid::testing::MemoryHost, kind: &str) -> Vec<serde_json::Value> {
    let resp = admin(host, "GET", &format!("/admin/audit?kind={kind}"), json!({}));
    json_of(&resp)["events"].as_array().unwrap().clone()
}

#[test]
fn issue11_an_app_with_a_logo_reaches_the_launcher_of_a_user_granted_a_role() {
    let (host, sub) = setup(json!({}));
    let b = root(&host);
    // An http logo is refused with the API's rule, and nothing is created.
    let resp = b.console_post(
        "/admin/console/apps/new",
        &[
            ("slug", "grafana"),
            ("name", "Grafana"),
            ("url", "https://grafana.example.test/"),
            ("client_id", "rp"),
            ("logo_url", "http://cdn.example.test/g.png"),
        ],
    );
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert!(text(&resp).contains("logo_url must be an absolute https URL"));
    assert_eq!(
        admin(&host, "GET", "/admin/apps/grafana", json!({})).status(),
        404
    );
    create_grafana(&b);
    let api = json_of(&admin(&host, "GET", "/admin/apps/grafana", json!({})));
    assert_eq!(api["logo_url"], LOGO);
    let list = text(&b.get("/admin/console/apps"));
    assert!(
        list.contains("href=\"/admin/console/apps/grafana\""),
        "{list}"
    );

    let alice = Browser::new(&host);
    let page = text(&alice.console_sign_in("alice", "wonderland-42"));
    assert!(!page.contains("Grafana"), "no role yet: {page}");
    // Granted by username on the per-app page.
    let resp = set_role(&b, "alice", "user", "");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let page = text(&alice.get("/"));
    assert!(
        page.contains("href=\"https://grafana.example.test/\""),
        "{page}"
    );
    assert!(page.contains(&format!("<img src=\"{LOGO}\"")), "{page}");
    let roles = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{sub}/roles"),
        json!({}),
    ));
    assert_eq!(roles["roles"], json!([{"app": "grafana", "role": "user"}]));
    let events = audit_kinds(&host, "role.granted");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subject"], sub.as_str());
    assert_eq!(events[0]["detail"]["app"], "grafana");
    assert_eq!(events[0]["detail"]["via"], "console");
    // The list counts her.
    let list = text(&b.get("/admin/console/apps"));
    assert!(list.contains("<td>1</td>"), "{list}");
    // Removing the logo in the edit form takes it off the launcher and the API.
    let resp = b.console_post(
        "/admin/console/apps/grafana/edit",
        &[
            ("name", "Grafana"),
            ("url", "https://grafana.example.test/"),
            ("client_id", "rp"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(!text(&alice.get("/")).contains("<img"));
    let api = json_of(&admin(&host, "GET", "/admin/apps/grafana", json!({})));
    assert!(api.get("logo_url").is_none(), "{api}");
}

#[test]
fn issue11_a_role_changed_in_place_changes_the_launcher() {
    let (host, sub) = setup(json!({}));
    let b = root(&host);
    create_grafana(&b);
    let alice = Browser::new(&host);
    alice.console_sign_in("alice", "wonderland-42");
    let roles = || {
        json_of(&admin(
            &host,
            "GET",
            &format!("/admin/users/{sub}/roles"),
            json!({}),
        ))["roles"]
            .clone()
    };
    set_role(&b, "alice@example.com", "user", "");
    let page = text(&b.get("/admin/console/apps/grafana"));
    assert!(page.contains("alice"), "{page}");
    assert!(
        page.contains("<option value=\"user\" selected>"),
        "the row's select shows her role: {page}"
    );
    // The row's form names her by id.
    for (role, custom, held, tile) in [
        ("admin", "", "admin", "admin"),
        ("custom", "editor", "editor", "editor"),
        ("user", "editor", "user", "user"),
    ] {
        let resp = set_role(&b, &sub, role, custom);
        assert_eq!(resp.status(), 303, "{role}: {}", text(&resp));
        assert_eq!(roles(), json!([{"app": "grafana", "role": held}]), "{role}");
        let launcher = text(&alice.get("/"));
        assert!(
            launcher.contains(&format!("<span class=\"roles\">{tile}</span>")),
            "{role}: {launcher}"
        );
    }
    // A bad custom role name changes nothing.
    let resp = set_role(&b, &sub, "custom", "Not Valid");
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("role must be 1-64 characters"));
    assert_eq!(roles(), json!([{"app": "grafana", "role": "user"}]));
    // None: the app leaves her launcher.
    set_role(&b, &sub, "none", "");
    assert_eq!(roles(), json!([]));
    assert!(!text(&alice.get("/")).contains("Grafana"));
    // Every step left the audit events `edgeid role grant|revoke` leaves.
    assert_eq!(audit_kinds(&host, "role.granted").len(), 4);
    assert_eq!(audit_kinds(&host, "role.revoked").len(), 4);
    // An unknown user is named as such.
    let resp = set_role(&b, "nobody", "user", "");
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("No user has this"));
}

#[test]
fn issue11_deleting_an_app_needs_a_recent_sign_in() {
    let (host, sub) = setup(json!({}));
    let b = root(&host);
    create_grafana(&b);
    set_role(&b, "alice", "user", "");
    host.clock.advance(600);
    let resp = b.get("/admin/console/apps/grafana/delete");
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("reauth=1"), "{}", location(&resp));
    let resp = b.console_post("/admin/console/apps/grafana/delete", &[]);
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("reauth=1"), "{}", location(&resp));
    assert_eq!(
        admin(&host, "GET", "/admin/apps/grafana", json!({})).status(),
        200,
        "a stale sign-in deletes nothing"
    );
    // Sign in again (password), then the confirmation page, then the delete.
    let resp = b.get(&location(&b.get("/admin/console/apps/grafana/delete")));
    let resp = b.get(&location(&resp));
    let resp = b.login(&resp, "root", ADMIN_PW);
    let page = b.console_follow(resp);
    assert_eq!(page.status(), 200, "{}", text(&page));
    assert!(text(&page).contains("1 user hold"), "{}", text(&page));
    let resp = b.console_post("/admin/console/apps/grafana/delete", &[]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(location(&resp), "/admin/console/apps?done=deleted");
    assert_eq!(
        admin(&host, "GET", "/admin/apps/grafana", json!({})).status(),
        404
    );
    let roles = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{sub}/roles"),
        json!({}),
    ));
    assert_eq!(roles["roles"], json!([]));
}

fn client_credentials(host: &edgeid::testing::MemoryHost, id: &str, secret: &str) -> Response {
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{id}:{secret}")
        )
    );
    send(
        host,
        "POST",
        "/oauth2/token",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials",
    )
}

/// The secret a client page shows once.
fn shown_secret(html: &str) -> Option<String> {
    let (_, rest) = html.split_once("<code class=\"secret\">")?;
    Some(rest.split_once("</code>")?.0.to_owned())
}

#[test]
fn issue11_a_console_client_secret_is_shown_once_and_works_at_the_token_endpoint() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    let resp = b.console_post(
        "/admin/console/clients/new",
        &[
            ("client_id", "svc"),
            ("client_name", "Service"),
            ("grant_client_credentials", "on"),
            ("scope", "api"),
            ("token_endpoint_auth_method", "client_secret_basic"),
            ("id_token_signed_response_alg", "RS256"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(location(&resp), "/admin/console/clients/svc?done=created");
    assert!(!location(&resp).contains("secret"));
    let page = text(&b.get(&location(&resp)));
    let secret = shown_secret(&page).unwrap_or_else(|| panic!("{page}"));
    assert!(secret.len() >= 40, "{secret}");
    let reload = text(&b.get("/admin/console/clients/svc"));
    assert!(shown_secret(&reload).is_none(), "shown once: {reload}");
    assert!(!reload.contains(&secret));
    let api = json_of(&admin(&host, "GET", "/admin/clients/svc", json!({})));
    assert_eq!(api["owner"], "console");
    let resp = client_credentials(&host, "svc", &secret);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(json_of(&resp)["access_token"].is_string());

    // Rotating: a new secret, shown once; the old one stops working.
    let resp = b.console_post("/admin/console/clients/svc/secret", &[]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let page = text(&b.get(&location(&resp)));
    let rotated = shown_secret(&page).unwrap_or_else(|| panic!("{page}"));
    assert_ne!(rotated, secret);
    assert_eq!(client_credentials(&host, "svc", &secret).status(), 401);
    assert_eq!(client_credentials(&host, "svc", &rotated).status(), 200);
    // Edited: the registration changes, the secret stays.
    let resp = b.console_post(
        "/admin/console/clients/svc/edit",
        &[
            ("client_name", "Service two"),
            ("grant_client_credentials", "on"),
            ("scope", "api other"),
            ("token_endpoint_auth_method", "client_secret_basic"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(shown_secret(&text(&b.get(&location(&resp)))).is_none());
    let api = json_of(&admin(&host, "GET", "/admin/clients/svc", json!({})));
    assert_eq!(api["client_name"], "Service two");
    assert_eq!(api["scope"], "api other");
    assert_eq!(client_credentials(&host, "svc", &rotated).status(), 200);
    // The API's validation: a confidential client without a redirect URI for the code flow.
    let resp = b.console_post(
        "/admin/console/clients/new",
        &[("client_id", "web"), ("grant_authorization_code", "on")],
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("need at least one redirect_uri"));
    assert_eq!(
        admin(&host, "GET", "/admin/clients/web", json!({})).status(),
        404
    );
}

#[test]
fn issue11_a_sidecar_client_and_the_console_client_are_read_only_in_the_console() {
    let (host, _) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({"client_id": "gitlab", "client_secret": "gitlab-secret-1", "client_name": "GitLab",
               "redirect_uris": ["https://gitlab.example.test/cb"], "owner": "ext-gitlab/apps"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let before = json_of(&admin(&host, "GET", "/admin/clients/gitlab", json!({})));
    let b = root(&host);
    let page = text(&b.get("/admin/console/clients/gitlab"));
    assert!(
        page.contains("Kubernetes OAuth2Client apps/ext-gitlab"),
        "{page}"
    );
    assert!(
        !page.contains("/admin/console/clients/gitlab/edit"),
        "{page}"
    );
    let list = text(&b.get("/admin/console/clients"));
    assert!(list.contains("Kubernetes OAuth2Client apps/ext-gitlab"));
    assert!(
        list.contains("edgeid-console"),
        "the built-in client is listed"
    );
    for path in ["edit", "delete"] {
        let resp = b.get(&format!("/admin/console/clients/gitlab/{path}"));
        assert_eq!(resp.status(), 403, "GET {path}");
    }
    for path in ["edit", "delete", "secret"] {
        let resp = b.console_post(
            &format!("/admin/console/clients/gitlab/{path}"),
            &[("client_name", "Taken"), ("grant_client_credentials", "on")],
        );
        assert_eq!(resp.status(), 403, "POST {path}: {}", text(&resp));
        assert!(text(&resp).contains("apps/ext-gitlab"));
    }
    let after = json_of(&admin(&host, "GET", "/admin/clients/gitlab", json!({})));
    assert_eq!(before, after, "nothing changed");

    let page = text(&b.get("/admin/console/clients/edgeid-console"));
    assert!(page.contains("edgeid (built in)"), "{page}");
    assert!(page.contains("/admin/console/callback"), "{page}");
    for path in ["edit", "delete"] {
        let resp = b.console_post(
            &format!("/admin/console/clients/edgeid-console/{path}"),
            &[],
        );
        assert_eq!(resp.status(), 403, "{path}");
    }
    // The console still signs in.
    assert_eq!(
        Browser::new(&host)
            .console_sign_in("alice", "wonderland-42")
            .status(),
        200
    );
}

#[test]
fn issue11_deleting_a_client_in_the_console_ends_its_grants_and_consents() {
    let (host, _) = setup(json!({}));
    let alice = Browser::new(&host);
    let code = first_login(&host, &alice);
    let tokens = json_of(&redeem(&host, &code));
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let b = root(&host);
    // `rp` was made through the API without an owner: the console may change it.
    let page = text(&b.get("/admin/console/clients/rp/delete"));
    assert!(page.contains("consents"), "{page}");
    let resp = b.console_post("/admin/console/clients/rp/delete", &[]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(
        admin(&host, "GET", "/admin/clients/rp", json!({})).status(),
        404
    );
    // Registered again under the same id, it inherits nothing.
    setup_client_again(&host);
    let resp = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    );
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    let resp = alice.get(&authorize_url(""));
    assert!(
        location(&resp).contains("/consent?request="),
        "consent is asked again: {}",
        location(&resp)
    );
}

fn setup_client_again(host: &edgeid::testing::MemoryHost) {
    let resp = admin(
        host,
        "POST",
        "/admin/clients",
        json!({"client_id": "rp", "client_secret": "rp-secret-123",
               "grant_types": ["authorization_code", "refresh_token"],
               "redirect_uris": [CB], "scope": "openid profile email offline_access"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
}

#[test]
fn issue11_app_and_client_names_are_escaped() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    let name = "<script>alert(1)</script>";
    let resp = b.console_post(
        "/admin/console/apps/new",
        &[
            ("slug", "evil"),
            ("name", name),
            ("url", "https://evil.example.test/"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let resp = b.console_post(
        "/admin/console/clients/new",
        &[
            ("client_id", "evil-client"),
            ("client_name", name),
            ("grant_client_credentials", "on"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    for path in [
        "/admin/console/apps",
        "/admin/console/apps/evil",
        "/admin/console/apps/evil/edit",
        "/admin/console/clients",
        "/admin/console/clients/evil-client",
        "/admin/console/clients/evil-client/edit",
    ] {
        let page = text(&b.get(path));
        assert!(!page.contains("<script>"), "{path}: {page}");
        assert!(page.contains("&#60;script&#62;"), "{path}: {page}");
    }
    // Granted a role, the user's launcher escapes it too.
    let resp = b.console_post(
        "/admin/console/apps/evil/roles",
        &[("user", "alice"), ("role", "user")],
    );
    assert_eq!(resp.status(), 303);
    let alice = Browser::new(&host);
    let page = text(&alice.console_sign_in("alice", "wonderland-42"));
    assert!(!page.contains("<script>") && page.contains("&#60;script&#62;"));
}

#[test]
fn issue11_app_and_client_forms_need_the_csrf_token_and_an_admin() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    create_grafana(&b);
    let forms: &[(&str, &str)] = &[
        (
            "/admin/console/apps/new",
            "slug=wiki&name=Wiki&url=https%3A%2F%2Fwiki.example.test%2F",
        ),
        ("/admin/console/apps/grafana/roles", "user=alice&role=admin"),
        ("/admin/console/apps/grafana/delete", ""),
        (
            "/admin/console/clients/new",
            "client_id=svc&grant_client_credentials=on",
        ),
        ("/admin/console/clients/rp/delete", ""),
        ("/admin/console/clients/rp/secret", ""),
    ];
    for (path, form) in forms {
        let resp = b.post(path, form);
        assert_eq!(resp.status(), 403, "no csrf: {path}");
        let resp = b.post(path, &format!("csrf=forged&{form}"));
        assert_eq!(resp.status(), 403, "forged csrf: {path}");
    }
    let alice = Browser::new(&host);
    alice.console_sign_in("alice", "wonderland-42");
    let csrf = alice.console_csrf("/");
    for (path, form) in forms {
        let resp = alice.post(path, &format!("csrf={csrf}&{form}"));
        assert_eq!(resp.status(), 403, "non-admin: {path}");
        assert_eq!(alice.get(path).status(), 403, "non-admin GET {path}");
    }
    // Nothing happened.
    assert_eq!(
        admin(&host, "GET", "/admin/apps/wiki", json!({})).status(),
        404
    );
    assert_eq!(
        admin(&host, "GET", "/admin/apps/grafana", json!({})).status(),
        200
    );
    assert_eq!(
        admin(&host, "GET", "/admin/clients/svc", json!({})).status(),
        404
    );
    assert_eq!(
        admin(&host, "GET", "/admin/clients/rp", json!({})).status(),
        200
    );
    assert!(audit_kinds(&host, "role.granted").is_empty());
    assert_ne!(
        client_credentials(&host, "rp", "rp-secret-123").status(),
        401,
        "the secret did not change"
    );
}

#[test]
fn issue11_the_admin_api_replaces_an_app_and_carries_its_logo() {
    let (host, _) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "wiki", "name": "Wiki", "url": "https://wiki.example.test/"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    assert!(
        json_of(&resp).get("logo_url").is_none(),
        "absent when unset"
    );
    let resp = admin(
        &host,
        "PUT",
        "/admin/apps/wiki",
        json!({"slug": "wiki", "name": "The wiki", "url": "https://wiki.example.test/",
               "logo_url": "https://wiki.example.test/logo.svg"}),
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let a = json_of(&admin(&host, "GET", "/admin/apps/wiki", json!({})));
    assert_eq!(a["name"], "The wiki");
    assert_eq!(a["logo_url"], "https://wiki.example.test/logo.svg");
    for (body, status) in [
        (
            json!({"slug": "other", "name": "W", "url": "https://wiki.example.test/"}),
            400,
        ),
        (
            json!({"slug": "wiki", "name": "W", "url": "https://wiki.example.test/",
                   "logo_url": "javascript:alert(1)"}),
            400,
        ),
    ] {
        let resp = admin(&host, "PUT", "/admin/apps/wiki", body);
        assert_eq!(resp.status(), status, "{}", text(&resp));
    }
    let resp = admin(
        &host,
        "PUT",
        "/admin/apps/nope",
        json!({"slug": "nope", "name": "N", "url": "https://n.example.test/"}),
    );
    assert_eq!(resp.status(), 404);
    // Deleting the app takes its logo along: a new app of the same slug has none.
    assert_eq!(
        admin(&host, "DELETE", "/admin/apps/wiki", json!({})).status(),
        204
    );
    admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "wiki", "name": "Wiki", "url": "https://wiki.example.test/"}),
    );
    let a = json_of(&admin(&host, "GET", "/admin/apps/wiki", json!({})));
    assert!(a.get("logo_url").is_none(), "{a}");
}
