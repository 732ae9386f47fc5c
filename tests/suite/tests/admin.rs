//! The admin API, black-box.

use edgeid_suite::serde_json::json;
use edgeid_suite::{admin, basic, request, token, unique};

#[test]
fn admin_requires_the_bearer_token() {
    assert_eq!(request("GET", "/admin/clients", &[], None).status, 401);
    let resp = request(
        "GET",
        "/admin/clients",
        &[("authorization", "Bearer wrong")],
        None,
    );
    assert_eq!(resp.status, 401);
    assert!(
        resp.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    assert_eq!(
        request(
            "GET",
            "/admin/keys",
            &[("authorization", "Basic YTpi")],
            None
        )
        .status,
        401
    );
}

#[test]
fn client_lifecycle_create_get_update_list_delete() {
    let id = unique("life");
    let resp = admin(
        "POST",
        "/clients",
        Some(json!({
            "client_id": id,
            "client_name": "Grafana",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://grafana.example/login/generic_oauth"],
            "scope": "openid profile email",
            "skip_consent": true,
        })),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let created = resp.json();
    let secret = created["client_secret"]
        .as_str()
        .expect("a generated secret is returned once")
        .to_owned();
    assert!(secret.len() >= 32);
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");

    let got = admin("GET", &format!("/clients/{id}"), None);
    assert_eq!(got.status, 200);
    let got = got.json();
    assert!(
        got.get("client_secret").is_none(),
        "the secret is never shown again"
    );
    assert!(!got.to_string().contains(&secret));
    assert_eq!(
        got["redirect_uris"],
        json!(["https://grafana.example/login/generic_oauth"])
    );

    let resp = admin(
        "PUT",
        &format!("/clients/{id}"),
        Some(
            json!({"client_name": "Grafana 2", "grant_types": ["client_credentials"], "scope": "read"}),
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["client_name"], "Grafana 2");
    // The secret survived the update: the client can still authenticate.
    let t = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(t.status, 200, "{}", t.text());

    let mut found = false;
    let mut after = String::new();
    loop {
        let page = admin("GET", &format!("/clients?limit=50&after={after}"), None).json();
        found |= page["clients"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["client_id"] == id.as_str()));
        match page["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => break,
        }
    }
    assert!(found, "listed");

    assert_eq!(admin("DELETE", &format!("/clients/{id}"), None).status, 204);
    assert_eq!(admin("GET", &format!("/clients/{id}"), None).status, 404);
    assert_eq!(admin("DELETE", &format!("/clients/{id}"), None).status, 404);
    let t = token(Some(&basic(&id, &secret)), "grant_type=client_credentials");
    assert_eq!(t.status, 401, "a deleted client cannot authenticate");
}

#[test]
fn duplicate_client_is_409() {
    let body = json!({"client_id": unique("dup"), "grant_types": ["client_credentials"]});
    assert_eq!(admin("POST", "/clients", Some(body.clone())).status, 201);
    let resp = admin("POST", "/clients", Some(body));
    assert_eq!(resp.status, 409);
    assert_eq!(resp.json()["error"], "conflict");
}

#[test]
fn invalid_metadata_is_400_with_a_reason() {
    for body in [
        json!({"grant_types": ["password"]}),
        json!({"grant_types": ["authorization_code"]}),
        json!({"redirect_uris": ["http://not-loopback.example/cb"]}),
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        json!({"grant_types": ["client_credentials"], "client_secret": "short"}),
        json!({"client_id": "has space", "grant_types": ["client_credentials"]}),
    ] {
        let resp = admin("POST", "/clients", Some(body.clone()));
        assert_eq!(resp.status, 400, "{body}: {}", resp.text());
        let err = resp.json();
        assert_eq!(err["error"], "invalid_client_metadata", "{body}");
        assert!(
            err["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    let resp = admin("POST", "/clients", Some(json!({"unknown_field": 1})));
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "invalid_request");
}

#[test]
fn non_json_admin_body_is_415() {
    let auth = format!("Bearer {}", edgeid_suite::admin_token());
    let resp = request(
        "POST",
        "/admin/clients",
        &[("authorization", &auth), ("content-type", "text/plain")],
        Some(b"client_id=x"),
    );
    assert_eq!(resp.status, 415);
}

#[test]
fn keys_list_shows_public_information_only() {
    let resp = admin("GET", "/keys", None);
    assert_eq!(resp.status, 200);
    let keys = resp.json();
    let text = keys.to_string();
    assert!(!text.contains("private"), "{text}");
    let keys = keys["keys"].as_array().expect("keys");
    for alg in ["ES256", "RS256"] {
        assert!(
            keys.iter()
                .any(|k| k["alg"] == alg && k["state"] == "current")
        );
        assert!(keys.iter().any(|k| k["alg"] == alg && k["state"] == "next"));
    }
}
