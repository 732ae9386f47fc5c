//! Credential changes end what they should (issue 9, item 4), in memory: a password change on
//! the settings page ends the user's other sessions (this one stays), revokes their grants
//! (refresh tokens, access tokens, codes not yet redeemed) and kills open recovery links; a
//! reset through a recovery link leaves its new session the only one; an admin `set-password`
//! ends everything; a code issued before its grant was revoked (revoked app, disabled user)
//! redeems to `invalid_grant`; deleting a client deletes its consents, grants, codes and
//! refresh tokens, so a client registered again under the same id inherits nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

use edgeid::ports::{Sql as _, Statement};

const PASSWORD: &str = "wonderland-42";

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Every `<input type="hidden" name=".." value="..">` of a page.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let marker = format!("{name}=\"");
        let start = tag.find(&marker)? + marker.len();
        let end = tag[start..].find('"')? + start;
        Some(
            tag[start..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            if !tag.contains("type=\"hidden\"") {
                return None;
            }
            Some((attr(tag, "name")?, attr(tag, "value")?))
        })
        .collect()
}

/// Submits the form of `html` with its hidden fields and `pairs` to `action`.
fn submit(b: &Browser<'_>, html: &str, action: &str, pairs: &[(&str, &str)]) -> Response {
    let hidden = hidden_inputs(html);
    let mut all: Vec<(&str, &str)> = hidden
        .iter()
        .filter(|(k, _)| !pairs.iter().any(|(n, _)| n == k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.extend_from_slice(pairs);
    b.post(action, &form(&all))
}

/// Signs `b` in at the settings page's own form.
fn settings_login(b: &Browser<'_>, password: &str) {
    let page = b.get("/settings");
    assert_eq!(page.status(), 200);
    let resp = submit(
        b,
        &text(&page),
        "/settings/login",
        &[("identifier", "alice"), ("password", password)],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
}

fn signed_in_at_settings(b: &Browser<'_>) -> bool {
    text(&b.get("/settings")).contains("Your account")
}

/// A settings form posted with the CSRF token of a fresh settings page.
fn settings_post(b: &Browser<'_>, path: &str, pairs: &[(&str, &str)]) -> Response {
    let csrf = input(&text(&b.get("/settings")), "csrf");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(pairs);
    b.post(path, &form(&all))
}

/// Whether `b`'s session still completes an authorization request without a login.
fn session_alive(b: &Browser<'_>) -> bool {
    let resp = b.get(&authorize_url("&prompt=none"));
    match callback(&resp).get("error").map(String::as_str) {
        None => true,
        Some("login_required") => false,
        Some(other) => panic!("prompt=none answered {other}"),
    }
}

/// A signed-in browser's redeemed tokens: (refresh token, access token).
fn tokens_of(host: &MemoryHost, b: &Browser<'_>) -> (String, String) {
    let resp = b.get(&authorize_url(""));
    let code = callback(&resp)["code"].clone();
    let body = json_of(&redeem(host, &code));
    (
        body["refresh_token"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

fn refresh(host: &MemoryHost, rt: &str) -> Response {
    token(
        host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    )
}

fn error_of(resp: &Response) -> String {
    json_of(resp)["error"].as_str().unwrap_or("").to_owned()
}

/// A reset link issued through the admin API; answers its path and query.
fn reset_link(host: &MemoryHost) -> String {
    let resp = admin(
        host,
        "POST",
        "/admin/users/alice/recovery",
        json!({"purpose": "reset"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    json_of(&resp)["link"]
        .as_str()
        .unwrap()
        .strip_prefix(edgeid::testing::ISSUER)
        .unwrap()
        .to_owned()
}

/// Follows a recovery link in `b` and sets `password` through its form.
fn use_link(b: &Browser<'_>, link: &str, password: &str) -> Response {
    let page = b.get(link);
    assert_eq!(page.status(), 200, "{}", text(&page));
    submit(
        b,
        &text(&page),
        "/recovery/password",
        &[("password", password), ("confirm", password)],
    )
}

fn count(host: &MemoryHost, q: &'static str) -> i64 {
    let rows = block_on(host.sql.query(Statement::new(q, vec![]))).unwrap();
    rows[0].int(0).unwrap()
}

/// Alice holds a session with working tokens in `other`, and a reset link is open.
fn alice_with_another_session(host: &MemoryHost) -> (Browser<'_>, String, String, String) {
    let other = Browser::new(host);
    let code = first_login(host, &other);
    let body = json_of(&redeem(host, &code));
    let at = body["access_token"].as_str().unwrap().to_owned();
    let first_rt = body["refresh_token"].as_str().unwrap();
    let rotated = refresh(host, first_rt);
    assert_eq!(rotated.status(), 200, "the refresh token works");
    let rt = json_of(&rotated)["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(userinfo(host, &at).status(), 200);
    assert!(session_alive(&other));
    (other, rt, at, reset_link(host))
}

#[test]
fn issue9_a_settings_password_change_ends_other_sessions_grants_and_links_but_not_this_one() {
    let (host, _) = setup(json!({}));
    let (other, rt, at, link) = alice_with_another_session(&host);
    // A code issued before the change, not yet redeemed.
    let pending = callback(&other.get(&authorize_url("")))["code"].clone();

    let me = Browser::new(&host);
    settings_login(&me, PASSWORD);
    let (my_rt, _) = tokens_of(&host, &me);
    let resp = settings_post(
        &me,
        "/settings/password",
        &[
            ("new_password", "looking-glass-1"),
            ("confirm_password", "looking-glass-1"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(
        count(
            &host,
            "SELECT count(*) FROM grants WHERE revoked_at IS NULL"
        ),
        0,
        "every grant of the user is revoked"
    );

    assert!(
        signed_in_at_settings(&me),
        "the session that changed it stays"
    );
    assert!(session_alive(&me));
    assert!(!session_alive(&other), "the other session ended");
    assert!(!signed_in_at_settings(&other));
    assert_eq!(error_of(&refresh(&host, &rt)), "invalid_grant");
    assert_eq!(
        error_of(&refresh(&host, &my_rt)),
        "invalid_grant",
        "every grant is revoked, this session's too: its apps sign in again silently"
    );
    assert_eq!(userinfo(&host, &at).status(), 401);
    assert_eq!(error_of(&redeem(&host, &pending)), "invalid_grant");
    assert_eq!(
        host_get(&host, &link).status(),
        410,
        "the open reset link died"
    );
    // New grants after the change work.
    let (rt, _) = tokens_of(&host, &me);
    assert_eq!(refresh(&host, &rt).status(), 200);
}

fn host_get(host: &MemoryHost, path: &str) -> Response {
    send(host, "GET", path, &[], "")
}

#[test]
fn issue9_a_reset_through_a_recovery_link_leaves_its_new_session_the_only_one() {
    let (host, _) = setup(json!({}));
    let (other, rt, at, _) = alice_with_another_session(&host);
    let second_link = reset_link(&host);
    let link = reset_link(&host);

    let me = Browser::new(&host);
    let resp = use_link(&me, &link, "looking-glass-1");
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(session_alive(&me), "the reset signs in");
    assert!(!session_alive(&other));
    assert_eq!(
        count(
            &host,
            "SELECT count(*) FROM sessions WHERE ended_at IS NULL"
        ),
        1,
        "the new session is the only one"
    );
    assert_eq!(error_of(&refresh(&host, &rt)), "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
    assert_eq!(host_get(&host, &second_link).status(), 410);
}

#[test]
fn issue9_an_admin_set_password_ends_every_session_grant_and_link() {
    let (host, _) = setup(json!({}));
    let (other, rt, at, link) = alice_with_another_session(&host);
    let me = Browser::new(&host);
    settings_login(&me, PASSWORD);

    let resp = admin(
        &host,
        "PUT",
        "/admin/users/alice/password",
        json!({"password": "looking-glass-1"}),
    );
    assert_eq!(resp.status(), 204, "{}", text(&resp));
    assert!(!session_alive(&other));
    assert!(
        !signed_in_at_settings(&me),
        "all sessions end, none is kept"
    );
    assert_eq!(
        count(
            &host,
            "SELECT count(*) FROM sessions WHERE ended_at IS NULL"
        ),
        0
    );
    assert_eq!(error_of(&refresh(&host, &rt)), "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
    assert_eq!(host_get(&host, &link).status(), 410);
    settings_login(&Browser::new(&host), "looking-glass-1");
}

#[test]
fn issue9_a_code_issued_before_its_grant_was_revoked_redeems_to_invalid_grant() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    first_login(&host, &b);
    assert!(signed_in_at_settings(&b));

    // Revoking the app in settings revokes the grant the pending code belongs to.
    let pending = callback(&b.get(&authorize_url("")))["code"].clone();
    let resp = settings_post(&b, "/settings/apps/revoke", &[("client_id", "rp")]);
    assert_eq!(resp.status(), 303);
    let resp = redeem(&host, &pending);
    assert_eq!(resp.status(), 400);
    assert_eq!(error_of(&resp), "invalid_grant");

    // Disabling the user revokes theirs; enabling again does not bring the code back.
    let b = Browser::new(&host);
    first_login(&host, &b);
    let pending = callback(&b.get(&authorize_url("")))["code"].clone();
    assert_eq!(
        admin(&host, "POST", "/admin/users/alice/disable", json!({})).status(),
        204
    );
    assert_eq!(error_of(&redeem(&host, &pending)), "invalid_grant");
    assert_eq!(
        admin(&host, "POST", "/admin/users/alice/enable", json!({})).status(),
        204
    );
    assert_eq!(error_of(&redeem(&host, &pending)), "invalid_grant");

    // A code whose grant stands still redeems (the join refuses only revoked grants).
    let b = Browser::new(&host);
    let resp = b.login(&b.get(&authorize_url("")), "alice", PASSWORD);
    let code = callback(&resp)["code"].clone();
    assert_eq!(redeem(&host, &code).status(), 200);
}

#[test]
fn issue9_a_code_of_a_user_disabled_since_redeems_to_invalid_grant() {
    let (host, sub) = setup(json!({}));
    let b = Browser::new(&host);
    first_login(&host, &b);
    let pending = callback(&b.get(&authorize_url("")))["code"].clone();
    // Disabled without the grant revocation (as a direct database change would): the token
    // endpoint still refuses the user.
    block_on(host.sql.query(Statement::new(
        "UPDATE users SET disabled = 1 WHERE id = ?",
        vec![sub.as_str().into()],
    )))
    .unwrap();
    assert_eq!(error_of(&redeem(&host, &pending)), "invalid_grant");
}

#[test]
fn issue9_deleting_a_client_deletes_its_consents_grants_codes_and_refresh_tokens() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    let code = first_login(&host, &b);
    let body = json_of(&redeem(&host, &code));
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let at = body["access_token"].as_str().unwrap().to_owned();
    // Consent is remembered: the next request gets a code without the consent page.
    let pending = callback(&b.get(&authorize_url("")))["code"].clone();

    assert_eq!(
        admin(&host, "DELETE", "/admin/clients/rp", json!({})).status(),
        204
    );
    for (table, q) in [
        (
            "consents",
            "SELECT count(*) FROM consents WHERE client_id = 'rp'",
        ),
        (
            "grants",
            "SELECT count(*) FROM grants WHERE client_id = 'rp'",
        ),
        (
            "codes",
            "SELECT count(*) FROM authorization_codes WHERE client_id = 'rp'",
        ),
        (
            "refresh tokens",
            "SELECT count(*) FROM refresh_tokens WHERE client_id = 'rp'",
        ),
    ] {
        assert_eq!(count(&host, q), 0, "{table} of the deleted client remain");
    }

    // The same id and secret again: nothing of the old client works or is remembered.
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({
            "client_id": "rp", "client_secret": "rp-secret-123",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [CB], "scope": "openid profile email offline_access",
        }),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    assert_eq!(error_of(&refresh(&host, &rt)), "invalid_grant");
    assert_eq!(error_of(&redeem(&host, &pending)), "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
    let resp = b.get(&authorize_url(""));
    assert_eq!(resp.status(), 303);
    assert!(
        location(&resp).contains("/consent?request="),
        "consent is asked again: {}",
        location(&resp)
    );
    let resp = b.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "consent_required");

    // Deleting what does not exist is a 404.
    assert_eq!(
        admin(&host, "DELETE", "/admin/clients/nobody", json!({})).status(),
        404
    );
}
