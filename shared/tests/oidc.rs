//! The OpenID Connect flows through the router, in memory: a browser with a cookie jar drives
//! authorize → login → consent → token → userinfo → refresh → logout against a fixed clock.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use edgeid::testing::MemoryHost;
use edgeid::{Request, Response};
use futures_executor::block_on;
use serde_json::{Value, json};
use sha2::Digest as _;

const ADMIN: &str = "Bearer test-admin-token";
const CB: &str = "https://rp.example.test/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn challenge(verifier: &str) -> String {
    b64(&sha2::Sha256::digest(verifier.as_bytes()))
}

fn send(
    host: &MemoryHost,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req: Request = b.body(body.as_bytes().to_vec()).unwrap();
    block_on(host.request(req))
}

fn admin(host: &MemoryHost, method: &str, path: &str, body: Value) -> Response {
    send(
        host,
        method,
        path,
        &[
            ("authorization", ADMIN),
            ("content-type", "application/json"),
        ],
        &body.to_string(),
    )
}

fn json_of(resp: &Response) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

fn text(resp: &Response) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location ({}): {}", resp.status(), text(resp)))
        .to_str()
        .unwrap()
        .to_owned()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Parameters of a query string or fragment.
fn params(s: &str) -> HashMap<String, String> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `<input ... name="NAME" value="...">` in a page.
fn input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

/// A browser: a cookie jar over the in-memory host.
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

    fn post(&self, uri: &str, form: &str) -> Response {
        self.request("POST", uri, Some(form))
    }

    /// Logs in on the login page `resp` points to; returns the response to the POST.
    fn login(&self, at: &Response, identifier: &str, password: &str) -> Response {
        let page = self.get(&location(at));
        assert_eq!(page.status(), 200, "{}", text(&page));
        let sealed = input(&text(&page), "request");
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("request", &sealed)
            .append_pair("identifier", identifier)
            .append_pair("password", password)
            .finish();
        self.post("/login", &form)
    }

    fn consent(&self, at: &Response, decision: &str) -> Response {
        let page = self.get(&location(at));
        assert_eq!(page.status(), 200, "{}", text(&page));
        let sealed = input(&text(&page), "request");
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("request", &sealed)
            .append_pair("decision", decision)
            .finish();
        self.post("/consent", &form)
    }
}

fn setup(client: Value) -> (MemoryHost, String) {
    let host = block_on(MemoryHost::new());
    let resp = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "alice@example.com", "username": "alice", "name": "Alice Liddell",
               "given_name": "Alice", "family_name": "Liddell", "email_verified": true,
               "password": "wonderland-42"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let sub = json_of(&resp)["id"].as_str().unwrap().to_owned();
    let mut body = json!({
        "client_id": "rp", "client_secret": "rp-secret-123",
        "grant_types": ["authorization_code", "refresh_token", "implicit"],
        "response_types": ["code", "id_token", "code id_token", "code id_token token", "id_token token"],
        "redirect_uris": [CB], "post_logout_redirect_uris": ["https://rp.example.test/bye"],
        "scope": "openid profile email offline_access",
    });
    for (k, v) in client.as_object().unwrap() {
        body[k] = v.clone();
    }
    let resp = admin(&host, "POST", "/admin/clients", body);
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    (host, sub)
}

fn authorize_url(extra: &str) -> String {
    format!(
        "/oauth2/auth?client_id=rp&response_type=code&redirect_uri={}&scope=openid%20profile%20email%20offline_access&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256{extra}",
        form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
        challenge(VERIFIER)
    )
}

fn callback(resp: &Response) -> HashMap<String, String> {
    let loc = location(resp);
    assert!(loc.starts_with(CB), "redirects to the client: {loc}");
    let (_, rest) = loc.split_once(['?', '#']).unwrap();
    params(rest)
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rp:rp-secret-123")
    )
}

fn token(host: &MemoryHost, form: &str) -> Response {
    let auth = basic();
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

fn redeem(host: &MemoryHost, code: &str) -> Response {
    token(
        host,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>()
        ),
    )
}

fn userinfo(host: &MemoryHost, at: &str) -> Response {
    send(
        host,
        "GET",
        "/userinfo",
        &[("authorization", &format!("Bearer {at}"))],
        "",
    )
}

/// Logs a fresh browser in through the consent page and returns the code.
fn first_login<'h>(host: &'h MemoryHost, browser: &Browser<'h>) -> String {
    let _ = host;
    let resp = browser.get(&authorize_url(""));
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("/login?request="));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(
        location(&resp).contains("/consent?request="),
        "{}",
        location(&resp)
    );
    let resp = browser.consent(&resp, "allow");
    callback(&resp)["code"].clone()
}

#[test]
fn code_flow_with_pkce_consent_userinfo_refresh_and_remembered_consent() {
    let (host, sub) = setup(json!({}));
    let browser = Browser::new(&host);

    let resp = browser.get(&authorize_url(""));
    assert_eq!(resp.status(), 303);
    assert!(browser.cookies.borrow().contains_key("edgeid_flow"));
    // A wrong password re-renders the form with 401 and no session.
    let bad = browser.login(&resp, "alice", "not-the-password");
    assert_eq!(bad.status(), 401);
    assert!(text(&bad).contains("not correct"));
    assert!(!browser.cookies.borrow().contains_key("edgeid_session"));

    let resp = browser.login(&resp, "ALICE@example.com", "wonderland-42");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Secure")
    );
    let resp = browser.consent(&resp, "allow");
    let cb = callback(&resp);
    assert_eq!(cb["state"], "st-1");
    assert_eq!(cb["iss"], edgeid::testing::ISSUER);

    let resp = redeem(&host, &cb["code"]);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let body = json_of(&resp);
    let at = body["access_token"].as_str().unwrap();
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], sub.as_str());
    assert_eq!(id["aud"], "rp");
    assert_eq!(id["azp"], "rp");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["auth_time"], 1_700_000_000);
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["email"], "alice@example.com");
    assert!(id["sid"].as_str().is_some());
    let at_hash = b64(&sha2::Sha256::digest(at.as_bytes())[..16]);
    assert_eq!(id["at_hash"], at_hash.as_str());

    let info = userinfo(&host, at);
    assert_eq!(info.status(), 200, "{}", text(&info));
    let info = json_of(&info);
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email_verified"], true);

    // Refresh rotates; the old token is then a replay that revokes the family.
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let r1 = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(r1.status(), 200, "{}", text(&r1));
    let rt2 = json_of(&r1)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt, rt2);
    let replay = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(json_of(&replay)["error"], "invalid_grant");
    let after = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt2}"),
    );
    assert_eq!(json_of(&after)["error"], "invalid_grant");
    assert_eq!(userinfo(&host, at).status(), 401);

    // Same browser again: session and consent are remembered, straight back to the client.
    let resp = browser.get(&authorize_url(""));
    assert!(callback(&resp).contains_key("code"));
}

#[test]
fn code_reuse_after_30_seconds_fails_and_revokes_the_first_tokens() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let first = redeem(&host, &code);
    assert_eq!(first.status(), 200);
    let at = json_of(&first)["access_token"].as_str().unwrap().to_owned();
    host.clock.advance(30);
    let second = redeem(&host, &code);
    assert_eq!(second.status(), 400);
    assert_eq!(json_of(&second)["error"], "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
}

#[test]
fn pkce_is_verified_and_codes_expire() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let wrong = token(
        &host,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={}",
            form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
            "x".repeat(43)
        ),
    );
    assert_eq!(json_of(&wrong)["error"], "invalid_grant");

    let resp = browser.get(&authorize_url(""));
    let code = callback(&resp)["code"].clone();
    host.clock.advance(601);
    assert_eq!(json_of(&redeem(&host, &code))["error"], "invalid_grant");

    // `plain` is refused at the authorization endpoint.
    let resp = browser.get(&authorize_url("").replace("S256", "plain"));
    assert_eq!(callback(&resp)["error"], "invalid_request");
}

#[test]
fn unregistered_redirect_uri_and_unknown_client_get_a_page_not_a_redirect() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    for url in [
        authorize_url("").replace("rp.example.test", "evil.example"),
        authorize_url("").replace("client_id=rp", "client_id=nobody"),
    ] {
        let resp = browser.get(&url);
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[test]
fn prompt_none_login_and_consent_required_then_logged_in() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
    let code = first_login(&host, &browser);
    assert!(!code.is_empty());
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert!(callback(&resp).contains_key("code"));
    // A scope never consented to needs consent, which prompt=none cannot ask for.
    let resp = browser.get(&authorize_url("&prompt=none").replace("%20email", ""));
    assert!(callback(&resp).contains_key("code"), "a subset is covered");
    let resp = browser.get(&authorize_url("&prompt=consent"));
    assert!(location(&resp).contains("/consent?request="));
}

#[test]
fn max_age_and_prompt_login_force_a_new_login_with_a_new_auth_time() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert!(callback(&resp).contains_key("code"));
    host.clock.advance(10);
    let resp = browser.get(&authorize_url("&max_age=10000"));
    assert!(callback(&resp).contains_key("code"));
    let resp = browser.get(&authorize_url("&max_age=1"));
    assert!(location(&resp).contains("/login?request="));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let code = callback(&resp)["code"].clone();
    let id = claims(json_of(&redeem(&host, &code))["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], 1_700_000_010);
    let resp = browser.get(&authorize_url("&prompt=login"));
    assert!(location(&resp).contains("/login?request="));
}

#[test]
fn hybrid_and_form_post_responses_carry_hashes_and_auto_submit() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let url = authorize_url("").replace("response_type=code", "response_type=code%20id_token");
    let resp = browser.get(&url);
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let loc = location(&resp);
    assert!(loc.contains('#'), "hybrid defaults to the fragment: {loc}");
    let cb = callback(&resp);
    let id = claims(&cb["id_token"]);
    assert_eq!(
        id["c_hash"],
        b64(&sha2::Sha256::digest(cb["code"].as_bytes())[..16]).as_str()
    );
    assert_eq!(id["nonce"], "n-1");

    let resp = browser.get(&format!("{url}&response_mode=form_post"));
    assert_eq!(resp.status(), 200);
    let page = text(&resp);
    assert!(page.contains(&format!("action=\"{CB}\"")));
    assert!(page.contains("name=\"code\""));
    assert!(page.contains("<button type=\"submit\">"));
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline") && csp.contains("https://rp.example.test"));

    // An ID token from the authorization endpoint needs a nonce.
    let resp = browser.get(&url.replace("&nonce=n-1", ""));
    assert_eq!(callback(&resp)["error"], "invalid_request");
}

#[test]
fn revocation_and_introspection() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let at = body["access_token"].as_str().unwrap();
    let rt = body["refresh_token"].as_str().unwrap();
    let call = |path: &str, form: &str| {
        let auth = basic();
        send(
            &host,
            "POST",
            path,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
    };
    let i = json_of(&call("/oauth2/introspect", &format!("token={at}")));
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "rp");
    let i = json_of(&call("/oauth2/introspect", &format!("token={rt}")));
    assert_eq!(i["active"], true);
    assert_eq!(
        json_of(&call("/oauth2/introspect", "token=garbage"))["active"],
        false
    );

    assert_eq!(call("/oauth2/revoke", &format!("token={at}")).status(), 200);
    assert_eq!(
        json_of(&call("/oauth2/introspect", &format!("token={at}")))["active"],
        false
    );
    assert_eq!(call("/oauth2/revoke", &format!("token={rt}")).status(), 200);
    assert_eq!(
        json_of(&call("/oauth2/introspect", &format!("token={rt}")))["active"],
        false
    );
    assert_eq!(call("/oauth2/revoke", "token=unknown").status(), 200);
    // Introspection requires client authentication.
    let anon = send(
        &host,
        "POST",
        "/oauth2/introspect",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("token={at}"),
    );
    assert_eq!(anon.status(), 401);
}

#[test]
fn rp_initiated_logout_ends_the_session() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let id_token = body["id_token"].as_str().unwrap();

    // Unregistered post-logout URI: no redirect.
    let resp = browser.get(&format!(
        "/oauth2/sessions/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
    ));
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    // Without a hint: a confirmation page, session still alive.
    let resp = browser.get("/oauth2/sessions/logout");
    assert_eq!(resp.status(), 200);
    assert!(text(&resp).contains("action=\"/logout\""));
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert!(callback(&resp).contains_key("code"));

    let resp = browser.get(&format!(
        "/oauth2/sessions/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Frp.example.test%2Fbye&state=s9"
    ));
    assert_eq!(location(&resp), "https://rp.example.test/bye?state=s9");
    assert!(!browser.cookies.borrow().contains_key("edgeid_session"));
    // Even with the old cookie replayed, the session is over.
    let resp = browser.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "login_required");
}

#[test]
fn a_sealed_request_is_bound_to_the_browser_that_started_it() {
    let (host, _) = setup(json!({}));
    let alice = Browser::new(&host);
    let resp = alice.get(&authorize_url(""));
    let mallory = Browser::new(&host);
    let page = mallory.get(&location(&resp));
    assert_eq!(page.status(), 400);
    assert!(text(&page).contains("another browser"));
}

#[test]
fn userinfo_errors_follow_rfc_6750() {
    let (host, _) = setup(
        json!({"grant_types": ["client_credentials", "authorization_code"], "scope": "openid read"}),
    );
    let resp = userinfo(&host, "garbage");
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""));
    let cc = token(&host, "grant_type=client_credentials&scope=read");
    let at = json_of(&cc)["access_token"].as_str().unwrap().to_owned();
    let resp = userinfo(&host, &at);
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(&resp)["error"], "insufficient_scope");
}

#[test]
fn deleting_a_user_revokes_their_tokens() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        admin(&host, "DELETE", &format!("/admin/users/{sub}"), json!({})).status(),
        204
    );
    assert_eq!(userinfo(&host, at).status(), 401);
    let rt = body["refresh_token"].as_str().unwrap();
    let r = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(json_of(&r)["error"], "invalid_grant");
}

#[test]
fn users_reach_an_app_only_with_a_role_and_get_their_roles_as_claims() {
    let (host, sub) = setup(json!({"skip_consent": true,
        "scope": "openid profile email offline_access stackspin_roles groups"}));
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "ext-rp", "name": "The RP", "url": "https://rp.example.test", "client_id": "rp"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    assert_eq!(json_of(&resp)["external"], true);

    let url = authorize_url("").replace("offline_access", "stackspin_roles%20groups");
    let browser = Browser::new(&host);
    let resp = browser.get(&url);
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert_eq!(resp.status(), 403, "no role, no access: {}", text(&resp));
    assert!(text(&resp).contains("access_denied") && text(&resp).contains("The RP"));
    assert!(resp.headers().get("location").is_none());

    let put = admin(
        &host,
        "PUT",
        "/admin/users/alice/roles/ext-rp/user",
        json!({}),
    );
    assert_eq!(put.status(), 204, "{}", text(&put));
    let resp = browser.get(&url);
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["stackspin_roles"], json!(["user"]));
    assert_eq!(id["groups"], json!(["ext-rp:user"]));
    let info = json_of(&userinfo(&host, body["access_token"].as_str().unwrap()));
    assert_eq!(info["stackspin_roles"], json!(["user"]));

    let roles = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{sub}/roles"),
        json!({}),
    ));
    assert_eq!(roles["roles"], json!([{"app": "ext-rp", "role": "user"}]));
    let del = admin(
        &host,
        "DELETE",
        "/admin/users/alice@example.com/roles/ext-rp/user",
        json!({}),
    );
    assert_eq!(del.status(), 204);
    let resp = browser.get(&url);
    assert_eq!(resp.status(), 403, "the role is gone");

    // A global admin reaches every app, with the admin role.
    let resp = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "root@example.com", "username": "root", "is_admin": true,
               "password": "root-password-1"}),
    );
    assert_eq!(resp.status(), 201);
    let other = Browser::new(&host);
    let resp = other.get(&url);
    let resp = other.login(&resp, "root", "root-password-1");
    let body = json_of(&redeem(&host, &callback(&resp)["code"]));
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["stackspin_roles"], json!(["admin"]));
    assert_eq!(id["groups"], json!(["admin"]));
}

#[test]
fn repeated_failures_are_throttled_the_same_way_whether_or_not_the_account_exists() {
    let (host, _) = setup(json!({"skip_consent": true}));
    for name in ["alice", "nobody-here"] {
        let browser = Browser::new(&host);
        let start = browser.get(&authorize_url(""));
        for _ in 0..5 {
            assert_eq!(browser.login(&start, name, "wrong-password").status(), 401);
        }
        // Past the free attempts: answered without checking the password, even a right one.
        let resp = browser.login(&start, name, "wonderland-42");
        assert_eq!(resp.status(), 429, "{}", text(&resp));
        assert!(resp.headers().contains_key("retry-after"));
        assert!(text(&resp).contains("Too many failed attempts"));
        host.clock.advance(2);
    }
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    let resp = browser.login(&start, "alice", "wonderland-42");
    assert_eq!(
        resp.status(),
        303,
        "after the back-off the right password works"
    );

    // Many failures in a row lock the account name in SQL, beyond the KV counters.
    // (A fresh request each time: the sealed one expires after 30 minutes.)
    for _ in 0..edgeid::throttle::LOCK_AFTER {
        host.clock.advance(16 * 60);
        let start = browser.get(&authorize_url("&prompt=login"));
        assert_eq!(
            browser.login(&start, "alice", "wrong-password").status(),
            401
        );
    }
    // Even with the KV counters lost.
    use edgeid::ports::Kv as _;
    let account = edgeid::crypto::sha256_hex(b"alice");
    block_on(host.kv.delete(&format!("throttle:v1:acct:{account}"))).unwrap();
    block_on(host.kv.delete("throttle:v1:addr:unknown")).unwrap();
    host.clock.advance(16 * 60);
    let start = browser.get(&authorize_url("&prompt=login"));
    let resp = browser.login(&start, "alice", "wonderland-42");
    assert_eq!(resp.status(), 429, "locked: {}", text(&resp));
    host.clock.advance(edgeid::throttle::LOCK_SECONDS);
    let start = browser.get(&authorize_url("&prompt=login"));
    assert_eq!(
        browser.login(&start, "alice", "wonderland-42").status(),
        303
    );
}

/// Browsers apply CSP `form-action` to the redirect after a form POST: the login and consent
/// pages must allow the client's redirect origin or the 303 back to the client is blocked.
#[test]
fn login_and_consent_pages_allow_the_redirect_to_the_client_in_form_action() {
    let (host, _) = setup(json!({}));
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    let page = browser.get(&location(&start));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://rp.example.test"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    let resp = browser.login(&start, "alice", "wonderland-42");
    let consent = browser.get(&location(&resp));
    let csp = consent.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example.test"),
        "{csp}"
    );
}

#[test]
fn logo_and_accent_colour_come_from_configuration() {
    let (mut host, _) = setup(json!({}));
    host.vars.insert(
        "logo_url".into(),
        "https://cdn.example.test/logo.svg".into(),
    );
    host.vars.insert("accent_color".into(), "#aa3300".into());
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    let page = text(&browser.get(&location(&start)));
    assert!(page.contains("<img class=\"logo\" src=\"https://cdn.example.test/logo.svg\""));
    assert!(page.contains("/assets/theme.css"));
    let theme = browser.get("/assets/theme.css");
    assert_eq!(text(&theme), ":root{--accent:#aa3300}\n");
    // Invalid values are ignored, not rendered.
    host.vars
        .insert("accent_color".into(), "red;}body{display:none".into());
    host.vars
        .insert("logo_url".into(), "javascript:alert(1)".into());
    let browser = Browser::new(&host);
    let start = browser.get(&authorize_url(""));
    assert!(!text(&browser.get(&location(&start))).contains("img class=\"logo\""));
    assert_eq!(text(&browser.get("/assets/theme.css")), "");
}

#[test]
fn the_consent_page_names_the_app_and_its_url() {
    let (host, _) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/apps",
        json!({"slug": "wiki", "name": "Team Wiki", "url": "https://wiki.example.test", "client_id": "rp"}),
    );
    assert_eq!(resp.status(), 201);
    assert_eq!(
        admin(
            &host,
            "PUT",
            "/admin/users/alice/roles/wiki/user",
            json!({})
        )
        .status(),
        204
    );
    let browser = Browser::new(&host);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    let page = text(&browser.get(&location(&resp)));
    assert!(page.contains("<strong>Team Wiki</strong>"), "{page}");
    assert!(
        page.contains("href=\"https://wiki.example.test/\""),
        "{page}"
    );
    assert!(page.contains("See your email address"));
}
