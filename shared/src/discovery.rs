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
}

impl ProviderMetadata {
    pub fn new(settings: &Settings) -> ProviderMetadata {
        let issuer = &settings.issuer;
        ProviderMetadata {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.endpoint("/oauth2/auth"),
            token_endpoint: issuer.endpoint("/oauth2/token"),
            jwks_uri: issuer.endpoint("/.well-known/jwks.json"),
            response_types_supported: vec!["code"],
            subject_types_supported: vec!["public"],
            // RS256 first: OIDC Core §15.1 requires it and many relying parties assume it.
            id_token_signing_alg_values_supported: vec!["RS256", "ES256"],
            grant_types_supported: vec!["client_credentials"],
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
            ],
        }
    }
}

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
