//! The error model: spec error codes only, and the one mapping from an error to a response.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode, header};

use crate::Response;
use crate::ports::PortError;

/// Error codes defined by the specifications; nothing else goes on the wire as `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §5.2: "The request is missing a required parameter, includes an unsupported
    /// parameter value (other than grant type), repeats a parameter, includes multiple
    /// credentials, utilizes more than one mechanism for authenticating the client, or is
    /// otherwise malformed."
    InvalidRequest,
    /// RFC 6749 §5.2: "Client authentication failed (e.g., unknown client, no client
    /// authentication included, or unsupported authentication method)."
    InvalidClient,
    /// RFC 6749 §5.2: "The provided authorization grant ... or refresh token is invalid,
    /// expired, revoked, does not match the redirection URI used in the authorization request,
    /// or was issued to another client."
    InvalidGrant,
    /// RFC 6749 §5.2: "The authenticated client is not authorized to use this authorization
    /// grant type."
    UnauthorizedClient,
    /// RFC 6749 §5.2: "The authorization grant type is not supported by the authorization
    /// server."
    UnsupportedGrantType,
    /// RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or exceeds the scope
    /// granted by the resource owner."
    InvalidScope,
    /// RFC 6749 §4.1.2.1: "The authorization server encountered an unexpected condition that
    /// prevented it from fulfilling the request."
    ServerError,
    /// RFC 6749 §4.1.2.1: "The authorization server is currently unable to handle the request
    /// due to a temporary overloading or maintenance of the server."
    TemporarilyUnavailable,
    /// RFC 6750 §3.1: "The access token provided is expired, revoked, malformed, or invalid for
    /// other reasons."
    InvalidToken,
    /// RFC 6750 §3.1: "The request requires higher privileges than provided by the access
    /// token."
    InsufficientScope,
    /// RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the request."
    AccessDenied,
    /// RFC 6749 §4.1.2.1: "The authorization server does not support obtaining an
    /// authorization code using this method."
    UnsupportedResponseType,
    /// OIDC Core §3.1.2.6: "The Authorization Server requires End-User authentication."
    LoginRequired,
    /// OIDC Core §3.1.2.6: "The Authorization Server requires End-User consent."
    ConsentRequired,
    /// OIDC Core §3.1.2.6: "The End-User is REQUIRED to select a session at the
    /// Authorization Server."
    AccountSelectionRequired,
    /// OIDC Core §3.1.2.6: "The Authorization Server requires End-User interaction of some
    /// form to proceed."
    InteractionRequired,
    /// OIDC Core §3.1.2.6: "The OP does not support use of the request parameter."
    RequestNotSupported,
    /// OIDC Core §3.1.2.6: "The OP does not support use of the request_uri parameter."
    RequestUriNotSupported,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::AccountSelectionRequired => "account_selection_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }

    /// The status RFC 6749 §5.2 / RFC 6750 §3.1 give each code on a JSON endpoint.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// How the client tried to authenticate, which decides the `WWW-Authenticate` challenge of an
/// `invalid_client` answer (RFC 6749 §5.2: 401 with the scheme the client used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer,
}

/// An OAuth error: a spec code, a public description, and an internal reason for logs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// Never sent to the client (may name tables, keys, SQL errors).
    pub internal: Option<String>,
    pub challenge: Option<Challenge>,
    /// Overrides [`ErrorCode::status`] (413 for an oversized body, 405, ...).
    pub status: Option<StatusCode>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            internal: None,
            challenge: None,
            status: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// A storage, crypto or configuration failure: the client learns only `server_error`.
    pub fn server(internal: impl std::fmt::Display) -> Self {
        Self {
            internal: Some(internal.to_string()),
            ..Self::new(
                ErrorCode::ServerError,
                "The server could not complete the request.",
            )
        }
    }

    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_internal(mut self, internal: impl std::fmt::Display) -> Self {
        self.internal = Some(internal.to_string());
        self
    }

    /// The one mapping from an error to a JSON endpoint's response (RFC 6749 §5.2,
    /// RFC 6750 §3): status by code, `WWW-Authenticate` on 401, `Cache-Control: no-store`.
    /// The internal reason goes to the log (stderr), never into the body.
    pub fn into_json_response(self) -> Response {
        if let Some(internal) = &self.internal {
            log_error(self.code, internal);
        }
        let status = self.status.unwrap_or_else(|| self.code.status());
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'static str,
            error_description: &'a str,
        }
        let body = Body {
            error: self.code.as_str(),
            error_description: &self.description,
        };
        let mut resp = crate::web::json(status, &body);
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        // RFC 6750 §3: a resource answers 401 and 403 (insufficient_scope) with a challenge.
        if status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::FORBIDDEN && self.challenge == Some(Challenge::Bearer))
        {
            let value = match self.challenge {
                Some(Challenge::Basic) => Some(r#"Basic realm="edgeid""#.to_owned()),
                Some(Challenge::Bearer) => Some(format!(
                    r#"Bearer realm="edgeid", error="{}", error_description="{}""#,
                    self.code.as_str(),
                    self.description.replace(['"', '\\'], "'")
                )),
                None => None,
            };
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

impl From<PortError> for OAuthError {
    fn from(e: PortError) -> Self {
        OAuthError::server(e)
    }
}

/// Writes an internal failure to the host's log. Hosts capture stderr (Spin, workerd's console
/// via wasm-bindgen's stderr shim, the native binary). Never called with secrets.
pub fn log_error(code: ErrorCode, internal: &str) {
    eprintln!("edgeid: {}: {internal}", code.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_reason_never_reaches_the_body() {
        let resp = OAuthError::server("table clients: disk I/O error").into_json_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8_lossy(resp.body());
        assert!(body.contains("server_error"));
        assert!(!body.contains("disk"));
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn invalid_client_with_basic_challenges_basic() {
        let resp = OAuthError::new(ErrorCode::InvalidClient, "bad")
            .with_challenge(Challenge::Basic)
            .into_json_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            r#"Basic realm="edgeid""#
        );
    }
}
