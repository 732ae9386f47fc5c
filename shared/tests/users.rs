//! User administration and the audit log through the router, in memory (issue 4): update
//! keeps the `sub`, disable ends everything the user holds and enable restores login, search
//! matches partial text literally, and security events are readable at `/admin/audit`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

use std::cell::RefCell;
use std::collections::HashMap;

use edgeid::Response;
use edgeid::testing::MemoryHost;
use futures_executor::block_on;
use serde_json::{Value, json};

const PASSWORD: &str = "wonderland-42";

fn get(host: &MemoryHost, path: &str) -> Value {
    let resp = admin(host, "GET", path, json!({}));
    assert_eq!(resp.status(), 200, "GET {path}: {}", text(&resp));
    json_of(&resp)
}

/// Every `<input type="hidden" name=".." value="..">` of a page, so the login form is
/// submitted with whatever it carries (the sealed request, a CSRF token, ...).
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

/// This file's browser: its login submits every hidden field of the form.
struct Browser<'h> {
    host: &'h MemoryHost,
    cookies: RefCell<HashMap<String, String>>,
}

impl<'h> Browser<'h> {
    fn new(host: &'h MemoryHost) -> Self {
        Self {
            host,
            cookies: RefCell::default(),
        }
    }

    fn request(&self, method: &str, uri: &str, form: Option<&str>) -> Response {
        let uri = uri.strip_prefix(edgeid::testing::ISSUER).unwrap_or(uri);
        let cookie = self
            .cookies
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = vec![("cookie", cookie.as_str())];
        if form.is_some() {
            headers.push(("content-type", "application/x-www-form-urlencoded"));
        }
        let resp = send(self.host, method, uri, &headers, form.unwrap_or(""));
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.borrow_mut().remove(k);
            } else {
                self.cookies
                    .borrow_mut()
                    .insert(k.to_owned(), val.to_owned());
            }
        }
        resp
    }

    fn get(&self, uri: &str) -> Response {
        self.request("GET", uri, None)
    }

    /// Starts the code flow; answers the response to the authorization request.
    fn authorize(&self) -> Response {
        self.get(&format!(
            "/oauth2/auth?client_id=rp&response_type=code&redirect_uri={}\
             &scope=openid%20email%20offline_access&state=st&nonce=n&code_challenge={}\
             &code_challenge_method=S256",
            form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(VERIFIER.as_bytes()))
        ))
    }

    /// Fills the login page `at` redirects to; answers the response to the POST.
    fn login(&self, at: &Response, identifier: &str, password: &str) -> Response {
        assert_eq!(at.status(), 303, "{}", text(at));
        assert!(location(at).contains("/login"), "{}", location(at));
        let page = self.get(&location(at));
        assert_eq!(page.status(), 200, "{}", text(&page));
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in hidden_inputs(&text(&page)) {
            form.append_pair(&k, &v);
        }
        let form = form
            .append_pair("identifier", identifier)
            .append_pair("password", password)
            .finish();
        self.request("POST", "/login", Some(&form))
    }
}

/// The code from the client's callback.
fn code_of(resp: &Response) -> String {
    let loc = location(resp);
    assert!(loc.starts_with(CB), "redirects to the client: {loc}");
    let (_, query) = loc.split_once('?').unwrap();
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {loc}"))
        .1
        .into_owned()
}

fn token(host: &MemoryHost, form: &str) -> Response {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rp:rp-secret-123")
    );
    send(
        host,
        "POST",
        "/oauth2/token",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form,
    )
}

fn refresh(host: &MemoryHost, refresh_token: &str) -> Response {
    token(
        host,
        &format!("grant_type=refresh_token&refresh_token={refresh_token}"),
    )
}

fn create_user(host: &MemoryHost, username: &str, email: &str, name: &str) -> String {
    let resp = admin(
        host,
        "POST",
        "/admin/users",
        json!({"email": email, "username": username, "name": name, "password": PASSWORD}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    json_of(&resp)["id"].as_str().unwrap().to_owned()
}

/// A host with alice and a first-party client `rp` (no consent page).
fn setup() -> (MemoryHost, String) {
    let host = block_on(MemoryHost::new());
    let sub = create_user(&host, "alice", "alice@example.com", "Alice Liddell");
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({
            "client_id": "rp", "client_secret": "rp-secret-123",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "redirect_uris": [CB],
            "scope": "openid email offline_access", "skip_consent": true,
        }),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    (host, sub)
}

/// Logs `identifier` in with a fresh browser and redeems the code; answers the tokens.
fn sign_in(host: &MemoryHost, identifier: &str) -> Value {
    let browser = Browser::new(host);
    let resp = browser.login(&browser.authorize(), identifier, PASSWORD);
    let resp = redeem(host, &code_of(&resp));
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    json_of(&resp)
}

/// The audit events of one kind, newest first.
fn events(host: &MemoryHost, kind: &str) -> Vec<Value> {
    get(host, &format!("/admin/audit?kind={kind}"))["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn update_changes_email_and_names_but_never_the_sub_issue_4() {
    let (host, sub) = setup();
    create_user(&host, "bob", "bob@example.com", "Bob");
    host.clock.advance(60);

    // By username; a merge: absent members stay, null clears an optional name.
    let resp = admin(
        &host,
        "PATCH",
        "/admin/users/alice",
        json!({"email": " Alice@New.example ", "name": null, "given_name": "Alice",
               "email_verified": true}),
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let u = json_of(&resp);
    assert_eq!(u["id"], sub.as_str());
    assert_eq!(u["email"], "Alice@New.example", "trimmed like on create");
    assert_eq!(u["username"], "alice");
    assert_eq!(u["name"], "");
    assert_eq!(u["given_name"], "Alice");
    assert_eq!(u["email_verified"], true);
    assert_eq!(u["created_at"], 1_700_000_000);
    assert_eq!(u["updated_at"], 1_700_000_060);
    assert_eq!(get(&host, &format!("/admin/users/{sub}")), u);

    // The new email logs in; the ID token's sub is the same, its email the new one.
    let tokens = sign_in(&host, "alice@new.example");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], sub.as_str());
    assert_eq!(id["email"], "Alice@New.example");
    // The old email names nobody any more.
    assert_eq!(
        admin(&host, "GET", "/admin/users/alice@example.com", json!({})).status(),
        404
    );

    // Uniqueness (case-insensitive) is a conflict; keeping one's own values is not.
    for taken in [
        json!({"email": "BOB@example.com"}),
        json!({"username": "Bob"}),
    ] {
        let resp = admin(&host, "PATCH", &format!("/admin/users/{sub}"), taken);
        assert_eq!(resp.status(), 409, "{}", text(&resp));
        assert_eq!(json_of(&resp)["error"], "conflict");
    }
    let same = admin(
        &host,
        "PATCH",
        "/admin/users/alice",
        json!({"username": "ALICE"}),
    );
    assert_eq!(same.status(), 200, "{}", text(&same));

    // The create rules apply; the id, the password and `disabled` are not patchable.
    for bad in [
        json!({"email": "not-an-address"}),
        json!({"email": null}),
        json!({"username": "has space"}),
        json!({"name": "x".repeat(201)}),
        json!({"given_name": "tab\there"}),
        json!({"id": "another-sub"}),
        json!({"password": "a-new-password"}),
        json!({"disabled": true}),
    ] {
        let resp = admin(&host, "PATCH", "/admin/users/bob", bad.clone());
        assert_eq!(resp.status(), 400, "{bad}: {}", text(&resp));
        assert_eq!(json_of(&resp)["error"], "invalid_request");
    }
    assert_eq!(get(&host, "/admin/users/bob")["email"], "bob@example.com");
    assert_eq!(
        admin(&host, "PATCH", "/admin/users/nobody", json!({"name": "x"})).status(),
        404
    );

    // The audit log says which fields changed, not their values.
    let updated = events(&host, "user.updated");
    let first = updated.last().unwrap();
    assert_eq!(first["subject"], sub.as_str());
    assert_eq!(
        first["detail"]["changed"],
        json!(["email", "name", "given_name", "email_verified"])
    );
    assert!(!first["detail"].to_string().contains("new.example"));
}

#[test]
fn disable_ends_sessions_and_tokens_and_enable_restores_login_issue_4() {
    let (host, sub) = setup();
    let browser = Browser::new(&host);
    let resp = browser.login(&browser.authorize(), "alice", PASSWORD);
    let tokens = json_of(&redeem(&host, &code_of(&resp)));
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&host, at).status(), 200);
    // The browser's session answers without a login page.
    assert!(location(&browser.authorize()).starts_with(CB));

    let resp = admin(
        &host,
        "POST",
        "/admin/users/alice@example.com/disable",
        json!({}),
    );
    assert_eq!(resp.status(), 204, "{}", text(&resp));
    assert_eq!(get(&host, &format!("/admin/users/{sub}"))["disabled"], true);

    // The access token is refused, the refresh token fails, the session is over, and the
    // right password no longer logs in.
    let resp = userinfo(&host, at);
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = refresh(&host, rt);
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(&resp)["error"], "invalid_grant");
    let at_login = browser.authorize();
    assert!(
        location(&at_login).contains("/login"),
        "the session ended: {}",
        location(&at_login)
    );
    let refused = browser.login(&at_login, "alice", PASSWORD);
    assert_eq!(refused.status(), 401, "{}", text(&refused));
    assert!(text(&refused).contains("not correct"));
    // Disabling twice is harmless.
    assert_eq!(
        admin(&host, "POST", "/admin/users/alice/disable", json!({})).status(),
        204
    );

    let resp = admin(
        &host,
        "POST",
        &format!("/admin/users/{sub}/enable"),
        json!({}),
    );
    assert_eq!(resp.status(), 204, "{}", text(&resp));
    assert_eq!(get(&host, "/admin/users/alice")["disabled"], false);
    // Login works again; what disabling revoked stays revoked.
    let fresh = sign_in(&host, "alice");
    assert_eq!(
        userinfo(&host, fresh["access_token"].as_str().unwrap()).status(),
        200
    );
    assert_eq!(userinfo(&host, at).status(), 401);
    assert_eq!(json_of(&refresh(&host, rt))["error"], "invalid_grant");

    // Wrong methods and unknown users.
    assert_eq!(
        admin(&host, "GET", "/admin/users/alice/disable", json!({})).status(),
        405
    );
    assert_eq!(
        admin(&host, "POST", "/admin/users/nobody/enable", json!({})).status(),
        404
    );

    // The audit log: disabled, the refused login (with alice as subject), enabled.
    let failure = &events(&host, "login.failure")[0];
    assert_eq!(failure["subject"], sub.as_str());
    assert_eq!(failure["detail"]["client_id"], "rp");
    assert_eq!(events(&host, "user.disabled")[0]["subject"], sub.as_str());
    assert_eq!(events(&host, "user.enabled")[0]["subject"], sub.as_str());
    let all = get(&host, &format!("/admin/audit?subject={sub}"))["events"].clone();
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Newest first (the oldest of each kind: alice was disabled twice).
    let pos = |k: &str| kinds.iter().rposition(|x| *x == k).unwrap();
    assert!(pos("user.enabled") < pos("login.failure"));
    assert!(pos("login.failure") < pos("user.disabled"));
    assert!(pos("user.disabled") < pos("user.created"));
}

#[test]
fn search_matches_username_email_and_name_partially_and_literally_issue_4() {
    let host = block_on(MemoryHost::new());
    let carol = create_user(&host, "carol", "carol.jones@Example.ORG", "Carol Jones");
    let dave = create_user(&host, "dave_x", "dave@example.org", "Dave 100% Real");
    let erin = create_user(&host, "erin", "erin@other.test", "Erin Jonesworth");

    let ids = |q: &str| -> Vec<String> {
        let page = get(
            &host,
            &format!(
                "/admin/users?q={}",
                form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            ),
        );
        let mut ids: Vec<String> = page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&String>| -> Vec<String> {
        v.sort();
        v.into_iter().cloned().collect()
    };
    assert_eq!(
        ids("EXAMPLE.org"),
        sorted(vec![&carol, &dave]),
        "partial email"
    );
    assert_eq!(ids("jones"), sorted(vec![&carol, &erin]), "name, any case");
    assert_eq!(ids("ERIN"), vec![erin.clone()], "username");
    // Wildcards are literal: `_` and `%` match only themselves.
    assert_eq!(ids("ca_ol"), Vec::<String>::new());
    assert_eq!(ids("e_"), vec![dave.clone()]);
    assert_eq!(ids("100%"), vec![dave.clone()]);
    assert_eq!(ids("%"), vec![dave.clone()]);
    assert_eq!(ids("nobody"), Vec::<String>::new());
    assert_eq!(ids("").len(), 3, "an empty search lists everyone");

    // Paging goes on through the search with the same keyset `next`.
    let first = get(&host, "/admin/users?q=example&limit=1");
    assert_eq!(first["users"].as_array().unwrap().len(), 1);
    let next = first["next"].as_str().unwrap();
    let second = get(
        &host,
        &format!("/admin/users?q=example&limit=1&after={next}"),
    );
    assert_eq!(second["users"].as_array().unwrap().len(), 1);
    assert_ne!(first["users"][0]["id"], second["users"][0]["id"]);
    let third = get(
        &host,
        &format!(
            "/admin/users?q=example&limit=1&after={}",
            second["next"].as_str().unwrap()
        ),
    );
    assert_eq!(third["users"], json!([]));
    assert_eq!(third["next"], Value::Null);
}

#[test]
fn code_replay_and_refresh_reuse_are_audited_against_the_user_issue_4() {
    let (host, sub) = setup();
    let browser = Browser::new(&host);
    let resp = browser.login(&browser.authorize(), "alice", PASSWORD);
    let code = code_of(&resp);
    let tokens = json_of(&redeem(&host, &code));
    let replay = redeem(&host, &code);
    assert_eq!(json_of(&replay)["error"], "invalid_grant");

    let replays = events(&host, "code.replay");
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0]["subject"], sub.as_str());
    assert_eq!(replays[0]["detail"]["client_id"], "rp");
    assert!(replays[0]["detail"]["grant_id"].as_str().is_some());

    // Refresh-token reuse in a second grant.
    let tokens2 = sign_in(&host, "alice");
    let rt = tokens2["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&host, rt).status(), 200);
    assert_eq!(json_of(&refresh(&host, rt))["error"], "invalid_grant");
    let reuse = events(&host, "refresh.reuse");
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["subject"], sub.as_str());
    assert_ne!(
        reuse[0]["detail"]["grant_id"],
        replays[0]["detail"]["grant_id"]
    );

    // No secret lands in the log: not the password, a code or a token.
    let log = text(&admin(&host, "GET", "/admin/audit?limit=500", json!({})));
    for secret in [
        PASSWORD,
        code.as_str(),
        rt,
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret), "{secret} in the audit log");
    }
}

#[test]
fn admin_changes_are_audited_and_the_log_pages_newest_first_issue_4() {
    let (host, sub) = setup();
    let resp = admin(
        &host,
        "PUT",
        "/admin/users/alice/password",
        json!({"password": "a-brand-new-secret"}),
    );
    assert_eq!(resp.status(), 204, "{}", text(&resp));
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "wiki", "name": "Wiki", "url": "https://wiki.example.test", "client_id": "rp"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    for method in ["PUT", "DELETE"] {
        let resp = admin(
            &host,
            method,
            "/admin/users/alice/roles/wiki/editor",
            json!({}),
        );
        assert_eq!(resp.status(), 204, "{}", text(&resp));
    }
    let bob = create_user(&host, "bob", "bob@example.com", "Bob");
    assert_eq!(
        admin(&host, "DELETE", "/admin/users/bob", json!({})).status(),
        204
    );

    let created = events(&host, "user.created");
    assert_eq!(created.len(), 2);
    assert_eq!(created[1]["subject"], sub.as_str());
    assert_eq!(created[1]["detail"]["username"], "alice");
    assert_eq!(created[1]["detail"]["password_set"], true);
    let set = &events(&host, "password.set")[0];
    assert_eq!(set["subject"], sub.as_str());
    assert_eq!(set["detail"], json!({"by": "admin"}));
    for kind in ["role.granted", "role.revoked"] {
        let e = &events(&host, kind)[0];
        assert_eq!(e["subject"], sub.as_str());
        assert_eq!(e["detail"], json!({"app": "wiki", "role": "editor"}));
    }
    let deleted = &events(&host, "user.deleted")[0];
    assert_eq!(deleted["subject"], bob.as_str());
    assert_eq!(deleted["detail"]["username"], "bob");
    let log = text(&admin(&host, "GET", "/admin/audit", json!({})));
    assert!(!log.contains("a-brand-new-secret") && !log.contains(PASSWORD));

    // `subject` takes a username or email too; paging is newest first by id.
    let by_name = get(&host, "/admin/audit?subject=alice@example.com");
    assert_eq!(by_name, get(&host, &format!("/admin/audit?subject={sub}")));
    let all = get(&host, "/admin/audit?limit=500")["events"].clone();
    let all = all.as_array().unwrap();
    assert!(all.len() >= 6);
    assert!(
        all.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64())
    );
    let mut paged = Vec::new();
    let mut path = "/admin/audit?limit=2".to_owned();
    loop {
        let page = get(&host, &path);
        paged.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next"].as_i64() {
            Some(next) => path = format!("/admin/audit?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(&paged, all);

    // Bad parameters, the bearer token, and methods.
    for bad in ["after=abc", "after=-1", "limit=0", "limit=501"] {
        let resp = admin(&host, "GET", &format!("/admin/audit?{bad}"), json!({}));
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = send(&host, "GET", "/admin/audit", &[], "");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        admin(&host, "POST", "/admin/audit", json!({})).status(),
        405
    );
}
