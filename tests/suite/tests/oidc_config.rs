//! The OpenID Foundation's config certification plan (oidcc-discovery-endpoint-verification):
//! the provider metadata advertises what exists, and every advertised endpoint answers.

use edgeid_suite::serde_json::Value;
use edgeid_suite::{base, get, request};

fn doc() -> Value {
    let resp = get("/.well-known/openid-configuration");
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()
}

fn strings(doc: &Value, field: &str) -> Vec<String> {
    doc[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is an array: {doc}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{field} holds strings"))
                .to_owned()
        })
        .collect()
}

fn path_of(doc: &Value, field: &str) -> String {
    let url = doc[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is advertised: {doc}"));
    let path = url
        .strip_prefix(&base())
        .unwrap_or_else(|| panic!("{field} = {url} lives under the issuer"));
    assert!(path.starts_with('/'), "{field} = {url}");
    path.to_owned()
}

/// Discovery 1.0 §3: the REQUIRED and RECOMMENDED members, and what issue 3 adds.
#[test]
fn discovery_advertises_the_openid_provider() {
    let d = doc();
    assert_eq!(d["issuer"], base().as_str());
    for (field, path) in [
        ("authorization_endpoint", "/oauth2/auth"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("end_session_endpoint", "/oauth2/sessions/logout"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(path_of(&d, field), path, "{field}");
    }

    let scopes = strings(&d, "scopes_supported");
    for s in ["openid", "profile", "email", "offline_access"] {
        assert!(
            scopes.iter().any(|x| x == s),
            "scopes_supported lacks {s}: {scopes:?}"
        );
    }

    let rt = strings(&d, "response_types_supported");
    for t in ["code", "id_token", "code id_token", "code id_token token"] {
        assert!(
            rt.iter().any(|x| x == t),
            "response_types_supported lacks {t}: {rt:?}"
        );
    }
    assert!(!rt.iter().any(|x| x == "none" || x.is_empty()), "{rt:?}");

    let modes = strings(&d, "response_modes_supported");
    for m in ["query", "fragment", "form_post"] {
        assert!(
            modes.iter().any(|x| x == m),
            "response_modes_supported lacks {m}"
        );
    }

    let grants = strings(&d, "grant_types_supported");
    for g in [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "implicit",
    ] {
        assert!(
            grants.iter().any(|x| x == g),
            "grant_types_supported lacks {g}: {grants:?}"
        );
    }

    let methods = strings(&d, "token_endpoint_auth_methods_supported");
    for m in ["client_secret_basic", "client_secret_post", "none"] {
        assert!(
            methods.iter().any(|x| x == m),
            "auth method {m} missing: {methods:?}"
        );
    }

    assert_eq!(
        strings(&d, "code_challenge_methods_supported"),
        vec!["S256".to_owned()],
        "RFC 8414 §2: S256 only, plain is refused"
    );
    assert!(strings(&d, "subject_types_supported").contains(&"public".to_owned()));
    let algs = strings(&d, "id_token_signing_alg_values_supported");
    assert!(algs.contains(&"RS256".to_owned()) && algs.contains(&"ES256".to_owned()));
    assert!(!algs.iter().any(|a| a == "none"));

    let claims = strings(&d, "claims_supported");
    for c in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "email",
        "email_verified",
    ] {
        assert!(claims.iter().any(|x| x == c), "claims_supported lacks {c}");
    }

    assert_eq!(
        d["authorization_response_iss_parameter_supported"], true,
        "RFC 9207 §3"
    );
    // Discovery 1.0 §3: request_uri_parameter_supported defaults to TRUE when omitted, so a
    // provider that refuses request_uri must say false; request_parameter_supported defaults
    // to false.
    assert_eq!(d["request_uri_parameter_supported"], false);
    assert!(matches!(
        d.get("request_parameter_supported"),
        None | Some(Value::Bool(false))
    ));
    // A claims parameter is not supported either way it is advertised.
    assert!(matches!(
        d.get("claims_parameter_supported"),
        None | Some(Value::Bool(false))
    ));
}

/// Every advertised endpoint exists (answers something other than 404/5xx) with the method the
/// spec gives it.
#[test]
fn every_advertised_endpoint_exists() {
    let d = doc();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let check = |field: &str, method: &str, want: &[u16]| {
        let path = path_of(&d, field);
        let resp = request(method, &path, &form, Some(b""));
        assert!(
            want.contains(&resp.status),
            "{method} {path} ({field}) answered {}: {}",
            resp.status,
            resp.text()
        );
    };
    check("authorization_endpoint", "GET", &[400]);
    check("token_endpoint", "POST", &[400, 401]);
    check("userinfo_endpoint", "GET", &[401]);
    check("jwks_uri", "GET", &[200]);
    check("end_session_endpoint", "GET", &[200, 400]);
    check("revocation_endpoint", "POST", &[400, 401]);
    check("introspection_endpoint", "POST", &[400, 401]);
}

/// The JWKS holds a key for every advertised ID-token algorithm.
#[test]
fn jwks_covers_every_advertised_id_token_algorithm() {
    let d = doc();
    let set = get("/.well-known/jwks.json").json();
    let keys = set["keys"].as_array().cloned().unwrap_or_default();
    for alg in strings(&d, "id_token_signing_alg_values_supported") {
        assert!(
            keys.iter().any(|k| k["alg"] == alg.as_str()),
            "no published key for {alg}"
        );
    }
}
