//! Helpers for the OpenID Connect tests: a cookie-keeping browser that never follows a redirect
//! off the provider, users and clients through the admin API, a driver for authorize → login →
//! consent → callback, PKCE, a small HTML form reader and an ID-token verifier.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::{Resp, admin, base, basic, form_encode, request, unique};

/// The redirect URI host every test client registers. Nothing listens there: tests read the
/// `Location` header (or the form_post page) and never follow it.
pub const RP: &str = "https://rp.example.test";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `application/x-www-form-urlencoded` from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Parses `a=b&c=d` (query, fragment or form body) into a map; a repeated key keeps the first.
pub fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Browser

/// A user agent with its own cookie jar. Redirects are never followed automatically; statuses
/// are data.
pub struct Browser {
    agent: ureq::Agent,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .into(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A test that panicked while holding the lock has already failed.
        self.cookies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of a cookie currently in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar().get(name).cloned()
    }

    pub fn cookie_names(&self) -> Vec<String> {
        self.jar().keys().cloned().collect()
    }

    /// Forgets one cookie (as if it expired).
    pub fn drop_cookie(&self, name: &str) {
        self.jar().remove(name);
    }

    /// A path (`/login?...`) or an absolute URL under `BASE_URL`.
    pub fn url(path_or_url: &str) -> String {
        resolve(path_or_url)
    }

    /// One request with the jar's cookies; `Set-Cookie` answers update the jar.
    pub fn send(
        &self,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let url = resolve(path_or_url);
        assert!(
            url.starts_with(&base()),
            "the browser only talks to the provider, not {url}"
        );
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        let cookie = self
            .jar()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookie.is_empty() {
            builder = builder.header("cookie", cookie);
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .expect("a valid request");
        let resp = crate::convert(self.agent.run(req));
        for (k, v) in &resp.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                self.store_cookie(v);
            }
        }
        resp
    }

    fn store_cookie(&self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let expired = value.is_empty()
            || parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr.strip_prefix("max-age=")
                    .is_some_and(|n| n.trim().parse::<i64>().is_ok_and(|n| n <= 0))
                    || attr
                        .strip_prefix("expires=")
                        .is_some_and(|d| d.contains("1970"))
            });
        let mut jar = self.jar();
        if expired {
            jar.remove(&name);
        } else {
            jar.insert(name, value);
        }
    }

    pub fn get(&self, path_or_url: &str) -> Resp {
        self.send("GET", path_or_url, &[], None)
    }

    pub fn post_form(&self, path_or_url: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send(
            "POST",
            path_or_url,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(form(pairs).as_bytes()),
        )
    }

    /// `GET /oauth2/auth?...`
    pub fn authorize(&self, req: &AuthRequest) -> Resp {
        self.get(&format!("/oauth2/auth?{}", req.query()))
    }

    /// `POST /oauth2/auth` with the parameters as a form (OIDC Core §3.1.2.1).
    pub fn authorize_post(&self, req: &AuthRequest) -> Resp {
        self.send(
            "POST",
            "/oauth2/auth",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(req.query().as_bytes()),
        )
    }
}

/// Resolves a `Location` (absolute or relative) against `BASE_URL`.
pub fn resolve(location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let base = url::Url::parse(&format!("{}/", base())).expect("BASE_URL is a URL");
    base.join(location)
        .map(String::from)
        .unwrap_or_else(|e| panic!("Location {location:?} does not resolve: {e}"))
}

/// Whether an absolute URL is on the provider (as opposed to a relying party).
pub fn is_provider_url(url: &str) -> bool {
    url == base()
        || url.starts_with(&format!("{}/", base()))
        || url.starts_with(&format!("{}?", base()))
}

// ---------------------------------------------------------------------------------------------
// HTML

/// One `<form>` of a page: its action, method and the name/value of its inputs and buttons.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub method: String,
    /// `(name, value, type)` in document order; buttons included with type "button"/"submit".
    pub fields: Vec<(String, String, String)>,
}

impl Form {
    /// The value of the first field named `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v.as_str())
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _, _)| n == name)
    }

    /// The hidden fields as a map.
    pub fn hidden(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .filter(|(_, _, t)| t == "hidden")
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect()
    }
}

/// Decodes the character references a server-rendered page uses in attribute values.
pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of one start tag's text (between `<name` and `>`), names lowercased.
pub fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = tag.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let mut ve = vs;
                while ve < b.len() && b[ve] != q {
                    ve += 1;
                }
                i = ve + 1;
                &tag[vs..ve.min(b.len())]
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &tag[vs..i]
            };
            out.entry(name).or_insert_with(|| html_unescape(value));
        } else {
            out.entry(name).or_insert_with(String::new);
        }
    }
    out
}

/// Every start tag `<name ...>` of `html` (case-insensitive) as attribute maps with their
/// byte offsets.
fn tags(html: &str, name: &str) -> Vec<(usize, BTreeMap<String, String>)> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&open) {
        let at = from + i;
        let after = at + open.len();
        let boundary = lower[after..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/');
        let end = lower[after..].find('>').map_or(lower.len(), |e| after + e);
        if boundary {
            out.push((at, attributes(&html[after..end])));
        }
        from = end.max(after);
    }
    out
}

/// The forms of a page, with the `<input>` and `<button>` fields inside each.
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    for (start, attrs) in tags(html, "form") {
        let end = lower[start..]
            .find("</form")
            .map_or(html.len(), |e| start + e);
        let inner = &html[start..end];
        let mut fields: Vec<(usize, (String, String, String))> = Vec::new();
        for (at, a) in tags(inner, "input") {
            if let Some(name) = a.get("name") {
                let t = a
                    .get("type")
                    .map_or("text".to_owned(), |t| t.to_ascii_lowercase());
                fields.push((
                    at,
                    (name.clone(), a.get("value").cloned().unwrap_or_default(), t),
                ));
            }
        }
        for (at, a) in tags(inner, "button") {
            if let Some(name) = a.get("name") {
                let t = a
                    .get("type")
                    .map_or("submit".to_owned(), |t| t.to_ascii_lowercase());
                fields.push((
                    at,
                    (name.clone(), a.get("value").cloned().unwrap_or_default(), t),
                ));
            }
        }
        fields.sort_by_key(|(at, _)| *at);
        out.push(Form {
            action: attrs.get("action").cloned().unwrap_or_default(),
            method: attrs
                .get("method")
                .map_or("get".to_owned(), |m| m.to_ascii_lowercase()),
            fields: fields.into_iter().map(|(_, f)| f).collect(),
        });
    }
    out
}

/// The first form whose action (resolved) is `action` (a path or absolute URL).
pub fn form_with_action(html: &str, action: &str) -> Option<Form> {
    let want = resolve(action);
    forms(html).into_iter().find(|f| {
        let got = resolve(&f.action);
        got == want || got.split('?').next() == Some(want.as_str())
    })
}

// ---------------------------------------------------------------------------------------------
// Users and clients

/// A user created through the admin API, with the password it was created with.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password: String,
    /// The admin API's answer.
    pub record: Value,
}

/// `POST /admin/users` with defaults (unique username/email, a name, a verified email and a
/// password) merged under `overrides`.
pub fn create_user(overrides: Value) -> User {
    let username = unique("user");
    let password = format!("{}-Pw!", unique("pass"));
    let mut body = json!({
        "email": format!("{username}@example.test"),
        "username": username,
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "email_verified": true,
        "password": password,
    });
    merge(&mut body, &overrides);
    let resp = admin("POST", "/users", Some(body.clone()));
    assert_eq!(resp.status, 201, "creating user: {}", resp.text());
    let record = resp.json();
    User {
        id: record["id"]
            .as_str()
            .expect("the user has an id")
            .to_owned(),
        username: body["username"].as_str().unwrap_or_default().to_owned(),
        email: body["email"].as_str().unwrap_or_default().to_owned(),
        password: body["password"].as_str().unwrap_or_default().to_owned(),
        record,
    }
}

fn merge(body: &mut Value, overrides: &Value) {
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A registered relying party.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub id: String,
    /// Empty for public clients.
    pub secret: String,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub auth_method: String,
    /// `RS256` or `ES256`.
    pub alg: String,
    /// The admin API's answer.
    pub record: Value,
}

/// Registers an OpenID Connect client: code + refresh grants, `openid profile email
/// offline_access`, one unique redirect URI under [`RP`], a post-logout URI, consent skipped,
/// `client_secret_basic`; `overrides` replace any field (null removes it).
pub fn create_oidc_client(overrides: Value) -> OidcClient {
    let id = unique("rp");
    let redirect_uri = format!("{RP}/cb/{id}");
    let post_logout = format!("{RP}/logged-out/{id}");
    let mut body = json!({
        "client_id": id,
        "client_name": "Suite RP",
        "client_secret": format!("{}-secret", unique("s")),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [post_logout],
        "scope": "openid profile email offline_access",
        "token_endpoint_auth_method": "client_secret_basic",
        "skip_consent": true,
    });
    merge(&mut body, &overrides);
    if body["token_endpoint_auth_method"] == "none"
        && overrides.get("client_secret").is_none()
        && let Some(b) = body.as_object_mut()
    {
        b.remove("client_secret");
    }
    let resp = admin("POST", "/clients", Some(body.clone()));
    assert_eq!(resp.status, 201, "creating client: {}", resp.text());
    let record = resp.json();
    let first = |v: &Value| {
        v.as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    OidcClient {
        id: body["client_id"].as_str().unwrap_or_default().to_owned(),
        secret: body["client_secret"]
            .as_str()
            .or_else(|| record["client_secret"].as_str())
            .unwrap_or_default()
            .to_owned(),
        redirect_uri: first(&body["redirect_uris"]),
        post_logout_redirect_uri: first(&body["post_logout_redirect_uris"]),
        auth_method: body["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or("client_secret_basic")
            .to_owned(),
        alg: body["id_token_signed_response_alg"]
            .as_str()
            .unwrap_or("RS256")
            .to_owned(),
        record,
    }
}

impl OidcClient {
    /// A client-authenticated form POST to a provider endpoint, with this client's method.
    pub fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let mut pairs: Vec<(&str, &str)> = pairs.to_vec();
        let auth = basic(&self.id, &self.secret);
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        match self.auth_method.as_str() {
            "client_secret_post" => {
                pairs.push(("client_id", &self.id));
                pairs.push(("client_secret", &self.secret));
            }
            "none" => pairs.push(("client_id", &self.id)),
            _ => headers.push(("authorization", &auth)),
        }
        request("POST", path, &headers, Some(form(&pairs).as_bytes()))
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    pub fn exchange(&self, code: &str, code_verifier: Option<&str>) -> Resp {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
        ];
        if let Some(v) = code_verifier {
            pairs.push(("code_verifier", v));
        }
        self.post("/oauth2/token", &pairs)
    }

    /// `grant_type=refresh_token` (RFC 6749 §6).
    pub fn refresh(&self, refresh_token: &str) -> Resp {
        self.post(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
    }

    /// RFC 7009 §2.1.
    pub fn revoke(&self, token: &str, hint: Option<&str>) -> Resp {
        let mut pairs = vec![("token", token)];
        if let Some(h) = hint {
            pairs.push(("token_type_hint", h));
        }
        self.post("/oauth2/revoke", &pairs)
    }

    /// RFC 7662 §2.1; returns the response.
    pub fn introspect(&self, token: &str) -> Resp {
        self.post("/oauth2/introspect", &[("token", token)])
    }

    /// A fresh authorization request for this client: `response_type=code`, `scope=openid`,
    /// a random `state` and `nonce`.
    pub fn auth_request(&self) -> AuthRequest {
        AuthRequest::new(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization requests and responses

/// PKCE (RFC 7636) with the S256 method.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// RFC 7636 §4.1-§4.2: a 43-character verifier from 32 random bytes, challenge
    /// `BASE64URL(SHA256(verifier))`.
    pub fn s256() -> Pkce {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).expect("OS randomness");
        let verifier = b64url(&b);
        let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// The parameters of an authorization request, in order.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub params: Vec<(String, String)>,
}

impl AuthRequest {
    pub fn new(client: &OidcClient) -> AuthRequest {
        AuthRequest {
            params: vec![
                ("client_id".into(), client.id.clone()),
                ("redirect_uri".into(), client.redirect_uri.clone()),
                ("response_type".into(), "code".into()),
                ("scope".into(), "openid".into()),
                ("state".into(), unique("state")),
                ("nonce".into(), unique("nonce")),
            ],
        }
    }

    /// Sets (replacing) one parameter.
    pub fn set(mut self, key: &str, value: &str) -> AuthRequest {
        self.params.retain(|(k, _)| k != key);
        self.params.push((key.into(), value.into()));
        self
    }

    /// Removes one parameter.
    pub fn without(mut self, key: &str) -> AuthRequest {
        self.params.retain(|(k, _)| k != key);
        self
    }

    /// Adds `code_challenge` and `code_challenge_method=S256`.
    pub fn pkce(self, pkce: &Pkce) -> AuthRequest {
        self.set("code_challenge", &pkce.challenge)
            .set("code_challenge_method", "S256")
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn state(&self) -> &str {
        self.param("state").unwrap_or_default()
    }

    pub fn nonce(&self) -> Option<&str> {
        self.param("nonce")
    }

    pub fn query(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form(&pairs)
    }
}

/// How the authorization response reached the client (OAuth 2.0 Multiple Response Types
/// §2.1, Form Post Response Mode §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// An authorization response as the relying party receives it.
#[derive(Debug, Clone)]
pub struct Callback {
    pub mode: ResponseMode,
    /// The redirect target (query/fragment) or the form action (form_post).
    pub url: String,
    pub params: BTreeMap<String, String>,
    /// The HTTP status that delivered it (303 for redirects, 200 for form_post).
    pub status: u16,
}

impl Callback {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// The parameter, or a panic naming what arrived instead.
    pub fn require(&self, key: &str) -> &str {
        self.param(key)
            .unwrap_or_else(|| panic!("the callback has no {key}: {self:?}"))
    }

    /// The redirect target without query and fragment.
    pub fn target(&self) -> &str {
        self.url
            .split(['?', '#'])
            .next()
            .unwrap_or(self.url.as_str())
    }

    /// The `code` of a successful response, after checking `state` and RFC 9207 `iss`.
    pub fn code(&self, req: &AuthRequest) -> String {
        assert!(
            self.param("error").is_none(),
            "authorization failed: {self:?}"
        );
        assert_eq!(self.param("state"), Some(req.state()), "state echoed");
        assert_eq!(self.param("iss"), Some(base().as_str()), "RFC 9207 iss");
        self.require("code").to_owned()
    }

    /// The `error` of a failed response.
    pub fn error(&self) -> &str {
        self.require("error")
    }
}

/// Reads a response that may be the authorization response: a redirect off the provider (query
/// or fragment) or a form_post page whose form targets a URL off the provider.
pub fn callback_of(resp: &Resp) -> Option<Callback> {
    if (300..400).contains(&resp.status) {
        let url = resolve(resp.header("location")?);
        if is_provider_url(&url) {
            return None;
        }
        let (before_fragment, fragment) = match url.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (url.as_str(), None),
        };
        let query = before_fragment.split_once('?').map(|(_, q)| q);
        let (mode, params) = match (fragment, query) {
            (Some(f), _) if !f.is_empty() => (ResponseMode::Fragment, parse_params(f)),
            (_, Some(q)) => (ResponseMode::Query, parse_params(q)),
            _ => (ResponseMode::Query, BTreeMap::new()),
        };
        return Some(Callback {
            mode,
            url,
            params,
            status: resp.status,
        });
    }
    if resp.status == 200 {
        let html = resp.text();
        let f = forms(&html)
            .into_iter()
            .find(|f| f.method == "post" && !is_provider_url(&resolve(&f.action)))?;
        return Some(Callback {
            mode: ResponseMode::FormPost,
            url: f.action.clone(),
            params: f.hidden(),
            status: resp.status,
        });
    }
    None
}

/// What the browser went through on the way to the client.
#[derive(Debug)]
pub struct FlowResult {
    pub callback: Callback,
    /// The HTML of every login page shown (in order).
    pub login_pages: Vec<String>,
    /// The HTML of every consent page shown.
    pub consent_pages: Vec<String>,
}

impl FlowResult {
    pub fn saw_login(&self) -> bool {
        !self.login_pages.is_empty()
    }

    pub fn saw_consent(&self) -> bool {
        !self.consent_pages.is_empty()
    }
}

/// authorize (GET) → login page → POST login → consent (allowed) → the client's callback.
pub fn login_flow(browser: &Browser, req: &AuthRequest, user: &User) -> FlowResult {
    let first = browser.authorize(req);
    drive(browser, first, Some(user), "allow")
}

/// Follows the provider's pages from `resp` until the response for the client: redirects on the
/// provider are followed, a login form is filled with `user` (panics if there is none), a
/// consent form is answered with `decision` (`allow` or `deny`).
pub fn drive(browser: &Browser, mut resp: Resp, user: Option<&User>, decision: &str) -> FlowResult {
    let mut login_pages = Vec::new();
    let mut consent_pages = Vec::new();
    for _ in 0..12 {
        if let Some(callback) = callback_of(&resp) {
            return FlowResult {
                callback,
                login_pages,
                consent_pages,
            };
        }
        if (300..400).contains(&resp.status) {
            let location = resp
                .header("location")
                .unwrap_or_else(|| panic!("a {} without Location", resp.status))
                .to_owned();
            assert_eq!(resp.status, 303, "redirects in the flow are 303 See Other");
            resp = browser.get(&location);
            continue;
        }
        let html = resp.text();
        assert_eq!(resp.status, 200, "unexpected page in the flow: {html}");
        if form_with_action(&html, "/login").is_some_and(|f| f.has_field("password")) {
            let user = user.unwrap_or_else(|| panic!("a login form was shown: {html}"));
            login_pages.push(html.clone());
            resp = login_page_submit(browser, &resp, user);
            continue;
        }
        if let Some(f) = form_with_action(&html, "/consent") {
            consent_pages.push(html.clone());
            let request = f
                .value("request")
                .unwrap_or_else(|| panic!("the consent form carries the request: {html}"))
                .to_owned();
            resp = browser.post_form("/consent", &[("request", &request), ("decision", decision)]);
            continue;
        }
        panic!("neither login, consent nor callback: {html}");
    }
    panic!("the flow did not reach the client within 12 steps");
}

/// Opens the recovery (welcome or reset) `link` in `browser` and submits its set-password form.
pub fn follow_and_set(browser: &Browser, link: &str, password: &str, confirm: &str) -> Resp {
    let page = browser.get(link);
    assert_eq!(page.status, 200, "{}", page.text());
    let form = form_with_action(&page.text(), "/recovery/password")
        .unwrap_or_else(|| panic!("a set-password form: {}", page.text()));
    let hidden = form.hidden();
    let mut pairs: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("password", password));
    pairs.push(("confirm", confirm));
    browser.post_form("/recovery/password", &pairs)
}

/// Fills the login page `page` with `user`'s username and password and posts it.
pub fn login_page_submit(browser: &Browser, page: &Resp, user: &User) -> Resp {
    let html = page.text();
    let f = form_with_action(&html, "/login")
        .filter(|f| f.has_field("password"))
        .unwrap_or_else(|| panic!("a login form: {html}"));
    let request = f
        .value("request")
        .unwrap_or_else(|| panic!("the login form carries the request: {html}"))
        .to_owned();
    let resp = browser.post_form(
        "/login",
        &[
            ("request", &request),
            ("identifier", &user.username),
            ("password", &user.password),
        ],
    );
    assert!(
        resp.status != 401,
        "login with the right password failed: {}",
        resp.text()
    );
    resp
}

/// A complete code flow with state, nonce and PKCE (S256) and its checked outcome.
pub struct CodeFlow {
    pub request: AuthRequest,
    pub pkce: Pkce,
    pub flow: FlowResult,
    /// The token response JSON.
    pub tokens: Value,
    /// The verified ID token's claims.
    pub id_claims: Value,
}

impl CodeFlow {
    pub fn access_token(&self) -> &str {
        self.tokens["access_token"].as_str().expect("access_token")
    }

    pub fn id_token(&self) -> &str {
        self.tokens["id_token"].as_str().expect("id_token")
    }

    pub fn refresh_token(&self) -> &str {
        self.tokens["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh_token in {}", self.tokens))
    }
}

/// Runs the code flow for `client` and `user` with `scope`, redeems the code, verifies the ID
/// token. `browser` keeps the session for later steps.
pub fn code_flow(browser: &Browser, client: &OidcClient, user: &User, scope: &str) -> CodeFlow {
    let pkce = Pkce::s256();
    let request = client.auth_request().set("scope", scope).pkce(&pkce);
    let flow = login_flow(browser, &request, user);
    let code = flow.callback.code(&request);
    let resp = client.exchange(&code, Some(&pkce.verifier));
    assert_eq!(resp.status, 200, "code exchange: {}", resp.text());
    let tokens = resp.json();
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token in {tokens}"));
    let id_claims = verify_id_token(id_token, client, request.nonce());
    assert_eq!(id_claims["sub"], user.id.as_str());
    if let Some(at) = tokens["access_token"].as_str() {
        check_hash(&id_claims, "at_hash", at, false);
    }
    CodeFlow {
        request,
        pkce,
        flow,
        tokens,
        id_claims,
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// OIDC Core §3.1.3.6 / §3.3.2.11: the base64url of the left half of SHA-256 of the ASCII
/// token (ES256 and RS256 both hash with SHA-256).
pub fn half_hash(token: &str) -> String {
    let digest = sha2::Sha256::digest(token.as_bytes());
    b64url(&digest[..16])
}

/// Checks `claims[name]` (`at_hash` or `c_hash`) against `value`; `required` says whether the
/// claim must be present.
pub fn check_hash(claims: &Value, name: &str, value: &str, required: bool) {
    match claims[name].as_str() {
        Some(h) => assert_eq!(h, half_hash(value), "{name} does not match"),
        None => assert!(!required, "the ID token lacks {name}: {claims}"),
    }
}

/// Verifies an ID token (OIDC Core §3.1.3.7): signature with the client's algorithm against the
/// published key with the header's `kid`, `iss` = issuer, `aud` contains the client, `azp` (if
/// present) is the client, `exp` in the future, `iat` present, and `nonce` equal to the one sent
/// (absent when none was sent). Returns the claims.
pub fn verify_id_token(token: &str, client: &OidcClient, nonce: Option<&str>) -> Value {
    verify_id_token_with(token, client, nonce, &jwks_cached())
}

pub fn verify_id_token_with(
    token: &str,
    client: &OidcClient,
    nonce: Option<&str>,
    set: &JwkSet,
) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWS header");
    let want = match client.alg.as_str() {
        "ES256" => jsonwebtoken::Algorithm::ES256,
        _ => jsonwebtoken::Algorithm::RS256,
    };
    assert_eq!(header.alg, want, "the ID token's alg is the client's");
    let kid = header
        .kid
        .clone()
        .expect("the ID token header carries a kid");
    let fresh;
    let jwk = match set.find(&kid) {
        Some(k) => k,
        None => {
            fresh = crate::jwks();
            fresh
                .find(&kid)
                .unwrap_or_else(|| panic!("kid {kid} is published in the JWKS"))
        }
    };
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let mut validation = jsonwebtoken::Validation::new(want);
    validation.set_issuer(&[base()]);
    validation.set_audience(&[client.id.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("the ID token verifies: {e}"))
        .claims;
    assert!(
        claims["iat"].is_i64() || claims["iat"].is_u64(),
        "iat: {claims}"
    );
    if !claims["azp"].is_null() {
        assert_eq!(claims["azp"], client.id.as_str(), "azp");
    }
    match nonce {
        Some(n) => assert_eq!(claims["nonce"], n, "nonce echoed"),
        None => assert!(claims.get("nonce").is_none(), "no nonce was sent: {claims}"),
    }
    claims
}

/// The JWKS, fetched once per test binary (a verifier refetches on an unknown `kid`).
pub fn jwks_cached() -> JwkSet {
    static SET: OnceLock<JwkSet> = OnceLock::new();
    SET.get_or_init(crate::jwks).clone()
}

/// The claims of a JWT without verifying it (for tests that then verify differently).
pub fn unverified_claims(token: &str) -> Value {
    let payload = token
        .split('.')
        .nth(1)
        .expect("a JWS compact serialization");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("a JSON payload")
}

// ---------------------------------------------------------------------------------------------
// Userinfo

/// `GET /userinfo` with `Authorization: Bearer` (RFC 6750 §2.1).
pub fn userinfo_get(access_token: &str) -> Resp {
    let auth = format!("Bearer {access_token}");
    request("GET", "/userinfo", &[("authorization", &auth)], None)
}

/// `POST /userinfo` with the token in the header.
pub fn userinfo_post_header(access_token: &str) -> Resp {
    let auth = format!("Bearer {access_token}");
    request(
        "POST",
        "/userinfo",
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(b""),
    )
}

/// `POST /userinfo` with `access_token` in the form body (RFC 6750 §2.2).
pub fn userinfo_post_body(access_token: &str) -> Resp {
    let body = format!("access_token={}", form_encode(access_token));
    request(
        "POST",
        "/userinfo",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
}

/// The OAuth error code of a JSON error response.
pub fn oauth_error(resp: &Resp) -> String {
    serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("not an OAuth error ({}): {}", resp.status, resp.text()))
}

/// Seconds since the epoch (for `auth_time` comparisons).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OIDC Core Appendix A.3 and A.4: the spec's own at_hash and c_hash examples.
    #[test]
    fn half_hash_matches_the_spec_examples() {
        assert_eq!(
            half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            half_hash("Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"),
            "LDktKdoQak3Pk0cnXxCltA"
        );
    }

    /// RFC 7636 Appendix B.
    #[test]
    fn s256_challenge_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            b64url(&sha2::Sha256::digest(verifier.as_bytes())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let p = Pkce::s256();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(
            p.challenge,
            b64url(&sha2::Sha256::digest(p.verifier.as_bytes()))
        );
    }

    #[test]
    fn forms_are_read_with_their_fields() {
        let html = r#"<html><body>
            <FORM Method="POST" action='/login'>
              <input type="hidden" name="request" value="a&amp;b&#x3D;c">
              <input name=identifier value="ada@example.test" autofocus>
              <input type="password" name="password">
              <button type="submit" name="decision" value="allow">Allow</button>
            </FORM>
            <form method="post" action="https://rp.example.test/cb"><input type="hidden" name="code" value="xyz"/></form>
        "#;
        let all = forms(html);
        assert_eq!(all.len(), 2);
        let f = &all[0];
        assert_eq!(f.method, "post");
        assert_eq!(f.action, "/login");
        assert_eq!(f.value("request"), Some("a&b=c"));
        assert_eq!(f.value("identifier"), Some("ada@example.test"));
        assert_eq!(f.value("password"), Some(""));
        assert_eq!(f.value("decision"), Some("allow"));
        assert_eq!(f.hidden().len(), 1);
        assert_eq!(all[1].value("code"), Some("xyz"));
        assert!(!all[0].has_field("code"), "fields stay inside their form");
    }

    #[test]
    fn cookies_are_stored_replaced_and_expired() {
        let b = Browser::new();
        b.store_cookie("edgeid_flow=abc; Path=/; HttpOnly; SameSite=Lax");
        b.store_cookie("edgeid_session=s1; Path=/; HttpOnly");
        assert_eq!(b.cookie("edgeid_flow").as_deref(), Some("abc"));
        b.store_cookie("edgeid_session=s2; Path=/");
        assert_eq!(b.cookie("edgeid_session").as_deref(), Some("s2"));
        b.store_cookie("edgeid_session=; Path=/; Max-Age=0");
        assert_eq!(b.cookie("edgeid_session"), None);
        b.store_cookie("edgeid_flow=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(b.cookie("edgeid_flow"), None);
    }

    #[test]
    fn params_parse_percent_and_plus() {
        let p = parse_params("code=a%2Bb&state=x+y&iss=http%3A%2F%2Fh");
        assert_eq!(p["code"], "a+b");
        assert_eq!(p["state"], "x y");
        assert_eq!(p["iss"], "http://h");
    }
}
