//! What a client registration may claim (issue 9, item 7), in memory: a `client_id` never
//! names a user (in any spelling of the user's UUID), a user is never created under a
//! client's id, UUID-shaped client ids that name nobody stay allowed (imported Hydra clients
//! keep theirs), audiences are absolute URIs, and a client's own (client-credentials) token is
//! told apart from a user's: `sub == client_id`, no grant, refused by userinfo.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

fn machine(client_id: &str) -> Value {
    json!({
        "client_id": client_id, "client_secret": "machine-secret-1",
        "grant_types": ["client_credentials"], "scope": "openid read",
    })
}

#[test]
fn issue9_a_client_id_equal_to_a_user_id_is_refused_in_every_spelling() {
    let (host, sub) = setup(json!({}));
    let bare = sub.replace('-', "");
    for id in [
        sub.clone(),
        sub.to_ascii_uppercase(),
        format!("urn:uuid:{sub}"),
        bare.clone(),
        bare.to_ascii_uppercase(),
    ] {
        let resp = admin(&host, "POST", "/admin/clients", machine(&id));
        assert_eq!(resp.status(), 400, "{id}: {}", text(&resp));
        let body = json_of(&resp);
        assert_eq!(body["error"], "invalid_client_metadata");
        assert!(
            body["error_description"].as_str().unwrap().contains("sub"),
            "{body}"
        );
        let get = admin(&host, "GET", &format!("/admin/clients/{id}"), json!({}));
        assert_eq!(get.status(), 404, "{id} was not stored");
    }
    // A UUID-shaped id that names nobody is fine: imported Hydra clients keep theirs.
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        machine("5b0d1c59-0d7e-4c4e-9d45-3f3b0a3c5e11"),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
}

#[test]
fn issue9_a_user_is_never_stored_under_a_clients_id() {
    let (host, _) = setup(json!({}));
    let client_id = "7f9c2ba4-e88f-4d2b-9a61-0c3e5f1d2a77";
    let resp = admin(&host, "POST", "/admin/clients", machine(client_id));
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let user = |id: &str, n: u32| edgeid::user::User {
        id: id.to_owned(),
        email: format!("imported{n}@example.com"),
        username: format!("imported{n}"),
        name: String::new(),
        given_name: String::new(),
        family_name: String::new(),
        email_verified: true,
        is_admin: false,
        disabled: false,
        created_at: 1,
        updated_at: 1,
    };
    // An import keeps ids (Kratos UUIDs): the same UUID in any spelling is refused.
    for (n, id) in [
        client_id.to_owned(),
        client_id.to_ascii_uppercase(),
        client_id.replace('-', ""),
    ]
    .iter()
    .enumerate()
    {
        let done = block_on(edgeid::user::insert(&host.sql, &user(id, n as u32))).unwrap();
        assert_eq!(done, edgeid::user::Inserted::IdIsAClient, "{id}");
        assert!(
            block_on(edgeid::user::load(&host.sql, id))
                .unwrap()
                .is_none()
        );
    }
    let done = block_on(edgeid::user::insert(
        &host.sql,
        &user("0e7c4a39-6b1d-4f8e-8c2a-5d9b3e1f7a20", 9),
    ))
    .unwrap();
    assert_eq!(done, edgeid::user::Inserted::Created);
    // The email check still answers first-class.
    let taken = edgeid::user::User {
        id: "11111111-2222-4333-8444-555555555555".into(),
        ..user("x", 9)
    };
    assert_eq!(
        block_on(edgeid::user::insert(&host.sql, &taken)).unwrap(),
        edgeid::user::Inserted::Taken
    );
}

#[test]
fn issue9_audiences_must_be_absolute_uris() {
    let (host, _) = setup(json!({}));
    for bad in [
        "api",
        "/api/v1",
        "//api.example.org",
        "https://api.example.org/#x",
        "",
    ] {
        let mut body = machine(&format!("aud-{}", bad.len()));
        body["audience"] = json!([bad]);
        let resp = admin(&host, "POST", "/admin/clients", body);
        assert_eq!(resp.status(), 400, "{bad:?}: {}", text(&resp));
        assert_eq!(json_of(&resp)["error"], "invalid_client_metadata");
    }
    let mut body = machine("aud-ok");
    body["audience"] = json!(["https://api.example.org/v1", "urn:example:resource"]);
    let resp = admin(&host, "POST", "/admin/clients", body);
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    // An update is held to the same rule.
    let mut body = machine("aud-ok");
    body["audience"] = json!(["relative/path"]);
    let resp = admin(&host, "PUT", "/admin/clients/aud-ok", body);
    assert_eq!(resp.status(), 400, "{}", text(&resp));
}

#[test]
fn issue9_a_clients_own_token_is_told_apart_from_a_users_and_refused_by_userinfo() {
    let (host, sub) = setup(json!({}));
    let resp = admin(&host, "POST", "/admin/clients", machine("machine"));
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("machine:machine-secret-1")
    );
    let resp = send(
        &host,
        "POST",
        "/oauth2/token",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials&scope=openid%20read",
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let at = json_of(&resp)["access_token"].as_str().unwrap().to_owned();
    let c = claims(&at);
    assert_eq!(c["sub"], "machine");
    assert_eq!(c["client_id"], "machine");
    assert!(c.get("gid").is_none(), "no grant: no user behind it");
    assert_ne!(c["sub"], sub.as_str());
    let info = userinfo(&host, &at);
    assert_eq!(info.status(), 403, "{}", text(&info));

    // A user's token: sub is the user, never the client.
    let b = Browser::new(&host);
    let code = first_login(&host, &b);
    let user_at = json_of(&redeem(&host, &code))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = claims(&user_at);
    assert_eq!(c["sub"], sub.as_str());
    assert_ne!(c["sub"], c["client_id"]);
    assert!(c["gid"].is_string());
}
