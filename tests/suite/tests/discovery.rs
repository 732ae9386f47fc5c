//! OpenID Connect Discovery 1.0 and the JWKS (RFC 7517), black-box.

use edgeid_suite::{base, get, jwks};

/// Discovery 1.0 §3: every REQUIRED member is present; §4.3: `issuer` is exactly the URL the
/// document was fetched under; endpoints are absolute URLs under the issuer.
#[test]
fn discovery_document_has_required_fields_and_exact_issuer() {
    let resp = get("/.well-known/openid-configuration");
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap_or("")
            .starts_with("application/json")
    );
    let doc = resp.json();
    assert_eq!(doc["issuer"], base().as_str());
    for field in [
        "issuer",
        "authorization_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "token_endpoint",
    ] {
        assert!(!doc[field].is_null(), "missing {field}");
    }
    for endpoint in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        let url = doc[endpoint].as_str().expect("a string");
        assert!(
            url.starts_with(&format!("{}/", base())),
            "{endpoint} = {url} is absolute under the issuer"
        );
    }
    let algs: Vec<&str> = doc["id_token_signing_alg_values_supported"]
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        algs.contains(&"RS256"),
        "RS256 must be listed (OIDC Core §15.1)"
    );
    // What else is advertised grows with the flows: oidc_config.rs checks it in full.
    for (field, value) in [
        ("grant_types_supported", "client_credentials"),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_basic",
        ),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_post",
        ),
    ] {
        assert!(
            doc[field]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == value)),
            "{field} lacks {value}"
        );
    }
}

#[test]
fn jwks_uri_from_discovery_serves_the_key_set() {
    let doc = get("/.well-known/openid-configuration").json();
    let path = doc["jwks_uri"]
        .as_str()
        .expect("jwks_uri")
        .trim_start_matches(&base())
        .to_owned();
    let resp = get(&path);
    assert_eq!(resp.status, 200);
    assert!(
        resp.json()["keys"]
            .as_array()
            .is_some_and(|k| !k.is_empty())
    );
}

/// RFC 7517 §4-§5: public members only, each key with `kid`, `use` and `alg`; both ES256 and
/// RS256 keys are published.
#[test]
fn jwks_publishes_public_keys_only() {
    let resp = get("/.well-known/jwks.json");
    assert_eq!(resp.status, 200);
    let set = resp.json();
    let keys = set["keys"].as_array().expect("keys array");
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published: {key}"
            );
        }
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        assert_eq!(key["use"], "sig");
        assert!(
            matches!(key["alg"].as_str(), Some("ES256" | "RS256")),
            "{key}"
        );
    }
    for alg in ["ES256", "RS256"] {
        assert!(
            keys.iter().any(|k| k["alg"] == alg),
            "no {alg} key published"
        );
    }
    // And the set parses as a JWK Set in a real JOSE library.
    assert!(!jwks().keys.is_empty());
}

#[test]
fn discovery_rejects_other_methods() {
    let resp = edgeid_suite::request("POST", "/.well-known/openid-configuration", &[], Some(b""));
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
}

#[test]
fn unknown_paths_are_404() {
    for path in ["/nope", "/.well-known/nope", "/oauth2/nope", "/admin/nope"] {
        let resp = get(path);
        assert_eq!(resp.status, 404, "{path}");
    }
}
