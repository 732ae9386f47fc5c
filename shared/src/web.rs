//! Small HTTP helpers shared by every flow: body limits, form parsing, JSON rendering.

use std::collections::HashMap;

use http::{HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::{OAuthError, Request, Response};

/// Requests with a larger body are refused with 413 before any parsing. Token and admin
/// bodies are a few hundred bytes; 64 KiB leaves room for long redirect URI lists.
pub const MAX_BODY_BYTES: usize = limits::MAX_BODY_BYTES;

/// Bounds on untrusted input (issue 9): every request is refused with a spec error before any
/// work grows with its size, and no parser of request data does more than linear work.
///
/// The numbers are generous for real clients (a sealed authorization request with the largest
/// allowed scope and redirect URI fits a query string) and small enough that the worst request
/// costs about what an ordinary one does.
pub mod limits {
    /// A request body (form or JSON). Larger bodies get 413 (RFC 9110 §15.5.14).
    pub const MAX_BODY_BYTES: usize = 64 * 1024;
    /// A query string. A sealed request at `/login?request=…` carries a whole authorization
    /// request (scope, redirect URI, state, nonce), so this is above the sum of their caps.
    pub const MAX_QUERY_BYTES: usize = 32 * 1024;
    /// Parameters in one form or query. The authorization request defines 20 or so.
    pub const MAX_PARAMS: usize = 64;
    /// The (decoded) length of a parameter name.
    pub const MAX_NAME_BYTES: usize = 128;
    /// The (decoded) length of one parameter value; individual parameters have smaller caps.
    pub const MAX_VALUE_BYTES: usize = 32 * 1024;
    /// Scope tokens in one `scope` parameter (RFC 6749 §3.3), and the length of each.
    pub const MAX_SCOPE_TOKENS: usize = 64;
    pub const MAX_SCOPE_TOKEN_BYTES: usize = 128;
    /// A `redirect_uri` (RFC 6749 §3.1.2); browsers and proxies reliably carry 2 KiB URLs.
    pub const MAX_REDIRECT_URI_BYTES: usize = 2048;
    /// `state` (RFC 6749 §4.1.1): opaque to us, echoed back in the redirect.
    pub const MAX_STATE_BYTES: usize = 2048;
    /// A JWT presented to us (`id_token_hint`, bearer tokens): ours are under 2 KiB.
    pub const MAX_JWT_BYTES: usize = 8192;
    /// An authorization code, refresh token or revocation/introspection `token` value.
    pub const MAX_TOKEN_BYTES: usize = 8192;
    /// All request header fields together (names and values). Larger get 431 (RFC 6585 §5).
    pub const MAX_HEADER_BYTES: usize = 32 * 1024;
    /// Header fields in one request (hyper's default limit on native, applied on every host).
    pub const MAX_HEADERS: usize = 100;
    /// Cookie pairs looked at in a request (RFC 6265 §6.1 asks for at least 50 per domain) and
    /// the longest cookie value taken (§6.1: at least 4096 bytes per cookie).
    pub const MAX_COOKIES: usize = 128;
    pub const MAX_COOKIE_BYTES: usize = 4096;
    /// An `Authorization` header carrying Basic client credentials (RFC 7617): a 255-character
    /// client id and a long secret, each percent-encoded (RFC 6749 §2.3.1), then base64.
    pub const MAX_BASIC_BYTES: usize = 2048;
}

/// 413 for a body over [`limits::MAX_BODY_BYTES`], 431 for header fields over
/// [`limits::MAX_HEADER_BYTES`] / [`limits::MAX_HEADERS`], 414 for a query string over
/// [`limits::MAX_QUERY_BYTES`]: checked once for every request before any flow runs, on every
/// host (hosts that refuse earlier, like the native one, give the same answers).
pub fn refuse_oversized(req: &Request) -> Option<Response> {
    if req.body().len() > limits::MAX_BODY_BYTES {
        return Some(payload_too_large());
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits::MAX_HEADERS || header_bytes > limits::MAX_HEADER_BYTES {
        return Some(
            OAuthError::invalid_request("The request header fields are too large.")
                .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .into_json_response(),
        );
    }
    if req
        .uri()
        .query()
        .is_some_and(|q| q.len() > limits::MAX_QUERY_BYTES)
    {
        return Some(
            OAuthError::invalid_request("The query string is too long.")
                .with_status(StatusCode::URI_TOO_LONG)
                .into_json_response(),
        );
    }
    None
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    // Serializing our own `Serialize` types into a Vec cannot fail (no maps with non-string
    // keys, no I/O); fall back to an empty object rather than panic if it ever does.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn with_header(mut resp: Response, name: header::HeaderName, value: &'static str) -> Response {
    resp.headers_mut()
        .insert(name, HeaderValue::from_static(value));
    resp
}

/// `{"error": "..."}` for the generic refusals (typed, so no `serde_json::Value` is linked).
#[derive(serde::Serialize)]
struct ErrorBody {
    error: &'static str,
}

/// 404 for a path no function serves.
pub fn not_found() -> Response {
    json(StatusCode::NOT_FOUND, &ErrorBody { error: "not_found" })
}

pub fn payload_too_large() -> Response {
    OAuthError::invalid_request("The request body is too large.")
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into_json_response()
}

/// 408 (RFC 9110 §15.5.9) for a body that did not arrive in time (hosts with a read timeout).
pub fn request_timeout() -> Response {
    let mut resp = OAuthError::invalid_request("The request body did not arrive in time.")
        .with_status(StatusCode::REQUEST_TIMEOUT)
        .into_json_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &ErrorBody {
            error: "method_not_allowed",
        },
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// The 405 answer (with `Allow`) for a request whose method is not in `allowed`.
pub fn wrong_method(req: &Request, allowed: &[Method], allow: &'static str) -> Option<Response> {
    (!allowed.contains(req.method())).then(|| method_not_allowed(allow))
}

/// A parsed `application/x-www-form-urlencoded` body (RFC 6749 §3.2, Appendix B).
///
/// RFC 6749 §3.1/§3.2: "Request and response parameters MUST NOT be included more than once";
/// parameters sent without a value are treated as omitted.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(req: &Request) -> Result<Form, OAuthError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "The request must be sent as application/x-www-form-urlencoded.",
            ));
        }
        Self::parse_bytes(req.body())
    }

    /// Parses `application/x-www-form-urlencoded` bytes (a body or a query string) within
    /// [`limits`]: at most [`limits::MAX_PARAMS`] parameters, each name and value bounded.
    /// One pass, linear in the input; the first violation ends it.
    pub fn parse_bytes(body: &[u8]) -> Result<Form, OAuthError> {
        if body.len() > limits::MAX_BODY_BYTES {
            return Err(OAuthError::invalid_request("The request is too large."));
        }
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::invalid_request(
                "The request body is not valid UTF-8.",
            ));
        }
        Self::from_pairs(form_urlencoded::parse(body))
    }

    /// A form from decoded name/value pairs (a urlencoded body, or the console's
    /// `multipart/form-data` parts) with the rules of [`Form::parse_bytes`]: at most
    /// [`limits::MAX_PARAMS`] parameters, bounded names and values, empty values omitted, a
    /// repeated parameter refused.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Form, OAuthError>
    where
        K: AsRef<str> + Into<String>,
        V: AsRef<str> + Into<String>,
    {
        let mut map = HashMap::new();
        for (count, (k, v)) in pairs.into_iter().enumerate() {
            if count >= limits::MAX_PARAMS {
                return Err(OAuthError::invalid_request(format!(
                    "The request has more than {} parameters.",
                    limits::MAX_PARAMS
                )));
            }
            if k.as_ref().len() > limits::MAX_NAME_BYTES {
                return Err(OAuthError::invalid_request("A parameter name is too long."));
            }
            if v.as_ref().len() > limits::MAX_VALUE_BYTES {
                return Err(OAuthError::invalid_request(format!(
                    "The parameter '{}' is too long.",
                    crate::web::printable(k.as_ref())
                )));
            }
            if v.as_ref().is_empty() {
                continue;
            }
            let name: String = k.into();
            if map.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "The parameter '{}' is included more than once.",
                    crate::web::printable(&name)
                )));
            }
            map.insert(name, v.into());
        }
        Ok(Form(map))
    }

    /// The value of `name`, refused with `invalid_request` when longer than `max` bytes.
    pub fn get_bounded(&self, name: &str, max: usize) -> Result<Option<&str>, OAuthError> {
        match self.get(name) {
            Some(v) if v.len() > max => Err(OAuthError::invalid_request(format!(
                "The {name} parameter is longer than {max} bytes."
            ))),
            other => Ok(other),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }
}

impl Form {
    /// The parameters of a query string, with the same rules as a form body.
    pub fn from_query(query: Option<&str>) -> Result<Form, OAuthError> {
        let query = query.unwrap_or("");
        if query.len() > limits::MAX_QUERY_BYTES {
            return Err(OAuthError::invalid_request("The query string is too long."));
        }
        Self::parse_bytes(query.as_bytes())
    }

    /// Parameters for a GET (query) or POST (form body) request: OIDC Core §3.1.2.1 lets
    /// the authorization request use either.
    pub fn from_request(req: &Request) -> Result<Form, OAuthError> {
        if req.method() == Method::POST {
            Self::parse(req)
        } else {
            Self::from_query(req.uri().query())
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4).
///
/// Only the first [`limits::MAX_COOKIES`] pairs are looked at, and a value longer than
/// [`limits::MAX_COOKIE_BYTES`] counts as absent: ours are short base64url tokens.
///
/// On an https issuer every cookie of ours is named with the `__Host-` prefix (RFC 6265bis
/// §4.1.3.2: `Secure`, `Path=/`, no `Domain`), so a sibling subdomain cannot plant one; the
/// function handler marks such a request with [`HostPrefixed`] and then only the prefixed name
/// is read — a plain-named cookie, which anyone on the parent domain could set, is ignored.
pub fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    let values = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if req.extensions().get::<HostPrefixed>().is_some() {
        cookie_in(values, &format!("{HOST_PREFIX}{name}"))
    } else {
        cookie_in(values, name)
    }
}

/// The CSRF token bound to the cookie `name` of this request (empty without it): SHA-256 over
/// a label and the cookie's value, which a cross-site page cannot read. The settings pages
/// bind it to the session cookie, the console to its own cookie (issue 11).
pub fn csrf_token(req: &Request, name: &str) -> String {
    match cookie(req, name).filter(|v| !v.is_empty()) {
        Some(v) => crate::crypto::sha256_hex(format!("edgeid/csrf/v1:{name}:{v}").as_bytes()),
        None => String::new(),
    }
}

/// The cookie-name prefix of an https issuer (RFC 6265bis §4.1.3.2).
pub const HOST_PREFIX: &str = "__Host-";

/// Request extension: this request is served under an https issuer, so its cookies carry the
/// `__Host-` prefix (see [`cookie`]).
#[derive(Debug, Clone, Copy)]
pub struct HostPrefixed;

/// Marks `req` as served under an https issuer when `secure` (see [`cookie`]). Every function
/// that reads cookies calls this once, where it loads its settings.
pub fn prefix_cookies(req: &mut Request, secure: bool) {
    if secure {
        req.extensions_mut().insert(HostPrefixed);
    }
}

/// [`cookie`] over raw `Cookie` field values (also the fuzzing entry point).
pub fn cookie_in<'r>(values: impl Iterator<Item = &'r str>, name: &str) -> Option<&'r str> {
    values
        .flat_map(|v| v.split(';'))
        .take(limits::MAX_COOKIES)
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| v.len() <= limits::MAX_COOKIE_BYTES)
}

/// A `Set-Cookie` value: host-only (no `Domain`), `Path=/`, `HttpOnly`, `SameSite=Lax`,
/// `Secure` unless the issuer is plain-http loopback. `max_age` 0 deletes the cookie.
/// On an https issuer (`secure`) the name carries the `__Host-` prefix (see [`cookie`]).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let prefix = if secure { HOST_PREFIX } else { "" };
    let mut v = format!("{prefix}{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        v.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        v.push_str("; Secure");
    }
    // Names and values are ours (base64url tokens): always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `303 See Other` to `location` (RFC 9110 §15.4.4): the browser follows with a GET, also
/// after a POSTed form.
pub fn see_other(location: &str) -> Response {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A short, printable rendering of client input for error descriptions (RFC 6749 §5.2 limits
/// `error_description` to %x20-21 / %x23-5B / %x5D-7E).
pub fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameters_are_refused() {
        let err = Form::parse_bytes(b"grant_type=a&grant_type=b").unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidRequest);
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let form = Form::parse_bytes(b"scope=&grant_type=client_credentials").unwrap();
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
    }

    #[test]
    fn issue9_too_many_parameters_are_refused() {
        let body: Vec<String> = (0..=limits::MAX_PARAMS)
            .map(|i| format!("p{i}=v"))
            .collect();
        let err = Form::parse_bytes(body.join("&").as_bytes()).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidRequest);
        assert!(
            err.description.contains("more than 64 parameters"),
            "{err:?}"
        );
        let ok: Vec<String> = (0..limits::MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        assert!(Form::parse_bytes(ok.join("&").as_bytes()).is_ok());
    }

    #[test]
    fn issue9_long_names_values_and_queries_are_refused() {
        let long_name = format!("{}=v", "n".repeat(limits::MAX_NAME_BYTES + 1));
        assert!(Form::parse_bytes(long_name.as_bytes()).is_err());
        let long_value = format!("v={}", "x".repeat(limits::MAX_VALUE_BYTES + 1));
        assert!(Form::parse_bytes(long_value.as_bytes()).is_err());
        // Percent-decoding only shrinks a value: the cap holds on what the parser produced.
        let encoded = format!("v={}", "%41".repeat(limits::MAX_VALUE_BYTES / 3 + 1));
        assert!(Form::parse_bytes(encoded.as_bytes()).is_ok());
        let query = format!("a={}", "b".repeat(limits::MAX_QUERY_BYTES));
        assert!(Form::from_query(Some(&query)).is_err());
        let form = Form::parse_bytes(b"state=abcdef").unwrap();
        assert!(form.get_bounded("state", 5).is_err());
        assert_eq!(form.get_bounded("state", 6).unwrap(), Some("abcdef"));
    }

    #[test]
    fn issue9_oversized_requests_get_413_431_414() {
        let req = |f: &dyn Fn(http::request::Builder) -> http::request::Builder, body: Vec<u8>| {
            f(http::Request::builder().uri("/oauth2/token"))
                .body(body)
                .unwrap()
        };
        let ok = req(&|b| b.header("x-a", "b"), b"a=b".to_vec());
        assert!(refuse_oversized(&ok).is_none());
        let big_body = req(&|b| b, vec![b'a'; limits::MAX_BODY_BYTES + 1]);
        assert_eq!(refuse_oversized(&big_body).unwrap().status(), 413);
        let big_header = "h".repeat(limits::MAX_HEADER_BYTES);
        let r = req(&|b| b.header("x-filler", big_header.as_str()), Vec::new());
        assert_eq!(refuse_oversized(&r).unwrap().status(), 431);
        let r = req(
            &|mut b| {
                for i in 0..=limits::MAX_HEADERS {
                    b = b.header(format!("x-{i}"), "1");
                }
                b
            },
            Vec::new(),
        );
        assert_eq!(refuse_oversized(&r).unwrap().status(), 431);
        let uri = format!("/oauth2/auth?a={}", "b".repeat(limits::MAX_QUERY_BYTES));
        let r = http::Request::builder().uri(uri).body(Vec::new()).unwrap();
        assert_eq!(refuse_oversized(&r).unwrap().status(), 414);
    }

    #[test]
    fn issue9_cookies_are_bounded() {
        let many: Vec<String> = (0..limits::MAX_COOKIES)
            .map(|i| format!("c{i}=1"))
            .collect();
        let header = format!("{}; sid=ours", many.join("; "));
        assert_eq!(cookie_in([header.as_str()].into_iter(), "sid"), None);
        assert_eq!(
            cookie_in(["a=1; sid=ours"].into_iter(), "sid"),
            Some("ours")
        );
        let long = format!("sid={}", "x".repeat(limits::MAX_COOKIE_BYTES + 1));
        assert_eq!(cookie_in([long.as_str()].into_iter(), "sid"), None);
    }

    #[test]
    fn printable_strips_quotes_and_controls() {
        assert_eq!(printable("a\"b\\c\nd"), "abcd");
    }
}
