//! Issue 10, black-box: the Kratos fixture identities (`../shared/fixtures/migration/`) imported
//! through `POST /admin/import/users`, then signed in through the login page with their
//! original passwords (and Sofia's TOTP code) on whatever host `BASE_URL` names. The ID token's
//! `sub` is the Kratos id; the legacy hash is replaced at that sign-in (`password.upgraded`);
//! a second import changes nothing; a dry run writes nothing.
//!
//! The fixture ids are fixed, so the first import on a host that already has them (a second
//! suite run against the same state) answers `unchanged` rather than `created`; everything else
//! holds either way. A hash over the host's cost bounds (Kratos' 128 MiB argon2id on a
//! Cloudflare Worker, whose isolate has 128 MB in all) must be reported as such, and that user
//! gets a welcome link instead of signing in with the old password.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Instant;

use edgeid_suite::oidc::{
    Browser, OidcClient, Pkce, callback_of, create_oidc_client, verify_id_token,
};
use edgeid_suite::second_factor::{base32_decode, next_code, submit};
use edgeid_suite::serde_json::{Value, json};
use edgeid_suite::{Resp, admin, unique};

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/migration")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The records `edgeid import kratos` makes of the fixture identities (its own mapping is
/// unit-tested in `infra/cli/src/import/kratos.rs`).
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

fn import(users: &[Value], dry_run: bool) -> Value {
    let resp = admin(
        "POST",
        "/import/users",
        Some(json!({"dry_run": dry_run, "welcome": "link", "users": users})),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()
}

fn result_for<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}: {report}"))
}

/// authorize → login page (email + password) → TOTP step when `totp` → the client.
fn sign_in(
    client: &OidcClient,
    email: &str,
    password: &str,
    totp: Option<&[u8]>,
) -> Result<Value, Resp> {
    let browser = Browser::new();
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("scope", "openid profile email")
        .pkce(&pkce);
    let resp = browser.authorize(&req);
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = browser.get(resp.header("location").unwrap());
    let mut resp = submit(
        &browser,
        &page,
        "/login",
        &[("identifier", email), ("password", password)],
    );
    if let Some(secret) = totp {
        if resp.status != 200 {
            return Err(resp);
        }
        // The next step's code (RFC 6238 §5.2 allows one step of drift): still unused when an
        // earlier run against the same host spent this step's.
        resp = submit(
            &browser,
            &resp,
            "/login/totp",
            &[("code", &next_code(secret))],
        );
    }
    let Some(cb) = callback_of(&resp) else {
        return Err(resp);
    };
    let tokens = client.exchange(&cb.code(&req), Some(&pkce.verifier)).json();
    Ok(verify_id_token(
        tokens["id_token"].as_str().unwrap(),
        client,
        req.nonce(),
    ))
}

#[test]
fn issue10_kratos_fixture_users_sign_in_with_their_old_passwords_on_this_host() {
    let users = records();
    let expected = fixture("expected.json");

    // Dry run of a record this run alone has: answered as "created", nothing written.
    let fresh = json!({"id": unique("dry"), "email": format!("{}@example.test", unique("dry"))});
    let dry = import(std::slice::from_ref(&fresh), true);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["results"][0]["outcome"], "created", "{dry}");
    let id = fresh["id"].as_str().unwrap();
    assert_eq!(
        admin("GET", &format!("/users/{id}"), None).status,
        404,
        "a dry run writes nothing"
    );

    let first = import(&users, false);
    let fresh_host = first["created"] == 10;
    for r in first["results"].as_array().unwrap() {
        assert!(
            matches!(r["outcome"].as_str(), Some("created" | "unchanged")),
            "{r}"
        );
    }
    if fresh_host {
        let fatima = result_for(&first, "d519d32f-28e3-4f14-9ead-0ae16d1619cb");
        assert!(
            fatima["link"].as_str().unwrap().contains("/recovery"),
            "{fatima}"
        );
    }
    let second = import(&users, false);
    assert_eq!(
        second["unchanged"], 10,
        "the same input again changes nothing: {second}"
    );

    let client = create_oidc_client(json!({}));
    let (mut signed_in, mut over_bounds) = (0, 0);
    for identity in expected["identities"].as_array().unwrap() {
        let id = identity["id"].as_str().unwrap();
        let Some(password) = identity["password"].as_str() else {
            continue;
        };
        let email = identity["email"].as_str().unwrap();
        let notes = result_for(&second, id)["notes"].to_string();
        if notes.contains("password not imported") {
            // Only a hash over this host's cost bounds may be left out: the fixture's argon2
            // hashes (128 MiB and 64 MiB) on a host with less memory per request (a Worker).
            assert!(
                notes.contains("over this host's cost bounds"),
                "{email}: {notes}"
            );
            assert!(
                matches!(identity["format"].as_str(), Some("argon2id" | "argon2i")),
                "{email}: {notes}"
            );
            over_bounds += 1;
            continue;
        }
        let totp = identity["totp_secret_base32"].as_str().map(base32_decode);
        let outcome = sign_in(&client, email, password, totp.as_deref());
        if identity["key"] == "kees" {
            let resp = outcome.expect_err("a disabled user does not sign in");
            assert_eq!(resp.status, 401, "{}", resp.text());
            continue;
        }
        let claims = outcome.unwrap_or_else(|r| panic!("{email}: {} {}", r.status, r.text()));
        assert_eq!(claims["sub"], id, "{email}: sub is the Kratos id");
        if totp.is_some() {
            assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{email}");
        }
        // The legacy hash was replaced at this sign-in (or at an earlier run's).
        let events = admin(
            "GET",
            &format!("/audit?kind=password.upgraded&subject={id}"),
            None,
        )
        .json();
        assert!(
            !events["events"].as_array().unwrap().is_empty(),
            "{email}: no password.upgraded event"
        );
        signed_in += 1;
    }
    // Nine have a password, Kees is disabled: the other eight sign in, but for hashes over this
    // host's bounds.
    assert_eq!(signed_in + over_bounds, 8, "{signed_in} + {over_bounds}");
    assert!(over_bounds <= 2, "{over_bounds}");

    // After the upgrades the same import still changes nothing (the argon2id hashes stay).
    let third = import(&users, false);
    assert_eq!(third["unchanged"], 10, "{third}");
}

/// The import rate through the admin API, with the CLI's batching (at most 200 records and
/// 60 KiB per request): unique users with a Kratos bcrypt hash each and a TOTP secret for one
/// in ten. Run: `BASE_URL=... EDGEID_ADMIN_TOKEN=... cargo test -p edgeid-suite --test
/// issue10_kratos -- --ignored --nocapture` (prints users/s).
#[test]
#[ignore = "a measurement, not a check; run with --ignored"]
fn issue10_import_rate() {
    let n: usize = std::env::var("IMPORT_RATE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let run = unique("rate");
    let hash = "$2a$12$BW/oI4wV.w4O5R5JBYIgP.J.tl05uZZTexZRtrmCplSlsNilsCO0.";
    let users: Vec<Value> = (0..n)
        .map(|i| {
            let mut u = json!({
                "id": format!("{run}-{i:06}"), "email": format!("{run}-{i}@example.test"),
                "username": format!("{run}-{i}"), "name": format!("Rate User {i}"),
                "email_verified": true, "password_hash": hash,
            });
            if i % 10 == 0 {
                u["totp_secret"] = "ON2GCY3LONYGS3RNORXXI4BNONXWM2LB".into();
            }
            u
        })
        .collect();
    let started = Instant::now();
    let mut batch: Vec<Value> = Vec::new();
    let mut bytes = 0;
    let mut created = 0;
    let mut batches = 0;
    let mut flush = |batch: &mut Vec<Value>| {
        if batch.is_empty() {
            return;
        }
        let report = import(batch, false);
        created += report["created"].as_u64().unwrap_or(0) as usize;
        batches += 1;
        batch.clear();
    };
    for u in users {
        let size = u.to_string().len() + 1;
        if bytes + size + 256 > 60 * 1024 || batch.len() == 200 {
            flush(&mut batch);
            bytes = 0;
        }
        bytes += size;
        batch.push(u);
    }
    flush(&mut batch);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(created, n);
    println!(
        "issue10 import rate: {n} users in {batches} batches, {secs:.2} s, {:.0} users/s",
        n as f64 / secs
    );
}
