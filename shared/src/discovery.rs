//! OpenID Provider metadata (OIDC Discovery 1.0 §3, §4) and the public JWKS (RFC 7517 §5).

use http::{HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::config::Settings;
use crate::{Ports, Request, Response, keys, web};

/// The provider metadata. Every REQUIRED member of Discovery 1.0 §3 is present; optional
/// members advertise only what this release implements.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    pub display_values_supported: Vec<&'static str>,
    pub claim_types_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub require_request_uri_registration: bool,
    /// RFC 9207 §3.
    pub authorization_response_iss_parameter_supported: bool,
    pub frontchannel_logout_supported: bool,
    pub backchannel_logout_supported: bool,
}

impl ProviderMetadata {
    pub fn new(settings: &Settings) -> ProviderMetadata {
        let issuer = &settings.issuer;
        ProviderMetadata {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.endpoint("/oauth2/auth"),
            token_endpoint: issuer.endpoint("/oauth2/token"),
            jwks_uri: issuer.endpoint("/.well-known/jwks.json"),
            response_types_supported: vec![
                "code",
                "id_token",
                "id_token token",
                "code id_token",
                "code token",
                "code id_token token",
            ],
            subject_types_supported: vec!["public"],
            // RS256 first: OIDC Core §15.1 requires it and many relying parties assume it.
            id_token_signing_alg_values_supported: vec!["RS256", "ES256"],
            grant_types_supported: vec![
                "authorization_code",
                "implicit",
                "refresh_token",
                "client_credentials",
            ],
            token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            userinfo_endpoint: issuer.endpoint("/userinfo"),
            end_session_endpoint: issuer.endpoint("/oauth2/sessions/logout"),
            revocation_endpoint: issuer.endpoint("/oauth2/revoke"),
            introspection_endpoint: issuer.endpoint("/oauth2/introspect"),
            revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            introspection_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            response_modes_supported: vec!["query", "fragment", "form_post"],
            scopes_supported: crate::issue::SUPPORTED_SCOPES.to_vec(),
            claims_supported: vec![
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "azp",
                "at_hash",
                "c_hash",
                "amr",
                "sid",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "updated_at",
                "email",
                "email_verified",
                "stackspin_roles",
                "groups",
            ],
            // RFC 7636 §4.2: `plain` is deliberately not offered.
            code_challenge_methods_supported: vec!["S256"],
            prompt_values_supported: vec!["none", "login", "consent", "select_account"],
            display_values_supported: vec!["page", "popup", "touch", "wap"],
            claim_types_supported: vec!["normal"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            require_request_uri_registration: false,
            authorization_response_iss_parameter_supported: true,
            frontchannel_logout_supported: false,
            backchannel_logout_supported: false,
        }
    }
}

const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// `GET /.well-known/openid-configuration` and `GET /.well-known/jwks.json`.
pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    if let Some(resp) = web::wrong_method(&req, &[Method::GET, Method::HEAD], "GET, HEAD") {
        return resp;
    }
    let resp = match req.uri().path() {
        "/.well-known/openid-configuration" => match Settings::load(ports) {
            Ok(settings) => {
                let resp = web::json(StatusCode::OK, &ProviderMetadata::new(&settings));
                web::with_header(resp, header::CACHE_CONTROL, "public, max-age=3600")
            }
            Err(e) => e.into_json_response(),
        },
        "/.well-known/jwks.json" => match keys::jwks_json(ports, ports.now()).await {
            Ok(body) => {
                let mut resp = Response::new(body);
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/jwk-set+json"),
                );
                web::with_header(resp, header::CACHE_CONTROL, "public, max-age=300")
            }
            Err(e) => e.into_json_response(),
        },
        _ => return web::not_found(),
    };
    // Browser-based relying parties fetch both documents cross-origin.
    let mut resp = web::with_header(resp, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    if req.method() == Method::HEAD {
        resp.body_mut().clear();
    }
    resp
}
