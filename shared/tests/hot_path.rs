//! The token endpoint's hot path (issue 12, item 3): with warm caches a `client_credentials`
//! request reads the client, its lock marker and the current signing key from KV and nothing
//! from SQL, and the key cache never outlives what rotation promises relying parties.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use edgeid::ports::{Kv as _, Sql as _, Statement};

fn client_credentials_host() -> MemoryHost {
    let (host, _) = setup(json!({
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "scope": "read",
    }));
    host
}

fn access_token(host: &MemoryHost) -> Response {
    token(host, "grant_type=client_credentials&scope=read")
}

fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn sql(host: &MemoryHost, q: String) {
    // Test-only statements: `Statement` wants the `'static` SQL text flows use.
    let q: &'static str = Box::leak(q.into_boxed_str());
    block_on(host.sql.query(Statement::new(q, vec![]))).unwrap();
}

fn all_tables(host: &MemoryHost) -> Vec<String> {
    let rows = block_on(host.sql.query(Statement::new(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        vec![],
    )))
    .unwrap();
    rows.iter().map(|r| r.text(0).unwrap().to_owned()).collect()
}

fn rename_all(host: &MemoryHost, tables: &[String], from: &str, to: &str) {
    for t in tables {
        sql(host, format!("ALTER TABLE {t}{from} RENAME TO {t}{to}"));
    }
}

#[test]
fn issue12_warm_client_credentials_reads_no_sql() {
    let host = client_credentials_host();
    let first = access_token(&host);
    assert_eq!(first.status(), 200, "{}", text(&first));

    // Take away every table of the main database: a warm request must not notice.
    let tables = all_tables(&host);
    assert!(tables.len() >= 10, "{tables:?}");
    rename_all(&host, &tables, "", "_away");
    let warm = access_token(&host);
    assert_eq!(warm.status(), 200, "{}", text(&warm));
    let at = json_of(&warm)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        kid_of(&at),
        kid_of(json_of(&first)["access_token"].as_str().unwrap())
    );

    // Once the caches expire the path goes back to SQL, which is the source of truth.
    host.clock.advance(edgeid::keys::CURRENT_KEY_CACHE_TTL + 1);
    let cold = access_token(&host);
    assert_ne!(
        cold.status(),
        200,
        "served without its tables: {}",
        text(&cold)
    );
    rename_all(&host, &tables, "_away", "");
    let again = access_token(&host);
    assert_eq!(again.status(), 200, "{}", text(&again));
}

#[test]
fn issue12_rotation_signs_with_the_new_key_at_once_and_a_stale_cached_key_still_verifies() {
    let host = client_credentials_host();
    let before = access_token(&host);
    let old_kid = kid_of(json_of(&before)["access_token"].as_str().unwrap());
    let stale_entry = block_on(host.kv.get("signing-key:current:v1:ES256"))
        .unwrap()
        .expect("the first token cached the current key");

    let rotated = admin(&host, "POST", "/admin/keys/rotate", json!({"alg": "ES256"}));
    assert_eq!(rotated.status(), 200, "{}", text(&rotated));
    let after = access_token(&host);
    let new_kid = kid_of(json_of(&after)["access_token"].as_str().unwrap());
    assert_ne!(new_kid, old_kid, "rotation deletes the cached key");

    // An edge whose eventually consistent KV still serves the old entry keeps signing with
    // the retired key; it stays published long enough for those tokens to verify.
    block_on(host.kv.put("signing-key:current:v1:ES256", &stale_entry)).unwrap();
    let stale = access_token(&host);
    assert_eq!(
        kid_of(json_of(&stale)["access_token"].as_str().unwrap()),
        old_kid
    );
    let keys = json_of(&admin(&host, "GET", "/admin/keys", json!({})));
    let retired = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .expect("the retired key is listed");
    assert_eq!(retired["state"], "retired");
    let now = host.clock.get();
    // access tokens 900 s, ID tokens 3600 s: the longest lifetime, plus the cache's.
    assert_eq!(
        retired["expires_at"].as_i64().unwrap(),
        now + 3600 + edgeid::keys::CURRENT_KEY_CACHE_TTL
    );
    let jwks = send(&host, "GET", "/.well-known/jwks.json", &[], "");
    assert!(text(&jwks).contains(&old_kid), "{}", text(&jwks));
}

#[test]
fn issue12_a_damaged_key_cache_entry_falls_back_to_sql() {
    let host = client_credentials_host();
    assert_eq!(access_token(&host).status(), 200);
    for damaged in [
        &b"garbage"[..],
        b"",
        b"9999999999\nno-newline-kid",
        b"9999999999\nkid\nnot-sealed",
    ] {
        block_on(host.kv.put("signing-key:current:v1:ES256", damaged)).unwrap();
        let resp = access_token(&host);
        assert_eq!(resp.status(), 200, "{}", text(&resp));
    }
}
