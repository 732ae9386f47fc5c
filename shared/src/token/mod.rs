//! The token function: the token endpoint (RFC 6749 §3.2, `POST /oauth2/token`) with the
//! authorization code (§4.1.3), refresh token (§6) and client credentials (§4.4) grants,
//! revocation (RFC 7009, `/oauth2/revoke`) and introspection (RFC 7662,
//! `/oauth2/introspect`). Access tokens are JWTs per RFC 9068.

mod authorization_code;
mod introspection;
mod refresh;
mod revocation;

use std::collections::HashSet;

use http::{Method, StatusCode, header};
use serde::Serialize;

use crate::client::{self, Client, GrantType};
use crate::config::Settings;
use crate::error::{ErrorCode, OAuthError};
use crate::jose::{self, Alg};
use crate::ports::Sql as _;
use crate::ports::UnixTime;
use crate::web::{self, Form, limits};
use crate::{Ports, Request, Response, grant, issue, keys, user};

/// A token request, parsed once: each grant's parameters exist only on its variant.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3, RFC 7636 §4.5.
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    /// RFC 6749 §4.4.2.
    ClientCredentials {
        scope: Option<String>,
        /// Hydra's `audience` parameter: space-delimited audiences the client is allowed.
        audience: Option<String>,
    },
}

impl TokenRequest {
    /// RFC 6749 §5.2: a missing `grant_type` is `invalid_request`, an unknown one
    /// `unsupported_grant_type`.
    pub fn parse(form: &mut Form) -> Result<TokenRequest, OAuthError> {
        let grant_type = form
            .take("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("The grant_type parameter is missing."))?;
        // Every value is bounded here, before any lookup or comparison uses it (issue 9).
        let optional = |form: &mut Form, name: &str, max: usize| {
            form.get_bounded(name, max)?;
            Ok::<_, OAuthError>(form.take(name))
        };
        let required = |form: &mut Form, name: &str, max: usize| {
            optional(form, name, max)?.ok_or_else(|| {
                OAuthError::invalid_request(format!("The {name} parameter is missing."))
            })
        };
        let scope = |form: &mut Form| {
            let scope = optional(form, "scope", limits::MAX_VALUE_BYTES)?;
            if let Some(s) = &scope {
                client::scope_tokens(s)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.description()))?;
            }
            Ok::<_, OAuthError>(scope)
        };
        match grant_type.as_str() {
            "authorization_code" => Ok(TokenRequest::AuthorizationCode {
                code: required(form, "code", limits::MAX_TOKEN_BYTES)?,
                redirect_uri: optional(form, "redirect_uri", limits::MAX_REDIRECT_URI_BYTES)?,
                code_verifier: optional(form, "code_verifier", limits::MAX_TOKEN_BYTES)?,
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: required(form, "refresh_token", limits::MAX_TOKEN_BYTES)?,
                scope: scope(form)?,
            }),
            "client_credentials" => Ok(TokenRequest::ClientCredentials {
                scope: scope(form)?,
                audience: optional(form, "audience", limits::MAX_VALUE_BYTES)?,
            }),
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "The grant_type '{}' is not supported.",
                    web::printable(other)
                ),
            )),
        }
    }

    fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// RFC 9068 §2.2 access-token claims.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: Vec<String>,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: String,
    pub client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub scope: &'a str,
    /// The grant this token descends from: revoking the grant revokes the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<&'a str>,
}

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if !matches!(
        path.as_str(),
        "/oauth2/token" | "/oauth2/revoke" | "/oauth2/introspect"
    ) {
        return web::not_found();
    }
    if let Some(resp) = web::wrong_method(&req, &[Method::POST], "POST") {
        return resp;
    }
    if path == "/oauth2/revoke" {
        return revocation::handle(ports, &req).await;
    }
    if path == "/oauth2/introspect" {
        return introspection::handle(ports, &req).await;
    }
    match token(ports, &req).await {
        Ok(body) => {
            let mut resp = web::json(StatusCode::OK, &body);
            let headers = resp.headers_mut();
            // RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma: no-cache".
            headers.insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            headers.insert(header::PRAGMA, http::HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => e.into_json_response(),
    }
}

/// Parses the form and authenticates the client (RFC 6749 §2.3, §3.2.1): shared by the
/// token, revocation and introspection endpoints.
pub(crate) async fn authenticated_form<P: Ports>(
    ports: &P,
    req: &Request,
) -> Result<(Form, Client), OAuthError> {
    let mut form = Form::parse(req)?;
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| OAuthError::invalid_request("Malformed Authorization header."))
        })
        .transpose()?;
    if authorization.is_some_and(|a| a.len() > limits::MAX_BASIC_BYTES) {
        return Err(OAuthError::invalid_request(
            "The Authorization header is too long.",
        ));
    }
    let presented = client::presented(authorization, &mut form)?;
    let client = client::authenticate(ports, &presented).await?;
    Ok((form, client))
}

async fn token<P: Ports>(ports: &P, req: &Request) -> Result<TokenResponse, OAuthError> {
    let (mut form, client) = authenticated_form(ports, req).await?;
    let request = TokenRequest::parse(&mut form)?;
    let settings = Settings::load(ports)?;
    let now = ports.now();
    if !client.grant_types.contains(&request.grant_type()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!(
                "The client is not allowed to use the grant_type '{}'.",
                request.grant_type().as_str()
            ),
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            authorization_code::exchange(
                ports,
                &settings,
                now,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            refresh::exchange(
                ports,
                &settings,
                now,
                &client,
                &refresh_token,
                scope.as_deref(),
            )
            .await
        }
        TokenRequest::ClientCredentials { scope, audience } => {
            let grant = decide_client_credentials(&client, scope.as_deref(), audience.as_deref())?;
            issue_access_token(
                ports,
                &settings,
                now,
                &client,
                &client.client_id,
                grant,
                None,
            )
            .await
        }
    }
}

/// What a client-credentials request is granted.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    pub scope: Vec<String>,
    pub audience: Vec<String>,
}

/// RFC 6749 §4.4.2, §3.3: the requested scope must lie within the client's registered scope
/// (`invalid_scope` otherwise); without `scope` nothing is granted (the replaced server's
/// behaviour, so migrated clients see the same tokens). Audiences must be registered; without
/// `audience` the token carries every registered audience, or the client itself when none is.
pub fn decide_client_credentials(
    client: &Client,
    scope: Option<&str>,
    audience: Option<&str>,
) -> Result<Grant, OAuthError> {
    let allowed: HashSet<&str> = client.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let requested = client::scope_tokens(scope.unwrap_or(""))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.description()))?;
    if let Some(s) = requested.iter().find(|s| !allowed.contains(s.as_str())) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "The client is not allowed to request the scope '{}'.",
                web::printable(s)
            ),
        ));
    }
    let audience = match audience {
        None => {
            if client.audience.is_empty() {
                vec![client.client_id.clone()]
            } else {
                client.audience.clone()
            }
        }
        Some(a) => {
            let registered: HashSet<&str> = client.audience.iter().map(String::as_str).collect();
            let mut seen = HashSet::new();
            let mut out: Vec<String> = Vec::new();
            for (i, aud) in a.split(' ').filter(|s| !s.is_empty()).enumerate() {
                if i >= limits::MAX_SCOPE_TOKENS {
                    return Err(OAuthError::invalid_request(format!(
                        "The audience parameter has more than {} values.",
                        limits::MAX_SCOPE_TOKENS
                    )));
                }
                if !registered.contains(aud) {
                    return Err(OAuthError::invalid_request(format!(
                        "The audience '{}' is not registered for this client.",
                        web::printable(aud)
                    )));
                }
                if seen.insert(aud) {
                    out.push(aud.to_owned());
                }
            }
            out
        }
    };
    Ok(Grant {
        scope: requested,
        audience,
    })
}

/// What a code redemption or a refresh hands to [`issue_for_grant`].
pub(crate) struct ForGrant<'a> {
    pub grant_id: &'a str,
    /// The scope of this response; `None` for the grant's whole scope.
    pub scope: Option<&'a [&'a str]>,
    pub nonce: Option<&'a str>,
    pub auth_time: UnixTime,
    pub amr: &'a [String],
    /// A refresh token is being rotated (always replaced); a code redemption issues the first
    /// refresh token only when `offline_access` was granted.
    pub rotating: bool,
}

/// The tokens of a user's grant (RFC 6749 §5.1, OIDC Core §3.1.3.3, §12.2): an access token, a
/// rotated or first refresh token, and an ID token when `openid` is in scope.
///
/// The grant's revocation is deliberately not re-checked: winning the conditional UPDATE that
/// used the code or refresh token is the decision. A concurrent replay may revoke the grant a
/// moment later, and then revokes what this call issues too (the family goes as a whole).
pub(crate) async fn issue_for_grant<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    f: ForGrant<'_>,
) -> Result<TokenResponse, OAuthError> {
    let invalid = |d: &'static str| OAuthError::new(ErrorCode::InvalidGrant, d);
    let (g, _revoked) = grant::load_grant(ports.sql(), f.grant_id)
        .await?
        .ok_or_else(|| invalid("The grant is invalid."))?;
    let user = user::load(ports.sql(), &g.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid("The user of this authorization is no longer active."))?;
    let family: Vec<&str> = g.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let scope = f.scope.unwrap_or(&family);
    let mut resp =
        issue::access_token(ports, settings, now, client, &user.id, scope, &g.id).await?;
    let refresh = client.grant_types.contains(&GrantType::RefreshToken)
        && (f.rotating || family.iter().any(|s| issue::is_offline(s)));
    if refresh {
        let record = grant::Refresh {
            grant_id: g.id.clone(),
            client_id: client.client_id.clone(),
            scope: g.scope.clone(),
            auth_time: f.auth_time,
            amr: f.amr.to_vec(),
        };
        let (token, stmt) = grant::new_refresh(ports, &record, now, settings.refresh_token_ttl)?;
        ports.sql().query(stmt).await?;
        resp.refresh_token = Some(token);
    }
    if scope.contains(&"openid") {
        let parts = issue::IdTokenParts {
            nonce: f.nonce,
            auth_time: f.auth_time,
            amr: f.amr,
            sid: &g.sid,
            access_token: Some(&resp.access_token),
            code: None,
        };
        resp.id_token =
            Some(issue::id_token(ports, settings, now, client, &user, scope, parts).await?);
    }
    Ok(resp)
}

/// Signs an RFC 9068 access token (`typ: at+jwt`, ES256) with the current key.
pub async fn issue_access_token<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    client: &Client,
    sub: &str,
    grant: Grant,
    gid: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let key = keys::current(ports, now, Alg::ES256).await?;
    let scope = grant.scope.join(" ");
    let claims = AccessTokenClaims {
        iss: settings.issuer.as_str(),
        sub,
        aud: grant.audience,
        exp: now + settings.access_token_ttl,
        iat: now,
        jti: crate::crypto::random_token(ports, 18)?,
        client_id: &client.client_id,
        scope: &scope,
        gid,
    };
    let access_token = jose::sign_jwt(ports, &key, "at+jwt", &claims).await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: settings.access_token_ttl,
        scope,
        refresh_token: None,
        id_token: None,
    })
}
