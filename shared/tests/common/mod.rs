//! The in-memory test harness every flow test file shares: an admin client, a browser with a
//! cookie jar over [`MemoryHost`], a registered relying party and the calls it makes.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of it
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::cell::RefCell;
pub use std::collections::HashMap;

pub use base64::Engine as _;
pub use edgeid::testing::MemoryHost;
pub use edgeid::{Request, Response};
pub use futures_executor::block_on;
pub use serde_json::{Value, json};
pub use sha2::Digest as _;

pub const ADMIN: &str = "Bearer test-admin-token";
pub const CB: &str = "https://rp.example.test/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn challenge(verifier: &str) -> String {
    b64(&sha2::Sha256::digest(verifier.as_bytes()))
}

pub fn send(
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

pub fn admin(host: &MemoryHost, method: &str, path: &str, body: Value) -> Response {
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

pub fn json_of(resp: &Response) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

pub fn text(resp: &Response) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

pub fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location ({}): {}", resp.status(), text(resp)))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Parameters of a query string or fragment.
pub fn params(s: &str) -> HashMap<String, String> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub fn input(html: &str, name: &str) -> String {
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

/// RFC 4648 base32 without padding (how enrolment pages show a TOTP key); spaces ignored.
pub fn base32_decode(s: &str) -> Vec<u8> {
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

/// A browser: a cookie jar over the in-memory host.
pub struct Browser<'h> {
    pub host: &'h MemoryHost,
    pub cookies: RefCell<HashMap<String, String>>,
}

impl<'h> Browser<'h> {
    pub fn new(host: &'h MemoryHost) -> Self {
        Self {
            host,
            cookies: RefCell::default(),
        }
    }

    pub fn request(&self, method: &str, uri: &str, form: Option<&str>) -> Response {
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

    pub fn get(&self, uri: &str) -> Response {
        self.request("GET", uri, None)
    }

    pub fn post(&self, uri: &str, form: &str) -> Response {
        self.request("POST", uri, Some(form))
    }

    /// Logs in on the login page `resp` points to; returns the response to the POST.
    pub fn login(&self, at: &Response, identifier: &str, password: &str) -> Response {
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

    pub fn consent(&self, at: &Response, decision: &str) -> Response {
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

pub fn setup(client: Value) -> (MemoryHost, String) {
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

pub fn authorize_url(extra: &str) -> String {
    format!(
        "/oauth2/auth?client_id=rp&response_type=code&redirect_uri={}&scope=openid%20profile%20email%20offline_access&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256{extra}",
        form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
        challenge(VERIFIER)
    )
}

pub fn callback(resp: &Response) -> HashMap<String, String> {
    let loc = location(resp);
    assert!(loc.starts_with(CB), "redirects to the client: {loc}");
    let (_, rest) = loc.split_once(['?', '#']).unwrap();
    params(rest)
}

pub fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rp:rp-secret-123")
    )
}

pub fn token(host: &MemoryHost, form: &str) -> Response {
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

pub fn redeem(host: &MemoryHost, code: &str) -> Response {
    token(
        host,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>()
        ),
    )
}

pub fn userinfo(host: &MemoryHost, at: &str) -> Response {
    send(
        host,
        "GET",
        "/userinfo",
        &[("authorization", &format!("Bearer {at}"))],
        "",
    )
}

/// Logs a fresh browser in through the consent page and returns the code.
pub fn first_login<'h>(host: &'h MemoryHost, browser: &Browser<'h>) -> String {
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

/// The console (issue 11): signs in through `/` → `/admin/console/login` → `/oauth2/auth` →
/// the login page → the callback; returns the launcher page.
impl Browser<'_> {
    pub fn console_sign_in(&self, identifier: &str, password: &str) -> Response {
        let resp = self.get("/");
        assert_eq!(resp.status(), 303, "{}", text(&resp));
        assert!(
            location(&resp).contains("/admin/console/login?next="),
            "{}",
            location(&resp)
        );
        let resp = self.get(&location(&resp));
        assert_eq!(resp.status(), 303, "{}", text(&resp));
        assert!(location(&resp).contains("/oauth2/auth?"));
        let resp = self.get(&location(&resp));
        assert_eq!(resp.status(), 303, "{}", text(&resp));
        let resp = self.login(&resp, identifier, password);
        assert_eq!(resp.status(), 303, "{}", text(&resp));
        self.console_follow(resp)
    }

    /// Follows redirects from `resp` to a page (at most 8 hops).
    pub fn console_follow(&self, mut resp: Response) -> Response {
        for _ in 0..8 {
            if resp.status() != 303 && resp.status() != 302 {
                return resp;
            }
            resp = self.get(&location(&resp));
        }
        panic!("too many redirects");
    }

    /// The CSRF token of the console page at `path` (every console page carries one).
    pub fn console_csrf(&self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page.status(), 200, "{path}: {}", text(&page));
        input(&text(&page), "csrf")
    }

    /// POSTs a console form with the CSRF token of `/`.
    pub fn console_post(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let csrf = self.console_csrf("/");
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("csrf", &csrf);
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        self.post(path, &s.finish())
    }
}

/// Creates a global admin `root` with `password` through the admin API; returns its id.
pub fn create_admin(host: &MemoryHost, password: &str) -> String {
    let resp = admin(
        host,
        "POST",
        "/admin/users",
        json!({"email": "root@example.com", "username": "root", "name": "Root Admin",
               "email_verified": true, "is_admin": true, "password": password}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    json_of(&resp)["id"].as_str().unwrap().to_owned()
}
