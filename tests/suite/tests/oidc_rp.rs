//! A real relying-party library, the `openidconnect` crate, against the provider: discovery
//! from BASE_URL alone, the code flow with PKCE, ID-token validation, userinfo and refresh.

use edgeid_suite::serde_json::json;
use edgeid_suite::{Browser, OidcClient, base, create_oidc_client, create_user, drive};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EmptyAdditionalClaims,
    HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};

/// The library's synchronous HTTP client: ureq 3, redirects off (discovery and token calls
/// must not be redirected).
fn http(req: HttpRequest) -> Result<HttpResponse, ureq::Error> {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    let agent = AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into()
    });
    let mut resp = agent.run(req)?;
    let mut out = HttpResponse::new(resp.body_mut().read_to_vec()?);
    *out.status_mut() = resp.status();
    *out.headers_mut() = resp.headers().clone();
    Ok(out)
}

fn discover() -> CoreProviderMetadata {
    let issuer = IssuerUrl::new(base()).expect("BASE_URL is a URL");
    CoreProviderMetadata::discover(&issuer, &http)
        .unwrap_or_else(|e| panic!("discovery with openidconnect: {e:?}"))
}

/// Drives the browser from the library's authorization URL to the callback and returns the
/// code, after checking the state the library generated.
fn authorize(url: &url::Url, csrf: &CsrfToken, registered: &OidcClient) -> AuthorizationCode {
    let user = create_user(json!({}));
    let browser = Browser::new();
    let first = browser.get(url.as_str());
    let flow = drive(&browser, first, Some(&user), "allow");
    let cb = flow.callback;
    assert!(cb.param("error").is_none(), "{cb:?}");
    assert_eq!(cb.target(), registered.redirect_uri);
    assert_eq!(cb.param("state"), Some(csrf.secret().as_str()));
    assert_eq!(cb.param("iss"), Some(base().as_str()));
    AuthorizationCode::new(cb.require("code").to_owned())
}

#[test]
fn openidconnect_crate_code_flow_pkce_userinfo_refresh() {
    let registered = create_oidc_client(json!({}));
    let metadata = discover();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.id.clone()),
        Some(ClientSecret::new(registered.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).expect("a URL"));

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let code = authorize(&url, &csrf, &registered);

    let tokens = client
        .exchange_code(code)
        .expect("the token endpoint is discovered")
        .set_pkce_verifier(verifier)
        .request(&http)
        .unwrap_or_else(|e| panic!("token request: {e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .unwrap_or_else(|e| panic!("the library validates the ID token: {e:?}"));
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().expect("alg"),
            id_token.signing_key(&id_verifier).expect("key"),
        )
        .expect("hash");
        assert_eq!(&actual, expected, "at_hash");
    }
    assert!(claims.auth_time().is_some());

    let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = client
        .user_info(
            tokens.access_token().to_owned(),
            Some(claims.subject().clone()),
        )
        .expect("the userinfo endpoint is discovered")
        .request(&http)
        .unwrap_or_else(|e| panic!("userinfo: {e:?}"));
    assert_eq!(info.subject(), claims.subject());
    assert!(info.email().is_some(), "email scope granted");
    assert!(info.name().is_some(), "profile scope granted");

    let refresh = tokens
        .refresh_token()
        .expect("offline_access: a refresh token");
    let refreshed = client
        .exchange_refresh_token(refresh)
        .expect("the token endpoint is discovered")
        .request(&http)
        .unwrap_or_else(|e| panic!("refresh: {e:?}"));
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rotated.secret(), refresh.secret());
    // The old one is spent: the library sees an OAuth error.
    assert!(
        client
            .exchange_refresh_token(refresh)
            .expect("endpoint")
            .request(&http)
            .is_err()
    );
}

/// A public client (no secret, PKCE) whose ID tokens are ES256.
#[test]
fn openidconnect_crate_public_client_with_es256_id_tokens() {
    let registered = create_oidc_client(json!({
        "token_endpoint_auth_method": "none",
        "id_token_signed_response_alg": "ES256",
    }));
    let client =
        CoreClient::from_provider_metadata(discover(), ClientId::new(registered.id.clone()), None)
            .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).expect("a URL"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let code = authorize(&url, &csrf, &registered);
    let tokens = client
        .exchange_code(code)
        .expect("endpoint")
        .set_pkce_verifier(verifier)
        .request(&http)
        .unwrap_or_else(|e| panic!("token request: {e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .unwrap_or_else(|e| panic!("the library validates the ES256 ID token: {e:?}"));
    assert_eq!(claims.audiences().len(), 1);
    // An RS256-only verifier refuses it: the alg really is ES256.
    let rs256_only = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    assert!(id_token.claims(&rs256_only, &nonce).is_err());
}
