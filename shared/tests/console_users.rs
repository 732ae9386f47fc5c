//! The console's users section through the router, in memory (issue 11 items 2 and 3): create
//! with a welcome link shown once, search and paging, profile edits with the admin API's
//! rules, roles per app, and the destructive actions behind a recent sign-in.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

const ADMIN_PW: &str = "correct-horse-battery";
const USERS: &str = "/admin/console/users";

/// A host with alice (see `setup`) and the admin `root`, and root signed in to the console.
fn signed_in_admin(host: &MemoryHost) -> (Browser<'_>, String) {
    let root = create_admin(host, ADMIN_PW);
    let b = Browser::new(host);
    let page = b.console_sign_in("root", ADMIN_PW);
    assert_eq!(page.status(), 200, "{}", text(&page));
    (b, root)
}

fn user_json(host: &MemoryHost, id: &str) -> Value {
    let resp = admin(host, "GET", &format!("/admin/users/{id}"), json!({}));
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    json_of(&resp)
}

fn events(host: &MemoryHost, kind: &str) -> Vec<Value> {
    let resp = admin(host, "GET", &format!("/admin/audit?kind={kind}"), json!({}));
    json_of(&resp)["events"].as_array().unwrap().clone()
}

/// Sets a password through a recovery link in a fresh browser.
fn use_link(host: &MemoryHost, link: &str, password: &str) -> Response {
    let b = Browser::new(host);
    let page = b.get(link);
    assert_eq!(page.status(), 200, "{}", text(&page));
    let html = text(&page);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &input(&html, "token"))
        .append_pair("form", &input(&html, "form"))
        .append_pair("password", password)
        .append_pair("confirm", password)
        .finish();
    b.post("/recovery/password", &form)
}

#[test]
fn issue11_console_create_shows_the_welcome_link_once_and_it_sets_a_password() {
    let (host, _) = setup(json!({}));
    let (b, root) = signed_in_admin(&host);
    let form = b.get(&format!("{USERS}/new"));
    assert_eq!(form.status(), 200);
    assert!(text(&form).contains("<label for=\"email\">"));
    let resp = b.console_post(
        &format!("{USERS}/new"),
        &[
            ("name", "Bob Builder"),
            ("email", "bob@example.com"),
            ("username", "bob"),
            ("welcome", "1"),
        ],
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let html = text(&resp);
    assert!(html.contains("shown only this once"), "{html}");
    let link = input(&html, "link");
    assert!(link.contains("/recovery?token="), "{link}");
    let token = link.split_once("token=").unwrap().1.to_owned();

    // The user page shows it no more; nor does the list.
    let created = events(&host, "user.created");
    let bob = created[0]["subject"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["detail"]["via"], "console");
    assert_eq!(created[0]["detail"]["by"], root.as_str());
    let page = text(&b.get(&format!("{USERS}/{bob}")));
    assert!(page.contains("Password: not set yet"), "{page}");
    assert!(!page.contains(&token));
    assert!(!text(&b.get(USERS)).contains(&token));
    let issued = events(&host, "recovery.issued");
    assert_eq!(issued[0]["detail"]["via"], "console");
    assert_eq!(issued[0]["detail"]["purpose"], "welcome");

    // Bob sets a password through the link and signs in to an empty launcher.
    let resp = use_link(&host, &link, "building-things-7");
    assert!(
        resp.status().is_success() || resp.status() == 303,
        "{}",
        text(&resp)
    );
    let bob_b = Browser::new(&host);
    let launcher = bob_b.console_sign_in("bob", "building-things-7");
    assert!(text(&launcher).contains("You have no applications yet"));
    // The link was single use.
    let again = Browser::new(&host).get(&link);
    assert!(!text(&again).contains("name=\"token\""), "{}", text(&again));
}

#[test]
fn issue11_console_create_refuses_bad_input_with_the_values_and_writes_nothing() {
    let (host, _) = setup(json!({}));
    let (b, _) = signed_in_admin(&host);
    for (email, username, message) in [
        ("not-an-address", "carol", "email must be"),
        ("carol@example.com", "a b", "username must be"),
    ] {
        let resp = b.console_post(
            &format!("{USERS}/new"),
            &[
                ("name", "<b>Carol</b>"),
                ("email", email),
                ("username", username),
            ],
        );
        assert_eq!(resp.status(), 400, "{}", text(&resp));
        let html = text(&resp);
        assert!(html.contains(message), "{html}");
        assert!(
            html.contains("value=\"&#60;b&#62;Carol&#60;/b&#62;\"")
                || html.contains("value=\"&lt;b&gt;Carol&lt;/b&gt;\""),
            "{html}"
        );
        assert!(!html.contains("<b>Carol"));
    }
    // Taken username: 409, the form again.
    let resp = b.console_post(
        &format!("{USERS}/new"),
        &[("email", "other@example.com"), ("username", "alice")],
    );
    assert_eq!(resp.status(), 409, "{}", text(&resp));
    assert!(
        events(&host, "user.created").len() == 2,
        "alice and root only"
    );
}

#[test]
fn issue11_console_user_list_searches_and_pages() {
    let (host, alice) = setup(json!({}));
    let (b, _) = signed_in_admin(&host);
    for i in 0..60 {
        let resp = admin(
            &host,
            "POST",
            "/admin/users",
            json!({"email": format!("p{i:02}@example.com"), "username": format!("person{i:02}"),
                   "name": format!("Person {i:02}")}),
        );
        assert_eq!(resp.status(), 201);
    }
    admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "grafana", "name": "Grafana", "url": "https://grafana.example.test/", "client_id": "rp"}),
    );
    admin(
        &host,
        "PUT",
        &format!("/admin/users/{alice}/roles/grafana/user"),
        json!({}),
    );
    admin(
        &host,
        "PUT",
        &format!("/admin/users/{alice}/roles/grafana/editor"),
        json!({}),
    );

    let page = text(&b.get(&format!("{USERS}?q=liddell")));
    assert!(page.contains(">alice</a>"), "{page}");
    assert!(!page.contains("person"), "{page}");
    // Alice: two roles, signed in once (setup's sign-in is none: no session), active.
    let row = page.split(">alice</a>").nth(1).unwrap();
    assert!(
        row.contains("<td>active</td><td>no</td><td>2</td>"),
        "{row}"
    );
    let page = text(&b.get(&format!("{USERS}?q=root")));
    assert!(page.contains("<td>yes</td>"), "root is an admin: {page}");
    assert!(page.contains(" UTC</td>"), "root signed in: {page}");
    // A LIKE wildcard is matched literally.
    assert!(text(&b.get(&format!("{USERS}?q=%25"))).contains("No user matches"));

    // 62 users: two pages of 50 and 12, no user on both.
    let first = text(&b.get(USERS));
    let marker = "href=\"/admin/console/users?";
    let start = first.find(marker).expect("a next link") + "href=\"".len();
    let next = first[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = text(&b.get(&next));
    let names = |html: &str| -> Vec<String> {
        html.split("\">")
            .filter_map(|s| {
                s.split("</a></td>")
                    .next()
                    .filter(|n| n.len() < 20 && !n.contains('<'))
                    .map(str::to_owned)
            })
            .filter(|n| n.starts_with("person") || n == "alice" || n == "root")
            .collect()
    };
    let (a, c) = (names(&first), names(&second));
    assert_eq!(a.len(), 50, "{a:?}");
    assert_eq!(c.len(), 12, "{c:?}");
    assert!(a.iter().all(|n| !c.contains(n)));
    assert!(!second.contains("Next page"));
}

#[test]
fn issue11_console_profile_edits_are_escaped_validated_and_audited() {
    let (host, alice) = setup(json!({}));
    let (b, root) = signed_in_admin(&host);
    let path = format!("{USERS}/{alice}");
    let page = text(&b.get(&path));
    assert!(page.contains("value=\"alice@example.com\""), "{page}");
    let profile = |name: &str, email: &str| {
        b.console_post(
            &path,
            &[
                ("name", name),
                ("given_name", "Alice"),
                ("family_name", "Liddell"),
                ("email", email),
                ("username", "alice"),
                ("email_verified", "1"),
            ],
        )
    };
    let resp = profile("<script>alert(1)</script>", "alice@example.com");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(
        user_json(&host, &alice)["name"],
        "<script>alert(1)</script>"
    );
    for html in [text(&b.get(&path)), text(&b.get(USERS))] {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{html}"
        );
    }
    let updated = events(&host, "user.updated");
    assert_eq!(updated[0]["detail"]["changed"], json!(["name"]));
    assert_eq!(updated[0]["detail"]["via"], "console");
    assert_eq!(updated[0]["detail"]["by"], root.as_str());
    assert!(text(&b.get(&format!("{path}?done=saved"))).contains("The profile was saved."));

    // A bad email: 400, the form with the values sent, nothing written.
    let resp = profile("Changed Name", "nope");
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    let html = text(&resp);
    assert!(html.contains("email must be"), "{html}");
    assert!(html.contains("value=\"Changed Name\""), "{html}");
    assert!(html.contains("value=\"nope\""), "{html}");
    let u = user_json(&host, &alice);
    assert_eq!(
        (u["name"].as_str(), u["email"].as_str()),
        (Some("<script>alert(1)</script>"), Some("alice@example.com"))
    );
    assert_eq!(events(&host, "user.updated").len(), 1);
    // Another user's email: 409.
    assert_eq!(profile("x", "root@example.com").status(), 409);
}

#[test]
fn issue11_console_roles_per_app_change_the_users_launcher() {
    let (host, alice) = setup(json!({}));
    let (b, root) = signed_in_admin(&host);
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "grafana", "name": "Grafana", "url": "https://grafana.example.test/", "client_id": "rp"}),
    );
    assert!(resp.status().is_success(), "{}", text(&resp));
    let alice_b = Browser::new(&host);
    alice_b.console_sign_in("alice", "wonderland-42");
    let launcher = |b: &Browser<'_>| text(&b.get("/"));
    assert!(!launcher(&alice_b).contains("grafana.example.test"));

    let roles = format!("{USERS}/{alice}/roles");
    let resp = b.console_post(&roles, &[("app", "grafana"), ("set", "user")]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(launcher(&alice_b).contains("href=\"https://grafana.example.test/\""));
    let roles_json = || {
        json_of(&admin(
            &host,
            "GET",
            &format!("/admin/users/{alice}/roles"),
            json!({}),
        ))["roles"]
            .clone()
    };
    assert_eq!(roles_json(), json!([{"app": "grafana", "role": "user"}]));
    // admin replaces user (one standard role shown in the select).
    b.console_post(&roles, &[("app", "grafana"), ("set", "admin")]);
    assert_eq!(roles_json(), json!([{"app": "grafana", "role": "admin"}]));
    let page = text(&b.get(&format!("{USERS}/{alice}")));
    assert!(page.contains("<option value=\"admin\" selected>"), "{page}");
    // A custom role is shown and can be removed; the standard role stays.
    admin(
        &host,
        "PUT",
        &format!("/admin/users/{alice}/roles/grafana/editor"),
        json!({}),
    );
    assert!(text(&b.get(&format!("{USERS}/{alice}"))).contains("remove editor"));
    b.console_post(&roles, &[("app", "grafana"), ("revoke", "editor")]);
    assert_eq!(roles_json(), json!([{"app": "grafana", "role": "admin"}]));
    // none revokes it: the launcher no longer shows the app.
    b.console_post(&roles, &[("app", "grafana"), ("set", "none")]);
    assert_eq!(roles_json(), json!([]));
    assert!(!launcher(&alice_b).contains("grafana.example.test"));
    // The audit events are the API's.
    let kinds: Vec<String> = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/audit?subject={alice}"),
        json!({}),
    ))["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "role.granted").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "role.revoked").count(),
        3,
        "{kinds:?}"
    );
    // ... with who did it: all but the API's grant of `editor` came from the console.
    let events = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/audit?subject={alice}"),
        json!({}),
    ))["events"]
        .clone();
    let by_console = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("role."))
        .filter(|e| e["detail"]["via"] == "console" && e["detail"]["by"] == root.as_str())
        .count();
    assert_eq!(by_console, 5, "{events}");
    // An unknown app or a bad choice changes nothing.
    let resp = b.console_post(&roles, &[("app", "nope"), ("set", "user")]);
    assert_eq!(resp.status(), 404, "{}", text(&resp));
    let resp = b.console_post(&roles, &[("app", "grafana"), ("set", "owner")]);
    assert_eq!(resp.status(), 400);
    assert_eq!(roles_json(), json!([]));
}

/// Signs in again (password) from the redirect a stale confirmation page answered; returns
/// the page it comes back to.
fn reauthenticate(b: &Browser<'_>, resp: Response) -> Response {
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert!(
        loc.contains("/admin/console/login?") && loc.contains("reauth=1"),
        "{loc}"
    );
    let resp = b.get(&loc);
    assert!(location(&resp).contains("prompt=login"));
    let resp = b.get(&location(&resp));
    assert!(
        location(&resp).contains("/login?request="),
        "the old sign-in is not enough"
    );
    let resp = b.login(&resp, "root", ADMIN_PW);
    b.console_follow(resp)
}

#[test]
fn issue11_console_delete_disable_and_totp_removal_need_a_recent_sign_in() {
    let (host, alice) = setup(json!({}));
    let (b, _) = signed_in_admin(&host);
    let base = format!("{USERS}/{alice}");
    block_on(edgeid::totp::set_enrolled(
        &host.sql,
        &alice,
        true,
        host.clock.get(),
    ))
    .unwrap();
    host.clock.advance(6 * 60);
    for action in ["disable", "remove-totp", "delete"] {
        let path = format!("{base}/{action}");
        let resp = b.get(&path);
        assert_eq!(resp.status(), 303, "{action}: {}", text(&resp));
        assert!(location(&resp).contains("reauth=1"), "{action}");
        let resp = b.console_post(&path, &[]);
        assert_eq!(resp.status(), 403, "{action}: {}", text(&resp));
        assert!(text(&resp).contains("needs a recent sign-in"));
    }
    let u = user_json(&host, &alice);
    assert_eq!(u["disabled"], false);
    assert!(block_on(edgeid::totp::enrolled(&host.sql, &alice)).unwrap());

    // Signed in again: the confirmation pages name the consequences, and the POSTs work.
    let page = reauthenticate(&b, b.get(&format!("{base}/remove-totp")));
    assert_eq!(page.status(), 200, "{}", text(&page));
    assert!(text(&page).contains("recovery codes stop working"));
    let resp = b.console_post(&format!("{base}/remove-totp"), &[]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(!block_on(edgeid::totp::enrolled(&host.sql, &alice)).unwrap());
    assert_eq!(events(&host, "totp.removed")[0]["detail"]["via"], "console");

    let page = text(&b.get(&format!("{base}/disable")));
    assert!(page.contains("All their sessions end now"), "{page}");
    assert_eq!(
        b.console_post(&format!("{base}/disable"), &[]).status(),
        303
    );
    assert_eq!(user_json(&host, &alice)["disabled"], true);
    assert_eq!(b.console_post(&format!("{base}/enable"), &[]).status(), 303);
    assert_eq!(user_json(&host, &alice)["disabled"], false);

    let page = text(&b.get(&format!("{base}/delete")));
    for consequence in [
        "sessions end",
        "grant",
        "roles on every app",
        "cannot be undone",
        "password, second factor",
    ] {
        assert!(page.contains(consequence), "{consequence}: {page}");
    }
    let resp = b.console_post(&format!("{base}/delete"), &[]);
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).ends_with("/admin/console/users?done=deleted"));
    assert_eq!(
        admin(&host, "GET", &format!("/admin/users/{alice}"), json!({})).status(),
        404
    );
    assert!(
        block_on(edgeid::user::password_hash(&host.credentials, &alice))
            .unwrap()
            .is_none()
    );
    assert!(text(&b.get(&location(&resp))).contains("The user was deleted."));
    assert_eq!(b.get(&base).status(), 404);
}

#[test]
fn issue11_console_disable_and_end_sessions_end_the_users_console_sign_in() {
    let (host, alice) = setup(json!({}));
    let (b, _) = signed_in_admin(&host);
    let alice_b = Browser::new(&host);
    alice_b.console_sign_in("alice", "wonderland-42");
    let resp = b.console_post(&format!("{USERS}/{alice}/end-sessions"), &[]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(alice_b.get("/").status(), 303, "signed out");
    assert_eq!(events(&host, "session.ended").len(), 1);

    alice_b.console_sign_in("alice", "wonderland-42");
    // A code for a relying party, to see its grant revoked.
    let rp = Browser::new(&host);
    let code = first_login(&host, &rp);
    let tokens = json_of(&redeem(&host, &code));
    let resp = b.console_post(&format!("{USERS}/{alice}/disable"), &[]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(
        alice_b.get("/").status(),
        303,
        "a disabled user is signed out"
    );
    let ui = userinfo(&host, tokens["access_token"].as_str().unwrap());
    assert_eq!(ui.status(), 401, "the grant was revoked");
    let disabled = events(&host, "user.disabled");
    assert_eq!(disabled[0]["detail"]["via"], "console");
    // A reset link is refused for a disabled user.
    let resp = b.console_post(&format!("{USERS}/{alice}/reset"), &[]);
    assert_eq!(resp.status(), 409);
}

#[test]
fn issue11_console_reset_link_is_shown_once_or_sent_when_mail_is_configured() {
    let (mut host, alice) = setup(json!({}));
    host.vars.insert(
        "mail_api_url".into(),
        "https://mail.example.test/send".into(),
    );
    host.vars
        .insert("mail_from".into(), "edgeid@example.test".into());
    let (b, _) = signed_in_admin(&host);
    let resp = b.console_post(&format!("{USERS}/{alice}/reset"), &[]);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let html = text(&resp);
    assert!(
        html.contains("A password reset link was sent to alice@example.com"),
        "{html}"
    );
    assert!(!html.contains("/recovery?token="), "not shown when mailed");
    let mails = host.mails.borrow();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "alice@example.com");
}

#[test]
fn issue11_the_last_admin_cannot_demote_disable_or_delete_themselves() {
    let (host, alice) = setup(json!({}));
    let (b, root) = signed_in_admin(&host);
    let own = format!("{USERS}/{root}");
    let demote = || {
        b.console_post(
            &own,
            &[
                ("name", "Root Admin"),
                ("email", "root@example.com"),
                ("username", "root"),
                ("email_verified", "1"),
            ],
        )
    };
    let resp = demote();
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert!(text(&resp).contains("last enabled administrator"));
    assert_eq!(user_json(&host, &root)["is_admin"], true);
    for action in ["disable", "delete"] {
        assert!(text(&b.get(&format!("{own}/{action}"))).contains("last enabled administrator"));
        let resp = b.console_post(&format!("{own}/{action}"), &[]);
        assert_eq!(resp.status(), 400, "{action}");
    }
    assert_eq!(user_json(&host, &root)["disabled"], false);
    // A disabled admin does not count; an enabled one does.
    admin(
        &host,
        "PATCH",
        &format!("/admin/users/{alice}"),
        json!({"is_admin": true}),
    );
    admin(
        &host,
        "POST",
        &format!("/admin/users/{alice}/disable"),
        json!({}),
    );
    assert_eq!(demote().status(), 400);
    admin(
        &host,
        "POST",
        &format!("/admin/users/{alice}/enable"),
        json!({}),
    );
    let resp = demote();
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(location(&resp), "/");
    assert_eq!(user_json(&host, &root)["is_admin"], false);
    assert_eq!(b.get(USERS).status(), 403, "no longer an admin");
}

#[test]
fn issue11_console_user_forms_need_csrf_and_an_admin() {
    let (host, alice) = setup(json!({}));
    let (b, _) = signed_in_admin(&host);
    let create = "name=Eve&email=eve%40example.com&username=eve";
    for form in [create.to_owned(), format!("csrf=bogus&{create}")] {
        let resp = b.post(&format!("{USERS}/new"), &form);
        assert_eq!(resp.status(), 403, "{form}");
    }
    let resp = b.post(&format!("{USERS}/{alice}/end-sessions"), "");
    assert_eq!(resp.status(), 403);
    assert_eq!(events(&host, "user.created").len(), 2);
    // A non-admin with a valid token of their own.
    let alice_b = Browser::new(&host);
    alice_b.console_sign_in("alice", "wonderland-42");
    let csrf = alice_b.console_csrf("/");
    let resp = alice_b.post(&format!("{USERS}/new"), &format!("csrf={csrf}&{create}"));
    assert_eq!(resp.status(), 403);
    assert_eq!(alice_b.get(&format!("{USERS}/{alice}")).status(), 403);
    assert_eq!(events(&host, "user.created").len(), 2);
    // Unknown users and paths are 404.
    assert_eq!(b.get(&format!("{USERS}/no-such-user")).status(), 404);
    assert_eq!(b.get(&format!("{USERS}/{alice}/nope")).status(), 404);
}
