//! The console's security views through the router, in memory (issue 11 item 5): the audit
//! log with its filters and paging, a user's sessions with "end" (which ends that browser's
//! console and settings sign-in), and key rotation behind a recent sign-in.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

const ADMIN_PW: &str = "correct-horse-battery";

fn root(host: &MemoryHost) -> Browser<'_> {
    create_admin(host, ADMIN_PW);
    let b = Browser::new(host);
    let page = b.console_sign_in("root", ADMIN_PW);
    assert_eq!(page.status(), 200, "{}", text(&page));
    b
}

fn new_user(host: &MemoryHost, username: &str) -> String {
    let resp = admin(
        host,
        "POST",
        "/admin/users",
        json!({"email": format!("{username}@example.com"), "username": username}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    json_of(&resp)["id"].as_str().unwrap().to_owned()
}

/// The `<tbody>` of a page (the listing, without the filter form).
fn rows(html: &str) -> &str {
    let start = html.find("<tbody>").map_or(html.len(), |i| i);
    let end = html.find("</tbody>").unwrap_or(html.len());
    &html[start..end.max(start)]
}

#[test]
fn issue11_the_audit_page_filters_by_kind_user_and_time() {
    let (host, alice) = setup(json!({}));
    let b = root(&host);
    // A failed sign-in of alice, later one of bob.
    let bob = new_user(&host, "bob");
    let t0 = host.clock.get();
    let failed = |name: &str| {
        let other = Browser::new(&host);
        let resp = other.get(&authorize_url(""));
        let resp = other.login(&resp, name, "not-the-password");
        assert_eq!(resp.status(), 401, "the login page again");
    };
    failed("alice");
    host.clock.advance(3600);
    failed("bob");

    let page = text(&b.get("/admin/console/audit"));
    assert!(
        page.contains("login.failure") && page.contains("user.created"),
        "{page}"
    );
    assert!(
        page.contains("<time datetime=\"2023-11-14T22:13:20Z\">"),
        "ISO UTC: {page}"
    );

    let page = text(&b.get("/admin/console/audit?kind=login.failure"));
    let listed = rows(&page);
    assert!(listed.contains(&alice) && listed.contains(&bob), "{listed}");
    assert!(!listed.contains("user.created"), "{listed}");

    // A user by username (as GET /admin/audit takes it).
    let page = text(&b.get("/admin/console/audit?kind=login.failure&user=bob"));
    let listed = rows(&page);
    assert!(
        listed.contains(&bob) && !listed.contains(&alice),
        "{listed}"
    );

    // A time range: [t0 + 30 min, ...) keeps bob's failure only; [..., t0 + 30 min) alice's.
    let half = "2023-11-14T22:43:20";
    assert_eq!(t0, 1_700_000_000);
    let page = text(&b.get(&format!(
        "/admin/console/audit?kind=login.failure&from={half}"
    )));
    let listed = rows(&page);
    assert!(
        listed.contains(&bob) && !listed.contains(&alice),
        "{listed}"
    );
    let page = text(&b.get(&format!(
        "/admin/console/audit?kind=login.failure&to={half}"
    )));
    let listed = rows(&page);
    assert!(
        listed.contains(&alice) && !listed.contains(&bob),
        "{listed}"
    );

    // A bad time is said, not a 500; a <script> in a filter comes back escaped.
    let resp = b.get("/admin/console/audit?from=yesterday&kind=%3Cscript%3Ealert(1)%3C/script%3E");
    assert_eq!(resp.status(), 200);
    let page = text(&resp);
    assert!(page.contains("From must be a UTC time"), "{page}");
    assert!(
        !page.contains("<script>") && page.contains("&#60;script&#62;"),
        "{page}"
    );
}

#[test]
fn issue11_the_audit_page_pages_through_older_events() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    for i in 0..60 {
        new_user(&host, &format!("user{i:02}"));
    }
    let page = text(&b.get("/admin/console/audit?kind=user.created"));
    assert_eq!(rows(&page).matches("<tr>").count(), 50, "{page}");
    assert!(page.contains("user59"), "newest first");
    let href = page
        .split("href=\"/admin/console/audit?")
        .filter_map(|s| s.split('"').next())
        .find(|q| q.contains("after="))
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        href.contains("kind=user.created"),
        "the filter is kept: {href}"
    );
    let older = text(&b.get(&format!("/admin/console/audit?{href}")));
    let listed = rows(&older);
    // 60 users + alice + root = 62 user.created events: 12 on the second page.
    assert_eq!(listed.matches("<tr>").count(), 12, "{older}");
    assert!(
        listed.contains("user00") && !listed.contains("user59"),
        "{listed}"
    );
    assert!(!older.contains("Older events"));
}

#[test]
fn issue11_ending_a_session_in_the_console_ends_that_browsers_sign_in() {
    let (host, alice) = setup(json!({}));
    let admin_b = root(&host);
    let laptop = Browser::new(&host);
    laptop.console_sign_in("alice", "wonderland-42");
    let phone = Browser::new(&host);
    phone.console_sign_in("alice", "wonderland-42");
    assert_eq!(laptop.get("/").status(), 200);

    let page = text(&admin_b.get(&format!("/admin/console/sessions?user={alice}")));
    assert!(page.contains("Sessions of alice"), "{page}");
    let back = format!("/admin/console/users/{alice}");
    assert!(page.contains(&format!("href=\"{back}\"")), "{page}");
    assert_eq!(admin_b.get(&back).status(), 200, "the user's page");
    let sids: Vec<String> = page
        .split("name=\"sid\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(sids.len(), 2, "{page}");
    assert!(page.contains("<td>pwd</td>"), "methods shown: {page}");

    // End one: exactly one of the two browsers is signed out, of the console and of edgeid.
    let resp = admin_b.console_post(
        "/admin/console/sessions/end",
        &[("user", &alice), ("sid", &sids[0])],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(location(&resp).contains("done=one"), "{}", location(&resp));
    let signed_in = [&laptop, &phone]
        .iter()
        .filter(|b| b.get("/").status() == 200)
        .count();
    assert_eq!(signed_in, 1);
    let ended = if laptop.get("/").status() == 303 {
        &laptop
    } else {
        &phone
    };
    assert!(text(&ended.get("/settings")).contains("action=\"/settings/login\""));
    let page = text(&admin_b.get("/admin/console/sessions?user=alice&done=one"));
    assert_eq!(page.matches("name=\"sid\"").count(), 1, "{page}");

    // End all.
    let resp = admin_b.console_post(
        "/admin/console/sessions/end",
        &[("user", "alice"), ("all", "1")],
    );
    assert_eq!(resp.status(), 303);
    assert_eq!(laptop.get("/").status(), 303);
    assert_eq!(phone.get("/").status(), 303);
    assert_eq!(
        admin_b.get("/").status(),
        200,
        "the admin's own session stays"
    );
    let page = text(&admin_b.get(&format!("/admin/console/sessions?user={alice}")));
    assert!(page.contains("No active sessions"), "{page}");

    // As the settings page: one session.ended event per session, naming who ended it.
    let events = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/audit?kind=session.ended&subject={alice}"),
        json!({}),
    ));
    assert_eq!(events["events"].as_array().unwrap().len(), 2, "{events}");

    // Refusals: without CSRF, and for a non-admin.
    let resp = admin_b.post(
        "/admin/console/sessions/end",
        &format!("user={alice}&all=1"),
    );
    assert_eq!(resp.status(), 403);
    let user = Browser::new(&host);
    user.console_sign_in("alice", "wonderland-42");
    assert_eq!(
        user.get(&format!("/admin/console/sessions?user={alice}"))
            .status(),
        403
    );
    let resp = user.console_post(
        "/admin/console/sessions/end",
        &[("user", "root"), ("all", "1")],
    );
    assert_eq!(resp.status(), 403);
    assert_eq!(admin_b.get("/").status(), 200);
}

fn kids(host: &MemoryHost) -> Vec<String> {
    let jwks = json_of(&send(host, "GET", "/.well-known/jwks.json", &[], ""));
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn issue11_rotating_keys_needs_a_recent_sign_in_and_publishes_a_new_key() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    let page = text(&b.get("/admin/console/keys"));
    assert!(page.contains("ES256") && page.contains("RS256"), "{page}");
    assert!(
        page.contains(">current<") && page.contains(">next<"),
        "{page}"
    );
    let before = kids(&host);

    // Ten minutes later the sign-in is not recent: the confirmation page and the POST both
    // send the admin to sign in again, and nothing rotates.
    host.clock.advance(600);
    let resp = b.get("/admin/console/keys/rotate?alg=ES256");
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("reauth=1"), "{}", location(&resp));
    let resp = b.console_post("/admin/console/keys/rotate", &[("alg", "ES256")]);
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("reauth=1"), "{}", location(&resp));
    assert_eq!(kids(&host), before, "nothing rotated");

    // Sign in again (prompt=login): back on the confirmation page.
    let resp = b.get(&location(&resp));
    let auth = location(&resp);
    assert!(auth.contains("prompt=login"), "{auth}");
    let resp = b.get(&auth);
    let resp = b.login(&resp, "root", ADMIN_PW);
    let page = b.console_follow(resp);
    assert_eq!(page.status(), 200, "{}", text(&page));
    assert!(
        text(&page).contains("Rotate ES256 signing keys"),
        "{}",
        text(&page)
    );

    let resp = b.console_post("/admin/console/keys/rotate", &[("alg", "ES256")]);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let after = kids(&host);
    let fresh: Vec<_> = after.iter().filter(|k| !before.contains(k)).collect();
    assert_eq!(fresh.len(), 1, "a new next key is published: {after:?}");
    assert!(
        before.iter().all(|k| after.contains(k)),
        "the retired key stays published"
    );
    let page = text(&b.get(&location(&resp)));
    assert!(
        page.contains("ES256 keys rotated") && page.contains(">retired<"),
        "{page}"
    );
    let events = json_of(&admin(
        &host,
        "GET",
        "/admin/audit?kind=keys.rotated",
        json!({}),
    ));
    assert_eq!(events["events"][0]["detail"]["alg"], "ES256");

    // Refusals: an unknown alg, no CSRF token, a non-admin.
    let resp = b.console_post("/admin/console/keys/rotate", &[("alg", "HS256")]);
    assert_eq!(resp.status(), 400);
    let resp = b.post("/admin/console/keys/rotate", "alg=ES256");
    assert_eq!(resp.status(), 403);
    let user = Browser::new(&host);
    user.console_sign_in("alice", "wonderland-42");
    assert_eq!(
        user.get("/admin/console/keys/rotate?alg=ES256").status(),
        403
    );
    let resp = user.console_post("/admin/console/keys/rotate", &[("alg", "ES256")]);
    assert_eq!(resp.status(), 403);
    assert_eq!(kids(&host).len(), after.len());
}
