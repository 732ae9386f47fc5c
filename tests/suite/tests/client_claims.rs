//! What a client registration may claim (issue 9, item 7), black-box: a client cannot take a
//! user's `sub` as its `client_id` (so its own tokens, whose `sub` is its id, never pass for
//! that user's), in any spelling of the UUID; an id that names nobody, UUID-shaped or not, is
//! fine; audiences must be absolute URIs; a client's own token is refused by userinfo.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use edgeid_suite::oidc::{Browser, code_flow, create_oidc_client, create_user, unverified_claims};
use edgeid_suite::serde_json::{Value, json};
use edgeid_suite::{admin, basic, token, unique};

fn machine(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_secret": format!("{}-secret", unique("s")),
        "grant_types": ["client_credentials"],
        "scope": "openid read",
    })
}

#[test]
fn issue9_a_client_id_equal_to_a_user_id_is_refused() {
    let user = create_user(json!({}));
    for id in [
        user.id.clone(),
        user.id.to_ascii_uppercase(),
        format!("urn:uuid:{}", user.id),
        user.id.replace('-', ""),
    ] {
        let resp = admin("POST", "/clients", Some(machine(&id)));
        assert_eq!(resp.status, 400, "{id}: {}", resp.text());
        assert_eq!(resp.json()["error"], "invalid_client_metadata", "{id}");
        assert_eq!(
            admin("GET", &format!("/clients/{id}"), None).status,
            404,
            "{id} was not registered"
        );
    }
    // A UUID-shaped id that is nobody's sub stays allowed (imported Hydra clients keep theirs).
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let uuid = format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    );
    let resp = admin("POST", "/clients", Some(machine(&uuid)));
    assert_eq!(resp.status, 201, "{}", resp.text());
}

#[test]
fn issue9_a_relative_audience_is_refused() {
    for bad in [
        "api",
        "/api/v1",
        "//api.example.org/v1",
        "https://api.example.org/#f",
    ] {
        let mut body = machine(&unique("aud"));
        body["audience"] = json!([bad]);
        let resp = admin("POST", "/clients", Some(body));
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text());
        assert_eq!(resp.json()["error"], "invalid_client_metadata");
    }
    let id = unique("aud");
    let mut body = machine(&id);
    body["audience"] = json!(["https://api.example.org/v1"]);
    let resp = admin("POST", "/clients", Some(body.clone()));
    assert_eq!(resp.status, 201, "{}", resp.text());
    body["audience"] = json!(["relative"]);
    body.as_object_mut().unwrap().remove("client_id");
    let resp = admin("PUT", &format!("/clients/{id}"), Some(body));
    assert_eq!(
        resp.status,
        400,
        "an update is held to the rule: {}",
        resp.text()
    );
}

#[test]
fn issue9_a_clients_own_token_never_passes_for_a_users() {
    let id = unique("machine");
    let body = machine(&id);
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(admin("POST", "/clients", Some(body)).status, 201);
    let resp = token(
        Some(&basic(&id, &secret)),
        "grant_type=client_credentials&scope=openid%20read",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let at = resp.json()["access_token"].as_str().unwrap().to_owned();
    let claims = unverified_claims(&at);
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    let info = edgeid_suite::oidc::userinfo_get(&at);
    assert!(
        info.status == 401 || info.status == 403,
        "userinfo refuses a token without a user: {} {}",
        info.status,
        info.text()
    );

    // A user's token through a client: sub is the user, never the client.
    let user = create_user(json!({}));
    let client = create_oidc_client(json!({}));
    let flow = code_flow(&Browser::new(), &client, &user, "openid");
    let claims = unverified_claims(flow.access_token());
    assert_eq!(claims["sub"], user.id.as_str());
    assert_ne!(claims["sub"], claims["client_id"]);
}
