//! Issue 10: Kratos identities imported through `POST /admin/import/users`, then signed in
//! through the normal login page with their original passwords (and TOTP code), in memory with
//! a fixed clock. The fixtures are `../shared/fixtures/migration/` from the repository root.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/migration")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The records `edgeid import kratos` sends for the fixture identities (the CLI's mapping,
/// tested on its own in `infra/cli/src/import/kratos.rs`).
fn records() -> Vec<Value> {
    fixture("kratos-identities.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let email = i["traits"]["email"].as_str().unwrap();
            let verified = i["verifiable_addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["value"] == email && a["verified"] == true);
            let totp = i["credentials"]["totp"]["config"]["totp_url"]
                .as_str()
                .map(|u| u.split("secret=").nth(1).unwrap().to_owned());
            let mut r = json!({
                "id": i["id"], "email": email, "name": i["traits"]["name"],
                "email_verified": verified, "disabled": i["state"] == "inactive",
                "password_hash": i["credentials"]["password"]["config"]["hashed_password"],
                "totp_secret": totp,
            });
            if let Some(u) = i["traits"]["username"].as_str() {
                r["username"] = u.into();
            }
            r
        })
        .collect()
}

fn import(host: &MemoryHost, users: &[Value], dry_run: bool) -> Value {
    let resp = admin(
        host,
        "POST",
        "/admin/import/users",
        json!({"dry_run": dry_run, "welcome": "link", "users": users}),
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    json_of(&resp)
}

fn outcomes(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect()
}

fn result_for<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
}

fn stored_hash(host: &MemoryHost, id: &str) -> Option<String> {
    block_on(edgeid::user::password_hash(&host.credentials, id)).unwrap()
}

fn count(host: &MemoryHost, table_query: &'static str) -> i64 {
    use edgeid::ports::{Sql as _, Statement};
    let rows = block_on(host.sql.query(Statement::new(table_query, vec![]))).unwrap();
    rows[0].int(0).unwrap()
}

/// Signs in through authorize → login (→ TOTP) with skip_consent; answers the ID token's
/// claims, or the login POST's status when it did not reach the client.
fn sign_in(
    host: &MemoryHost,
    identifier: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<Value, u16> {
    let browser = Browser::new(host);
    let resp = browser.get(&authorize_url(""));
    let mut resp = browser.login(&resp, identifier, password);
    if let Some(code) = totp {
        assert_eq!(resp.status(), 200, "{}", text(&resp));
        let page = text(&resp);
        assert!(page.contains("action=\"/login/totp\""), "{page}");
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("pending", &input(&page, "pending"))
            .append_pair("code", code)
            .finish();
        resp = browser.post("/login/totp", &form);
    }
    if resp.status() != 303 {
        return Err(resp.status().as_u16());
    }
    let code = callback(&resp)["code"].clone();
    let tokens = json_of(&redeem(host, &code));
    Ok(claims(tokens["id_token"].as_str().unwrap()))
}

#[test]
fn issue10_kratos_users_sign_in_with_their_old_passwords_and_keep_their_sub() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let users = records();
    let expected = fixture("expected.json");

    // A dry run answers what would happen and writes nothing.
    let dry = import(&host, &users, true);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(outcomes(&dry), vec!["created"; 10]);
    assert_eq!(count(&host, "SELECT COUNT(*) FROM users"), 1, "only alice");
    assert_eq!(
        count(
            &host,
            "SELECT COUNT(*) FROM audit_events WHERE kind = 'user.imported'"
        ),
        0
    );
    for u in &users {
        assert!(stored_hash(&host, u["id"].as_str().unwrap()).is_none());
    }
    assert!(result_for(&dry, "d519d32f-28e3-4f14-9ead-0ae16d1619cb")["link"].is_null());

    let first = import(&host, &users, false);
    assert_eq!(outcomes(&first), vec!["created"; 10], "{first}");
    assert_eq!(first["created"], 10);
    assert_eq!(
        count(
            &host,
            "SELECT COUNT(*) FROM audit_events WHERE kind = 'user.imported'"
        ),
        10
    );
    // Fatima has no password: she gets a welcome link, and only she does.
    let fatima = result_for(&first, "d519d32f-28e3-4f14-9ead-0ae16d1619cb");
    assert!(
        fatima["link"].as_str().unwrap().contains("/recovery"),
        "{fatima}"
    );
    assert_eq!(
        first["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["link"].is_string())
            .count(),
        1
    );
    // Zoë's username is not an edgeid username: derived from her email, and said so.
    let zoe = result_for(&first, "b73de785-caa8-4f4c-a021-0d068ecb87eb");
    assert!(
        zoe["notes"][0].as_str().unwrap().contains("zoe.angstrom"),
        "{zoe}"
    );
    let resp = admin(
        &host,
        "GET",
        "/admin/users/b73de785-caa8-4f4c-a021-0d068ecb87eb",
        json!({}),
    );
    let zoe_user = json_of(&resp);
    assert_eq!(zoe_user["username"], "zoe.angstrom");
    assert_eq!(zoe_user["name"], "Zoë Ångström-Nguyễn 山田");
    // Kees is inactive in Kratos: disabled here. Tom has no verified address.
    let kees = json_of(&admin(
        &host,
        "GET",
        "/admin/users/064435f7-ad13-4bce-886c-4fcb6aaa79e3",
        json!({}),
    ));
    assert_eq!(kees["disabled"], true);
    let tom = json_of(&admin(
        &host,
        "GET",
        "/admin/users/b3ad0dac-ba67-470d-9870-0c67d51fbf46",
        json!({}),
    ));
    assert_eq!(tom["email_verified"], false);

    // The same input again changes nothing.
    let second = import(&host, &users, false);
    assert_eq!(outcomes(&second), vec!["unchanged"; 10], "{second}");
    assert!(
        second["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["link"].is_null())
    );

    // Every fixture user with a password signs in with it; the ID token's sub is the Kratos
    // id; the legacy hash is replaced by edgeid's argon2id in the same request.
    for identity in expected["identities"].as_array().unwrap() {
        let id = identity["id"].as_str().unwrap();
        let email = identity["email"].as_str().unwrap();
        let Some(password) = identity["password"].as_str() else {
            continue;
        };
        let legacy = stored_hash(&host, id).unwrap();
        assert_eq!(legacy, identity["hashed_password"].as_str().unwrap());
        let totp = identity["totp_examples"]["1700000000"].as_str();
        let signed_in = sign_in(&host, email, password, totp);
        if identity["key"] == "kees" {
            assert_eq!(signed_in, Err(401), "a disabled user does not sign in");
            assert_eq!(
                stored_hash(&host, id).unwrap(),
                legacy,
                "nor is his hash upgraded"
            );
            continue;
        }
        let claims = signed_in.unwrap_or_else(|s| panic!("{email}: {s}"));
        assert_eq!(claims["sub"], id, "{email}");
        if totp.is_some() {
            assert!(
                claims["amr"].as_array().unwrap().iter().any(|m| m == "otp"),
                "{claims}"
            );
        }
        let upgraded = stored_hash(&host, id).unwrap();
        assert!(edgeid::user::is_current(&upgraded), "{email}: {upgraded}");
        assert!(edgeid::user::verify_password(&upgraded, password));
        // A wrong password still fails against the new hash.
        assert!(sign_in(&host, email, &format!("{password}x"), None).is_err());
    }
    assert_eq!(
        count(
            &host,
            "SELECT COUNT(*) FROM audit_events WHERE kind = 'password.upgraded'"
        ),
        8,
        "eight active users with a password"
    );
    // The same import after the upgrades still changes nothing: the argon2id hashes stay.
    let third = import(&host, &users, false);
    assert_eq!(outcomes(&third), vec!["unchanged"; 10], "{third}");
    let admin_id = "2be3de96-5386-4040-ada4-78bb70c8a224";
    assert!(edgeid::user::is_current(
        &stored_hash(&host, admin_id).unwrap()
    ));
}

#[test]
fn issue10_a_changed_source_updates_and_refusals_name_their_reason() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let mut users = records();
    let _ = import(&host, &users, false);
    let jan = "a60af083-a7ef-450c-b687-10d09ecc411c";
    let before = sign_in(&host, "jan", "tulpen-fiets-gracht-7", None).unwrap();
    assert_eq!(before["sub"], jan);

    // Jan's name and hash change at the source (Priya's pbkdf2 hash stands in for a new
    // password); Maria gets an unverifiable hash; a new record is broken in three ways.
    let priya_hash =
        users.iter().find(|u| u["username"] == "priya").unwrap()["password_hash"].clone();
    for u in &mut users {
        if u["id"] == jan {
            u["name"] = "Jan de Jansen".into();
            u["password_hash"] = priya_hash.clone();
        }
    }
    users.push(json!({"id": "not a uuid", "email": "x@example.org"}));
    users.push(json!({"id": "5f0c1a3e-0000-4000-8000-000000000001", "email": "jan.jansen@stackspin.example.org"}));
    users.push(json!({"id": "5f0c1a3e-0000-4000-8000-000000000002", "email": "new@example.org",
                      "password_hash": "$argon2id$v=19$m=1048576,t=4,p=1$c29tZXNhbHRzb21lc2FsdA$3Nxqj4P7W9cA3DMtqZbN0bK9bqkG2bZg3L0Fh0h1Q2s"}));
    let report = import(&host, &users, false);
    let jan_result = result_for(&report, jan);
    assert_eq!(jan_result["outcome"], "updated", "{report}");
    assert_eq!(result_for(&report, "not a uuid")["outcome"], "refused");
    let dup = result_for(&report, "5f0c1a3e-0000-4000-8000-000000000001");
    assert_eq!(dup["outcome"], "refused");
    assert!(
        dup["reason"].as_str().unwrap().contains("another user"),
        "{dup}"
    );
    let over = result_for(&report, "5f0c1a3e-0000-4000-8000-000000000002");
    assert_eq!(over["outcome"], "created");
    assert!(
        over["notes"][0]
            .as_str()
            .unwrap()
            .contains("over this host's cost bounds"),
        "{over}"
    );
    assert!(
        over["link"].as_str().is_some(),
        "an unverifiable hash gets a welcome link"
    );
    assert!(stored_hash(&host, "5f0c1a3e-0000-4000-8000-000000000002").is_none());
    assert_eq!(report["refused"], 2);
    // The new hash is in force; the old one no longer signs in.
    assert!(sign_in(&host, "jan", "tulpen-fiets-gracht-7", None).is_err());
    assert_eq!(
        sign_in(&host, "jan", "Monsoon#Rain#2022", None).unwrap()["sub"],
        jan
    );
    let u = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{jan}"),
        json!({}),
    ));
    assert_eq!(u["name"], "Jan de Jansen");

    // Deleted in edgeid, imported again: created again, with its password.
    let resp = admin(&host, "DELETE", &format!("/admin/users/{jan}"), json!({}));
    assert_eq!(resp.status(), 204);
    let again = import(&host, &users[..10], false);
    assert_eq!(result_for(&again, jan)["outcome"], "created", "{again}");
    assert_eq!(
        sign_in(&host, "jan", "Monsoon#Rain#2022", None).unwrap()["sub"],
        jan
    );

    // A batch over the limit is refused whole.
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"id": format!("u{i}"), "email": format!("u{i}@example.org")}))
        .collect();
    let resp = admin(&host, "POST", "/admin/import/users", json!({"users": many}));
    assert_eq!(resp.status(), 400);
    // Admin-only.
    let resp = send(
        &host,
        "POST",
        "/admin/import/users",
        &[("content-type", "application/json")],
        "{\"users\":[]}",
    );
    assert_eq!(resp.status(), 401);
}

/// The upgrade at sign-in is one conditional statement: a hash that changed since it was read
/// (a reset, an admin's set-password between the check and the write) is left alone.
#[test]
fn issue10_the_upgrade_never_overwrites_a_hash_changed_meanwhile() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let _ = import(&host, &records(), false);
    let jan = "a60af083-a7ef-450c-b687-10d09ecc411c";
    let legacy = stored_hash(&host, jan).unwrap();
    let upgrade = |old: &str| {
        block_on(edgeid::user::upgrade_password(
            &host.credentials,
            jan,
            old,
            "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$AAAA",
            host.clock.get(),
        ))
        .unwrap()
    };
    assert!(!upgrade("$2a$12$not-what-is-stored"));
    assert_eq!(stored_hash(&host, jan).unwrap(), legacy);
    assert!(upgrade(&legacy));
    assert!(stored_hash(&host, jan).unwrap().starts_with("$argon2id$"));
    assert!(
        !upgrade(&legacy),
        "a second upgrade from the same hash finds nothing to replace"
    );
}
