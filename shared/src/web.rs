//! Small HTTP helpers shared by every flow: body limits, form parsing, JSON rendering.

use std::collections::HashMap;

use http::{HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::{OAuthError, Request, Response};

/// Requests with a larger body are refused with 413 before any parsing. Token and admin
/// bodies are a few hundred bytes; 64 KiB leaves room for long redirect URI lists.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

/// 404 for a path no function serves.
pub fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found"}),
    )
}

pub fn payload_too_large() -> Response {
    OAuthError::invalid_request("The request body is too large.")
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into_json_response()
}

pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({"error": "method_not_allowed"}),
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

    pub fn parse_bytes(body: &[u8]) -> Result<Form, OAuthError> {
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::invalid_request(
                "The request body is not valid UTF-8.",
            ));
        }
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "The parameter '{}' is included more than once.",
                    crate::web::printable(&k)
                )));
            }
        }
        Ok(Form(map))
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
        Self::parse_bytes(query.unwrap_or("").as_bytes())
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
pub fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value: host-only (no `Domain`), `Path=/`, `HttpOnly`, `SameSite=Lax`,
/// `Secure` unless the issuer is plain-http loopback. `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
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
    fn printable_strips_quotes_and_controls() {
        assert_eq!(printable("a\"b\\c\nd"), "abcd");
    }
}
