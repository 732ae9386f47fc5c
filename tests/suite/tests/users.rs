//! User administration and the audit log, black-box (issue 4): update keeps the `sub`,
//! disabling a user refuses their login and every token they hold, enabling restores login,
//! search finds partial text, and security events are readable at `/admin/audit`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::oidc::{
    Browser, OidcClient, Pkce, User, code_flow, create_oidc_client, create_user, form_with_action,
    oauth_error, userinfo_get,
};
use edgeid_suite::serde_json::{Value, json};
use edgeid_suite::{Resp, admin, form_encode, unique};

const SCOPE: &str = "openid profile email offline_access";

/// Starts a code flow in `browser` and submits the login form with `identifier` and
/// `password` (every hidden field of the form included); answers the response to the POST.
fn submit_login(browser: &Browser, client: &OidcClient, identifier: &str, password: &str) -> Resp {
    let req = client
        .auth_request()
        .set("scope", SCOPE)
        .pkce(&Pkce::s256());
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = browser.get(resp.header("location").unwrap());
    let form = form_with_action(&page.text(), "/login")
        .unwrap_or_else(|| panic!("a login form: {}", page.text()));
    let hidden = form.hidden();
    let mut pairs: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("identifier", identifier));
    pairs.push(("password", password));
    browser.post_form("/login", &pairs)
}

/// The events `GET /admin/audit?{query}` answers, newest first.
fn audit(query: &str) -> Vec<Value> {
    let resp = admin("GET", &format!("/audit?{query}"), None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["events"].as_array().unwrap().clone()
}

#[test]
fn a_disabled_user_cannot_log_in_and_their_tokens_stop_working_until_enabled() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let flow = code_flow(&Browser::new(), &client, &user, SCOPE);
    assert_eq!(userinfo_get(flow.access_token()).status, 200);

    let resp = admin("POST", &format!("/users/{}/disable", user.username), None);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(
        admin("GET", &format!("/users/{}", user.id), None).json()["disabled"],
        true
    );

    let resp = userinfo_get(flow.access_token());
    assert_eq!(resp.status, 401, "the access token is refused at userinfo");
    let resp = client.refresh(flow.refresh_token());
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(oauth_error(&resp), "invalid_grant");
    let resp = submit_login(&Browser::new(), &client, &user.username, &user.password);
    assert_eq!(
        resp.status,
        401,
        "the right password is refused: {}",
        resp.text()
    );
    assert!(resp.header("location").is_none());

    let resp = admin(
        "POST",
        &format!("/users/{}/enable", form_encode(&user.email)),
        None,
    );
    assert_eq!(resp.status, 204, "{}", resp.text());
    let again = code_flow(&Browser::new(), &client, &user, SCOPE);
    assert_eq!(userinfo_get(again.access_token()).status, 200);
    // What disabling revoked stays revoked.
    assert_eq!(userinfo_get(flow.access_token()).status, 401);

    let kinds: Vec<String> = audit(&format!("subject={}", user.id))
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "user.enabled",
        "login.failure",
        "user.disabled",
        "user.created",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[test]
fn update_changes_the_email_but_the_sub_stays() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let new_email = format!("{}@renamed.example.test", unique("mail"));
    let resp = admin(
        "PATCH",
        &format!("/users/{}", user.id),
        Some(json!({"email": new_email, "name": "Ada King", "email_verified": false})),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let record = resp.json();
    assert_eq!(record["id"], user.id.as_str());
    assert_eq!(record["email"], new_email.as_str());
    assert_eq!(record["username"], user.username.as_str());
    assert_eq!(record["name"], "Ada King");
    assert_eq!(record["created_at"], user.record["created_at"]);
    assert!(record["updated_at"].as_i64() >= user.record["updated_at"].as_i64());

    // Logging in with the new email gives the same sub and the new email.
    let by_email = User {
        username: new_email.clone(),
        ..user.clone()
    };
    let flow = code_flow(&Browser::new(), &client, &by_email, SCOPE);
    assert_eq!(flow.id_claims["sub"], user.id.as_str());
    assert_eq!(flow.id_claims["email"], new_email.as_str());
    assert_eq!(flow.id_claims["email_verified"], false);

    // Taken email → 409; invalid email → 400; the id is not patchable.
    let other = create_user(json!({}));
    let resp = admin(
        "PATCH",
        &format!("/users/{}", user.username),
        Some(json!({"email": other.email.to_uppercase()})),
    );
    assert_eq!(resp.status, 409, "{}", resp.text());
    for bad in [json!({"email": "no-at-sign"}), json!({"id": "another"})] {
        let resp = admin("PATCH", &format!("/users/{}", user.id), Some(bad.clone()));
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text());
    }
    let resp = admin(
        "PATCH",
        &format!("/users/{}", unique("nobody")),
        Some(json!({"name": "x"})),
    );
    assert_eq!(resp.status, 404);

    let updated = audit(&format!("kind=user.updated&subject={}", user.id));
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(
        updated[0]["detail"]["changed"],
        json!(["email", "name", "email_verified"])
    );
}

#[test]
fn search_finds_users_by_partial_email_with_paging() {
    let domain = unique("srch");
    let users: Vec<User> = (0..3)
        .map(|i| create_user(json!({"email": format!("person{i}@{domain}.Example.test")})))
        .collect();
    let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    ids.sort_unstable();

    let q = form_encode(&domain.to_uppercase());
    let resp = admin("GET", &format!("/users?q={q}"), None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut found: Vec<String> = resp.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    found.sort_unstable();
    assert_eq!(found, ids);

    // The same search, one per page.
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = admin(
            "GET",
            &format!("/users?q={q}&limit=1&after={}", form_encode(&after)),
            None,
        )
        .json();
        paged.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, ids, "keyset pages in id order");

    // `%` and `_` are literal.
    let resp = admin("GET", &format!("/users?q={}", form_encode("%_%")), None);
    assert_eq!(resp.json()["users"], json!([]));
}

#[test]
fn the_audit_log_lists_login_failures_and_code_replays_by_user() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let resp = submit_login(&Browser::new(), &client, &user.username, "not-the-password");
    assert_eq!(resp.status, 401, "{}", resp.text());

    let flow = code_flow(&Browser::new(), &client, &user, SCOPE);
    let code = flow.flow.callback.code(&flow.request);
    let replay = client.exchange(&code, Some(&flow.pkce.verifier));
    assert_eq!(oauth_error(&replay), "invalid_grant");

    let failures = audit(&format!("kind=login.failure&subject={}", user.id));
    assert!(!failures.is_empty(), "a login.failure for the user");
    assert_eq!(failures[0]["subject"], user.id.as_str());
    assert_eq!(failures[0]["detail"]["client_id"], client.id.as_str());
    // The subject may be given as the username.
    let replays = audit(&format!(
        "kind=code.replay&subject={}",
        form_encode(&user.username)
    ));
    assert_eq!(replays.len(), 1, "{replays:?}");
    assert_eq!(replays[0]["subject"], user.id.as_str());
    assert_eq!(replays[0]["detail"]["client_id"], client.id.as_str());

    // Newest first: the replay came after the failure.
    let mine = audit(&format!("subject={}", user.id));
    let pos = |kind: &str| mine.iter().position(|e| e["kind"] == kind).unwrap();
    assert!(pos("code.replay") < pos("login.failure"));
    assert!(
        mine.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64())
    );

    // No secret in the log: not the password, the code or a token.
    let log = admin("GET", &format!("/audit?subject={}", user.id), None).text();
    for secret in [
        user.password.as_str(),
        code.as_str(),
        flow.access_token(),
        flow.refresh_token(),
    ] {
        assert!(!log.contains(secret), "a secret in the audit log");
    }

    // Paging: `next` continues with older events.
    let first = admin("GET", "/audit?limit=1", None).json();
    let next = first["next"].as_i64().expect("more than one event");
    let second = admin("GET", &format!("/audit?limit=1&after={next}"), None).json();
    assert!(second["events"][0]["id"].as_i64().unwrap() < next);
    let resp = edgeid_suite::request("GET", "/admin/audit", &[], None);
    assert_eq!(resp.status, 401, "the audit log needs the admin token");
}
