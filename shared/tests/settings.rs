//! The settings pages and the TOTP second factor through the router, in memory (issue 4):
//! enrolment, a TOTP login with `amr` ["pwd","otp"], replay and recovery codes, the password
//! change rule, ending sessions, revoking a connected app, and CSRF.
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

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// RFC 4648 base32 (no padding), as the enrolment page shows the secret.
fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        buffer = (buffer << 5) | ALPHABET.find(c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The secret shown on an enrolment page.
fn shown_secret(html: &str) -> Vec<u8> {
    let start = html.find("<code class=\"secret\">").unwrap() + "<code class=\"secret\">".len();
    let end = html[start..].find("</code>").unwrap() + start;
    base32_decode(&html[start..end])
}

fn now_code(host: &MemoryHost, secret: &[u8]) -> String {
    edgeid::totp::code_at(secret, edgeid::totp::step(host.clock.get()))
}

impl Browser<'_> {
    /// Signs in at the settings page's own form; returns the settings page.
    fn settings_login(&self, identifier: &str, password: &str) -> Response {
        let page = self.get("/settings");
        assert_eq!(page.status(), 200);
        assert!(text(&page).contains("action=\"/settings/login\""));
        let csrf = input(&text(&page), "csrf");
        let resp = self.post(
            "/settings/login",
            &form(&[
                ("csrf", &csrf),
                ("identifier", identifier),
                ("password", password),
            ]),
        );
        assert_eq!(resp.status(), 303, "{}", text(&resp));
        assert_eq!(
            location(&resp),
            format!("{}/settings", edgeid::testing::ISSUER)
        );
        self.settings()
    }

    fn settings(&self) -> Response {
        let page = self.get("/settings");
        assert_eq!(page.status(), 200);
        page
    }

    /// POSTs a settings form with the CSRF token of the current settings page.
    fn settings_post(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let csrf = input(&text(&self.settings()), "csrf");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post(path, &form(&all))
    }

    /// Enrols TOTP; returns the secret and the recovery codes.
    fn enrol(&self, host: &MemoryHost) -> (Vec<u8>, Vec<String>) {
        let page = self.get("/settings/totp");
        assert_eq!(page.status(), 200, "{}", text(&page));
        let html = text(&page);
        assert!(html.contains("<svg"), "QR code inline");
        let secret = shown_secret(&html);
        assert_eq!(secret.len(), 20);
        let resp = self.post(
            "/settings/totp",
            &form(&[
                ("csrf", &input(&html, "csrf")),
                ("pending", &input(&html, "pending")),
                ("code", &now_code(host, &secret)),
            ]),
        );
        assert_eq!(resp.status(), 200, "{}", text(&resp));
        let html = text(&resp);
        let codes: Vec<String> = html
            .split("<li><code>")
            .skip(1)
            .map(|s| s.split("</code>").next().unwrap().to_owned())
            .collect();
        assert_eq!(codes.len(), 10);
        (secret, codes)
    }

    /// Authorize → password → (second-factor page) → submit `code`.
    fn totp_login(&self, password: &str, code: &str) -> Response {
        let resp = self.get(&authorize_url(""));
        let page = self.login(&resp, "alice", password);
        assert_eq!(page.status(), 200, "{}", text(&page));
        assert!(text(&page).contains("action=\"/login/totp\""));
        assert!(!self.cookies.borrow().contains_key("edgeid_session"));
        self.post(
            "/login/totp",
            &form(&[("pending", &input(&text(&page), "pending")), ("code", code)]),
        )
    }
}

fn totp_stored(host: &MemoryHost, sub: &str) -> bool {
    block_on(edgeid::totp::load(host, sub)).unwrap().is_some()
}

#[test]
fn totp_enrolment_login_amr_replay_and_recovery_codes() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let alice = Browser::new(&host);
    alice.settings_login("alice", "wonderland-42");

    // A wrong code stores nothing.
    let page = alice.get("/settings/totp");
    let html = text(&page);
    let secret = shown_secret(&html);
    let uri_secret = html.contains("otpauth") || html.contains("<svg");
    assert!(uri_secret);
    let wrong = if now_code(&host, &secret) == "000000" {
        "000001"
    } else {
        "000000"
    };
    let resp = alice.post(
        "/settings/totp",
        &form(&[
            ("csrf", &input(&html, "csrf")),
            ("pending", &input(&html, "pending")),
            ("code", wrong),
        ]),
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("aria-describedby=\"code-error\""));
    assert!(!totp_stored(&host, &sub));

    // The right code stores it and shows the recovery codes once.
    let (secret, codes) = alice.enrol(&host);
    assert!(totp_stored(&host, &sub));
    assert!(text(&alice.settings()).contains("10 unused recovery codes"));

    // The code that confirmed enrolment is spent: the login needs the next step's code.
    let other = Browser::new(&host);
    let resp = other.totp_login("wonderland-42", &now_code(&host, &secret));
    assert_eq!(resp.status(), 401, "a code used at enrolment is a replay");
    assert!(!other.cookies.borrow().contains_key("edgeid_session"));

    host.clock.advance(30);
    let code = now_code(&host, &secret);
    let b = Browser::new(&host);
    let resp = b.totp_login("wonderland-42", &code);
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let cb = callback(&resp);
    let tokens = json_of(&redeem(&host, &cb["code"]));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "otp"]));
    assert_eq!(id["sub"], sub.as_str());

    // The same code again (same step) is refused: replay.
    let c = Browser::new(&host);
    let resp = c.totp_login("wonderland-42", &code);
    assert_eq!(resp.status(), 401);
    assert!(text(&resp).contains("already used"));

    // A recovery code works once.
    let d = Browser::new(&host);
    let resp = d.totp_login("wonderland-42", &codes[0].to_uppercase());
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let e = Browser::new(&host);
    assert_eq!(e.totp_login("wonderland-42", &codes[0]).status(), 401);
    assert!(text(&d.settings()).contains("9 unused recovery codes"));

    // A wrong password never reaches the second step.
    let f = Browser::new(&host);
    let resp = f.get(&authorize_url(""));
    assert_eq!(f.login(&resp, "alice", "nope-nope-nope").status(), 401);

    // The second-factor form is bound to the browser that passed the password.
    let g = Browser::new(&host);
    let resp = g.get(&authorize_url(""));
    let page = g.login(&resp, "alice", "wonderland-42");
    let pending = input(&text(&page), "pending");
    host.clock.advance(30);
    let thief = Browser::new(&host);
    let _ = thief.get(&authorize_url(""));
    let resp = thief.post(
        "/login/totp",
        &form(&[("pending", &pending), ("code", &now_code(&host, &secret))]),
    );
    assert_eq!(resp.status(), 400);
    assert!(!thief.cookies.borrow().contains_key("edgeid_session"));

    // The settings sign-in asks for the code too, then lands on settings.
    host.clock.advance(30);
    let h = Browser::new(&host);
    let page = h.get("/settings");
    let resp = h.post(
        "/settings/login",
        &form(&[
            ("csrf", &input(&text(&page), "csrf")),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert!(text(&resp).contains("action=\"/login/totp\""));
    let resp = h.post(
        "/login/totp",
        &form(&[
            ("pending", &input(&text(&resp), "pending")),
            ("code", &now_code(&host, &secret)),
        ]),
    );
    assert_eq!(
        location(&resp),
        format!("{}/settings", edgeid::testing::ISSUER)
    );
    assert!(text(&h.settings()).contains("password and code"));

    // Removing needs a current code or the password.
    let resp = h.settings_post(
        "/settings/totp/remove",
        &[("totp_confirm", "wrong-password")],
    );
    assert_eq!(resp.status(), 401);
    assert!(totp_stored(&host, &sub));
    let resp = h.settings_post(
        "/settings/totp/remove",
        &[("totp_confirm", "wonderland-42")],
    );
    assert_eq!(resp.status(), 303);
    assert!(!totp_stored(&host, &sub));
    let after = Browser::new(&host);
    let resp = after.get(&authorize_url(""));
    assert!(callback(&after.login(&resp, "alice", "wonderland-42")).contains_key("code"));

    let audit = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/audit?subject={sub}"),
        json!({}),
    ));
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .or(audit["items"].as_array())
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"totp.enrolled") && kinds.contains(&"totp.removed"));
}

#[test]
fn password_change_needs_the_current_password_unless_the_login_is_recent() {
    let (host, _) = setup(json!({}));
    let b = Browser::new(&host);
    b.settings_login("alice", "wonderland-42");
    // Just signed in: the current password is not needed.
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("new_password", "looking-glass-1"),
            ("confirm_password", "looking-glass-1"),
        ],
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));

    host.clock.advance(6 * 60);
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("new_password", "looking-glass-2"),
            ("confirm_password", "looking-glass-2"),
        ],
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("id=\"current_password-error\""));
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("current_password", "wonderland-42"),
            ("new_password", "looking-glass-2"),
            ("confirm_password", "looking-glass-2"),
        ],
    );
    assert_eq!(resp.status(), 401, "the old password no longer works");
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("current_password", "looking-glass-1"),
            ("new_password", "short"),
            ("confirm_password", "short"),
        ],
    );
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("8 to 1024 characters"));
    let resp = b.settings_post(
        "/settings/password",
        &[
            ("current_password", "looking-glass-1"),
            ("new_password", "looking-glass-2"),
            ("confirm_password", "looking-glass-2"),
        ],
    );
    assert_eq!(resp.status(), 303);
    let fresh = Browser::new(&host);
    fresh.settings_login("alice", "looking-glass-2");
}

#[test]
fn ending_another_session_makes_its_cookie_useless() {
    let (host, _) = setup(json!({}));
    let a = Browser::new(&host);
    let b = Browser::new(&host);
    let c = Browser::new(&host);
    a.settings_login("alice", "wonderland-42");
    host.clock.advance(1);
    b.settings_login("alice", "wonderland-42");
    host.clock.advance(1);
    c.settings_login("alice", "wonderland-42");
    let html = text(&c.settings());
    assert_eq!(html.matches("Signed in 2023").count(), 3);
    assert!(html.contains("(this session)"));

    // c ends the first other session listed (b, the newest after itself).
    let resp = c.settings_post("/settings/sessions/end", &[("sid", &input(&html, "sid"))]);
    assert_eq!(resp.status(), 303);
    assert!(text(&b.get("/settings")).contains("action=\"/settings/login\""));
    assert!(text(&a.settings()).contains("Your account"));

    let resp = c.settings_post("/settings/sessions/end", &[("others", "1")]);
    assert_eq!(resp.status(), 303);
    assert!(text(&a.get("/settings")).contains("action=\"/settings/login\""));
    assert!(text(&c.settings()).contains("Your account"));
    assert_eq!(text(&c.settings()).matches("Signed in 2023").count(), 1);
}

#[test]
fn revoking_a_connected_app_asks_consent_again_and_kills_its_refresh_token() {
    let (host, _) = setup(json!({"client_name": "Rabbit <Hole>"}));
    let b = Browser::new(&host);
    let code = first_login(&host, &b);
    let tokens = json_of(&redeem(&host, &code));
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let at = tokens["access_token"].as_str().unwrap().to_owned();

    let html = text(&b.settings());
    assert!(html.contains("Rabbit &lt;Hole&gt;"));
    let resp = b.settings_post("/settings/apps/revoke", &[("client_id", "rp")]);
    assert_eq!(resp.status(), 303);
    assert!(text(&b.settings()).contains("not allowed any app"));

    let resp = b.get(&authorize_url("&prompt=none"));
    assert_eq!(callback(&resp)["error"], "consent_required");
    let refreshed = token(
        &host,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    );
    assert_eq!(json_of(&refreshed)["error"], "invalid_grant");
    assert_eq!(userinfo(&host, &at).status(), 401);
}

#[test]
fn profile_changes_username_uniqueness_escaping_and_csrf() {
    let (host, sub) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "bob@example.com", "username": "bob"}),
    );
    assert_eq!(resp.status(), 201);
    let b = Browser::new(&host);
    b.settings_login("alice", "wonderland-42");

    // No token, or another token: 403 and nothing changes.
    let resp = b.post(
        "/settings/profile",
        &form(&[("name", "Mallory"), ("username", "alice")]),
    );
    assert_eq!(resp.status(), 403);
    let resp = b.post(
        "/settings/profile",
        &form(&[
            ("csrf", &"0".repeat(64)),
            ("name", "Mallory"),
            ("username", "alice"),
        ]),
    );
    assert_eq!(resp.status(), 403);
    let other = Browser::new(&host);
    let page = other.get("/settings");
    let resp = b.post(
        "/settings/profile",
        &form(&[
            ("csrf", &input(&text(&page), "csrf")),
            ("name", "Mallory"),
            ("username", "alice"),
        ]),
    );
    assert_eq!(resp.status(), 403, "a token of another browser");
    let resp = b.post(
        "/settings/login",
        &form(&[("identifier", "alice"), ("password", "x")]),
    );
    assert_eq!(resp.status(), 403);
    assert!(text(&b.settings()).contains("Alice Liddell"));

    // A taken username: the error sits next to the field.
    let resp = b.settings_post(
        "/settings/profile",
        &[("name", "Alice"), ("username", "BOB")],
    );
    assert_eq!(resp.status(), 409);
    let html = text(&resp);
    assert!(html.contains("id=\"username-error\""));
    assert!(html.contains("aria-describedby=\"username-hint username-error\""));
    let resp = b.settings_post(
        "/settings/profile",
        &[("name", "Alice"), ("username", "a b")],
    );
    assert_eq!(resp.status(), 400);

    let resp = b.settings_post(
        "/settings/profile",
        &[
            ("name", "<script>alert(1)</script>"),
            ("username", "alice2"),
        ],
    );
    assert_eq!(resp.status(), 303);
    let html = text(&b.settings());
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
    let user = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{sub}"),
        json!({}),
    ));
    assert_eq!(user["username"], "alice2");
    assert_eq!(user["id"], sub.as_str());
}

#[test]
fn settings_routes_belong_to_the_login_function() {
    for p in ["/settings", "/settings/totp", "/login/totp"] {
        assert_eq!(edgeid::Function::for_path(p), Some(edgeid::Function::Login));
    }
    assert_eq!(edgeid::Function::for_path("/settingsx"), None);
}
