//! Parsing and validating the authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1,
//! §3.2.2.1, §3.3.2.1, RFC 7636 §4.3), in the order that decides where an error may go:
//! first `client_id` and `redirect_uri` (errors there get an HTML page, never a redirect:
//! RFC 6749 §4.1.2.1), then everything else (errors redirect to the verified `redirect_uri`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::client::{self, AuthMethod, Client};
use crate::error::{ErrorCode, OAuthError};
use crate::web::{self, Form};

/// RFC 9207 / OAuth 2.0 Multiple Response Type Encoding Practices §2.1, OAuth 2.0 Form Post
/// Response Mode §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    fn parse(s: &str) -> Option<ResponseMode> {
        match s {
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }

    /// Multiple Response Types §2.1: `code` defaults to query, anything issuing a token from
    /// the authorization endpoint to fragment.
    pub fn default_for(response_type: &str) -> ResponseMode {
        if response_type == "code" {
            ResponseMode::Query
        } else {
            ResponseMode::Fragment
        }
    }
}

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// Where the response goes, once `client_id` and `redirect_uri` are verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

/// A fully validated authorization request. This is also what travels sealed from authorize
/// to login and consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub reply: ReplyTo,
    /// Canonical order (`code id_token token`).
    pub response_type: String,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    /// RFC 7636 §4.2, S256 only.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of a verified `id_token_hint`.
    pub hint_sub: Option<String>,
    /// Whether the request carried `redirect_uri` (it may be omitted when the client has one
    /// registered URI and the request is not OpenID). RFC 6749 §4.1.3 then makes the token
    /// request's `redirect_uri` REQUIRED and identical; the code records it.
    #[serde(default = "sent")]
    pub redirect_uri_sent: bool,
}

/// A sealed request from before `redirect_uri_sent` existed: assume it was sent, the stricter
/// reading at the token endpoint.
fn sent() -> bool {
    true
}

impl AuthorizeRequest {
    /// The `redirect_uri` the token request must repeat (RFC 6749 §4.1.3), if any.
    pub fn redirect_uri_param(&self) -> Option<&str> {
        self.redirect_uri_sent
            .then_some(self.reply.redirect_uri.as_str())
    }

    pub fn has(&self, part: &str) -> bool {
        self.response_type.split(' ').any(|p| p == part)
    }

    pub fn scope_string(&self) -> String {
        self.scope.join(" ")
    }

    pub fn openid(&self) -> bool {
        self.scope.iter().any(|s| s == "openid")
    }
}

/// An error before the redirect target is verified: shown as a page.
#[derive(Debug)]
pub struct Unverified(pub OAuthError);

/// Step 1: `client_id` names a registered client and `redirect_uri` is one of its registered
/// URIs, compared exactly (RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1 "MUST exactly match").
pub fn verify_redirect(form: &Form, client: &Client) -> Result<String, Unverified> {
    let redirect_uri = form
        .get_bounded("redirect_uri", web::limits::MAX_REDIRECT_URI_BYTES)
        .map_err(Unverified)?;
    match redirect_uri {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok(uri.to_owned()),
        Some(_) => Err(Unverified(OAuthError::invalid_request(
            "The redirect_uri is not registered for this client.",
        ))),
        // RFC 6749 §3.1.2.3 allows omitting it when exactly one is registered; OIDC Core
        // §3.1.2.1 makes it REQUIRED for OpenID requests.
        None if client.redirect_uris.len() == 1 && !has_openid(form) => {
            Ok(client.redirect_uris[0].clone())
        }
        None => Err(Unverified(OAuthError::invalid_request(
            "The redirect_uri parameter is missing.",
        ))),
    }
}

fn has_openid(form: &Form) -> bool {
    form.get("scope")
        .is_some_and(|s| s.split(' ').any(|t| t == "openid"))
}

/// Where errors go once the redirect target is verified: the requested response mode when it
/// is valid, else the response type's default.
pub fn reply_to(form: &Form, client: &Client, redirect_uri: String) -> ReplyTo {
    let response_type = form
        .get("response_type")
        .and_then(client::normalize_response_type)
        .unwrap_or_else(|| "code".to_owned());
    let response_mode = form
        .get("response_mode")
        .and_then(ResponseMode::parse)
        .unwrap_or_else(|| ResponseMode::default_for(&response_type));
    ReplyTo {
        client_id: client.client_id.clone(),
        redirect_uri,
        response_mode,
        // An over-long state is refused in `validate`; the error goes back without it.
        state: form
            .get("state")
            .filter(|s| s.len() <= web::limits::MAX_STATE_BYTES)
            .map(str::to_owned),
    }
}

/// Step 2: every other parameter. Errors here are redirected to the client.
pub fn validate(
    form: &Form,
    client: &Client,
    reply: ReplyTo,
) -> Result<AuthorizeRequest, OAuthError> {
    // OIDC Core §6: request objects are optional; say so with the spec's codes.
    if form.contains("request") {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "Request objects are not supported.",
        ));
    }
    if form.contains("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "The request_uri parameter is not supported.",
        ));
    }
    let raw_type = form
        .get("response_type")
        .ok_or_else(|| OAuthError::invalid_request("The response_type parameter is missing."))?;
    let response_type = client::normalize_response_type(raw_type).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            format!(
                "The response_type '{}' is not supported.",
                web::printable(raw_type)
            ),
        )
    })?;
    if !client.response_types.contains(&response_type) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("The client is not registered for the response_type '{response_type}'."),
        ));
    }
    if let Some(mode) = form.get("response_mode") {
        let parsed = ResponseMode::parse(mode).ok_or_else(|| {
            OAuthError::invalid_request(format!(
                "The response_mode '{}' is not supported.",
                web::printable(mode)
            ))
        })?;
        // Multiple Response Types §5: query "MUST NOT be used" when tokens are returned.
        if parsed == ResponseMode::Query && response_type != "code" {
            return Err(OAuthError::invalid_request(
                "The query response_mode cannot carry tokens.",
            ));
        }
    }

    // Bounded before anything else looks at the tokens (issue 9: 16,000 tokens once cost
    // 0.3 s of quadratic de-duplication before the client's scope was consulted).
    let requested = client::scope_tokens(form.get("scope").unwrap_or(""))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.description()))?;
    let allowed: HashSet<&str> = client.scope.split(' ').collect();
    if let Some(s) = requested.iter().find(|s| !allowed.contains(s.as_str())) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "The client is not allowed to request the scope '{}'.",
                web::printable(s)
            ),
        ));
    }
    let openid = requested.iter().any(|s| s == "openid");
    if response_type.contains("id_token") && !openid {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "The id_token response type requires the openid scope.",
        ));
    }
    // Opaque values we carry and echo: bounded so a sealed request stays within a query
    // string (web::limits::MAX_QUERY_BYTES).
    form.get_bounded("state", web::limits::MAX_STATE_BYTES)?;
    form.get_bounded("id_token_hint", web::limits::MAX_JWT_BYTES)?;
    let nonce = form.get("nonce").map(str::to_owned);
    // OIDC Core §3.2.2.1 / §3.3.2.11: REQUIRED when an ID token comes from this endpoint.
    if response_type.contains("id_token") && nonce.is_none() {
        return Err(OAuthError::invalid_request(
            "The nonce parameter is required for this response_type.",
        ));
    }
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(OAuthError::invalid_request("The nonce is too long."));
    }

    // RFC 7636 §4.3. `plain` is refused: it protects nothing against a leaked request.
    let code_challenge = match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method was sent without code_challenge.",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(OAuthError::invalid_request(
                "Only the S256 code_challenge_method is supported.",
            ));
        }
        // RFC 7636 §4.3: a missing method means `plain`.
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method is required and must be S256.",
            ));
        }
        (Some(c), Some(_)) => {
            // base64url of a SHA-256 digest: 43 characters.
            if c.len() != 43
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(OAuthError::invalid_request(
                    "The code_challenge is not a base64url SHA-256 digest.",
                ));
            }
            Some(c.to_owned())
        }
    };
    // RFC 9700 §2.1.1: public clients MUST use PKCE.
    if response_type.contains("code")
        && client.token_endpoint_auth_method == AuthMethod::None
        && code_challenge.is_none()
    {
        return Err(OAuthError::invalid_request(
            "This client must use PKCE (code_challenge with S256).",
        ));
    }

    let mut prompt = Prompt::default();
    for p in form
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
    {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "The prompt value '{}' is not supported.",
                    web::printable(other)
                )));
            }
        }
    }
    // OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error is
    // returned."
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values.",
        ));
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer.")
        })?),
    };
    let login_hint = form
        .get("login_hint")
        .filter(|h| h.len() <= 254)
        .map(str::to_owned);
    // `display`, `ui_locales`, `claims_locales`, `acr_values` are accepted and have no effect
    // on the outcome (OIDC Core §3.1.2.1 makes them hints); unknown parameters are ignored
    // (RFC 6749 §3.1).
    Ok(AuthorizeRequest {
        reply,
        response_type,
        scope: requested,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        hint_sub: None,
        redirect_uri_sent: form.contains("redirect_uri"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::limits;

    #[test]
    fn issue9_scope_is_capped_before_it_is_deduplicated() {
        let tokens: Vec<String> = (0..16_000).map(|i| format!("s{i}")).collect();
        let err = client::scope_tokens(&tokens.join(" ")).unwrap_err();
        assert_eq!(err, client::ScopeError::TooMany(limits::MAX_SCOPE_TOKENS));
        // Repeats count against the cap too: it bounds the work, not the result.
        let repeated = vec!["openid"; limits::MAX_SCOPE_TOKENS + 1].join(" ");
        assert!(client::scope_tokens(&repeated).is_err());
        let long = "x".repeat(limits::MAX_SCOPE_TOKEN_BYTES + 1);
        assert_eq!(
            client::scope_tokens(&long),
            Err(client::ScopeError::TooLong)
        );
        let ok = client::scope_tokens("openid email openid profile").unwrap();
        assert_eq!(ok, ["openid", "email", "profile"]);
    }

    /// De-duplication is linear: 200,000 distinct tokens (the old nested loop needed 2·10^10
    /// comparisons for them, minutes of CPU) pass in well under the bound even unoptimized.
    #[test]
    fn issue9_scope_deduplication_is_linear() {
        let tokens: Vec<String> = (0..200_000).map(|i| format!("s{i}")).collect();
        let joined = tokens.join(" ");
        let start = std::time::Instant::now();
        let out = client::scope_tokens_within(&joined, usize::MAX).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(out.len(), 200_000);
        assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    }

    #[test]
    fn issue9_overlong_redirect_uri_is_refused_before_comparison() {
        let client: Client = serde_json::from_value(serde_json::json!({
            "client_id": "rp", "client_name": "", "grant_types": ["authorization_code"],
            "response_types": ["code"], "redirect_uris": ["https://rp.example/cb"],
            "post_logout_redirect_uris": [], "scope": "openid", "audience": [],
            "token_endpoint_auth_method": "client_secret_basic", "skip_consent": false,
            "id_token_signed_response_alg": "RS256", "owner": "", "metadata": {},
            "created_at": 0, "updated_at": 0
        }))
        .unwrap();
        let long = format!(
            "redirect_uri=https://rp.example/cb?{}",
            "a".repeat(limits::MAX_REDIRECT_URI_BYTES)
        );
        let Unverified(e) =
            verify_redirect(&Form::parse_bytes(long.as_bytes()).unwrap(), &client).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains("longer than 2048"), "{e:?}");
        let form = Form::parse_bytes(b"scope=openid").unwrap();
        assert!(
            verify_redirect(&form, &client).is_err(),
            "OIDC needs redirect_uri"
        );
        let form = Form::parse_bytes(b"scope=email").unwrap();
        assert_eq!(
            verify_redirect(&form, &client).unwrap(),
            "https://rp.example/cb"
        );
    }
}
