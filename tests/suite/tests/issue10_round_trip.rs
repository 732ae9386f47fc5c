//! Issue 10, black box: `GET /admin/export` on one host and `POST /admin/import/edgeid` on
//! another (`BASE_URL` → `TARGET_BASE_URL`, e.g. native → Spin test host → workerd). A token
//! issued before the move verifies against the new host's JWKS, the user signs in there with
//! the same password and keeps their `sub`, the client authenticates with the same secret.
//! The two hosts must share the key-encryption key (`EDGEID_KEY_ENCRYPTION_KEY`); the
//! target's admin token is `TARGET_EDGEID_ADMIN_TOKEN` (default: `EDGEID_ADMIN_TOKEN`).
//!
//! The single-host tests below (the export's shape and its secrets rule) run everywhere; the
//! round trip runs only when `TARGET_BASE_URL` is set.

use edgeid_suite::*;
use serde_json::{Value, json};

/// The whole export of the current host: (table, rows) in import order.
fn export_all() -> Vec<(String, Vec<Value>)> {
    let head = admin("GET", "/export?include_secrets=true", None);
    assert_eq!(head.status, 200, "{}", head.text());
    let head = head.json();
    assert_eq!(head["format"], "edgeid-export");
    assert_eq!(head["version"], 1);
    let mut out = Vec::new();
    for t in head["tables"].as_array().expect("tables") {
        let t = t.as_str().unwrap_or_default().to_owned();
        let mut rows = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!("/export?include_secrets=true&table={t}&limit=500&after={after}");
            let page = admin("GET", &path, None);
            assert_eq!(page.status, 200, "{path}: {}", page.text());
            let page = page.json();
            rows.extend(page["rows"].as_array().cloned().unwrap_or_default());
            match page["next"].as_i64() {
                Some(n) => after = n.to_string(),
                None => break,
            }
        }
        out.push((t, rows));
    }
    out
}

/// Imports every table into the current host in requests under the 64 KiB body limit;
/// answers every refused result as (table, id, reason) and the summed counts.
fn import_all(tables: &[(String, Vec<Value>)]) -> (Vec<(String, String, String)>, [u64; 4]) {
    let mut refused = Vec::new();
    let mut counts = [0u64; 4];
    for (t, rows) in tables {
        let mut chunks: Vec<Vec<Value>> = vec![Vec::new()];
        let mut bytes = 0;
        for r in rows {
            let len = r.to_string().len();
            let last = chunks.last().map_or(0, Vec::len);
            if last > 0 && (bytes + len > 48 * 1024 || last >= 500) {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += len;
            if let Some(c) = chunks.last_mut() {
                c.push(r.clone());
            }
        }
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            let resp = admin(
                "POST",
                "/import/edgeid",
                Some(json!({"format": "edgeid-export", "version": 1, "table": t, "rows": chunk})),
            );
            assert_eq!(resp.status, 200, "import {t}: {}", resp.text());
            let r = resp.json();
            for (i, k) in ["created", "updated", "unchanged", "refused"]
                .iter()
                .enumerate()
            {
                counts[i] += r[k].as_u64().unwrap_or(0);
            }
            for item in r["results"].as_array().into_iter().flatten() {
                if item["outcome"] == "refused" {
                    refused.push((
                        t.clone(),
                        item["id"].as_str().unwrap_or("").to_owned(),
                        item["reason"].to_string(),
                    ));
                }
            }
        }
    }
    (refused, counts)
}

#[test]
fn issue10_export_is_admin_only_and_serves_secrets_only_when_asked() {
    assert_eq!(get("/admin/export?include_secrets=true").status, 401);
    let head = admin("GET", "/export", None).json();
    assert_eq!(head["include_secrets"], false);
    let tables = head["tables"].to_string();
    assert!(
        tables.contains("users") && tables.contains("signing_keys"),
        "{tables}"
    );
    assert!(!tables.contains("password_credentials"), "{tables}");
    assert_eq!(
        admin("GET", "/export?table=password_credentials", None).status,
        400
    );
    let keys = admin("GET", "/export?table=signing_keys", None).json();
    assert!(!keys.to_string().contains("private_sealed"), "{keys}");
    let user = create_user(json!({}));
    let with = admin(
        "GET",
        "/export?table=password_credentials&include_secrets=true",
        None,
    );
    assert_eq!(with.status, 200, "{}", with.text());
    // Pages: a small limit pages through every user.
    let mut seen = false;
    let mut after = String::new();
    for _ in 0..100_000 {
        let page = admin(
            "GET",
            &format!("/export?table=users&limit=50&after={after}"),
            None,
        )
        .json();
        seen |= page["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["id"] == user.id.as_str());
        match page["next"].as_i64() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    assert!(seen, "the new user is in the export");
}

#[test]
fn issue10_round_trip_to_another_host_keeps_tokens_passwords_and_client_secrets_working() {
    let Some(target) = target_base() else {
        eprintln!("TARGET_BASE_URL is not set: the round trip needs a second host; skipped");
        return;
    };
    let source = base();
    // Before the move: a user signs in at a relying party, which keeps its tokens.
    let user = create_user(json!({}));
    let client = create_oidc_client(json!({}));
    let browser = Browser::new();
    let flow = code_flow(
        &browser,
        &client,
        &user,
        "openid profile email offline_access",
    );
    let id_token = flow.id_token().to_owned();
    let access_token = flow.access_token().to_owned();
    let refresh_token = flow.refresh_token().to_owned();

    let tables = export_all();
    let (refused, first) = on_target(|| import_all(&tables));
    let ours: Vec<_> = refused
        .iter()
        .filter(|(t, id, _)| {
            id.contains(&user.id) || id.contains(&client.id) || t == "signing_keys"
        })
        .collect();
    assert!(ours.is_empty(), "refused on {target}: {ours:?}");
    assert!(first[0] + first[1] + first[2] > 0, "{first:?}");

    on_target(|| {
        // The ID token issued by the source verifies against the target's JWKS.
        let set = jwks();
        let header = header(&id_token);
        let kid = header.kid.clone().expect("a kid");
        let jwk = set
            .find(&kid)
            .unwrap_or_else(|| panic!("{target} publishes the source's key {kid}"));
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a usable JWK");
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[source.as_str()]);
        validation.set_audience(&[client.id.as_str()]);
        let claims = jsonwebtoken::decode::<Value>(&id_token, &key, &validation)
            .unwrap_or_else(|e| panic!("the old ID token verifies on {target}: {e}"))
            .claims;
        assert_eq!(claims["sub"], user.id.as_str());
        // The access token works at the target's userinfo when the issuer moved with the
        // deployment (a token names its issuer in `iss`, which a host with another issuer
        // URL rightly refuses); the refresh token works at the target's token endpoint either
        // way (the client authenticating with its old secret) and yields the target's tokens.
        let issuer = get("/.well-known/openid-configuration").json()["issuer"].clone();
        if issuer == source.as_str() {
            let info = userinfo_get(&access_token);
            assert_eq!(info.status, 200, "{}", info.text());
            assert_eq!(info.json()["sub"], user.id.as_str());
        }
        let refreshed = client.refresh(&refresh_token);
        assert_eq!(refreshed.status, 200, "{}", refreshed.text());
        let fresh = refreshed.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let info = userinfo_get(&fresh);
        assert_eq!(info.status, 200, "{}", info.text());
        assert_eq!(info.json()["sub"], user.id.as_str());
        // The user signs in on the target with the same password and keeps the sub
        // (`code_flow` asserts it, and the code exchange authenticates the client).
        let there = code_flow(&Browser::new(), &client, &user, "openid email");
        assert_eq!(there.id_claims["sub"], user.id.as_str());
        assert_eq!(there.id_claims["iss"], target.as_str());
    });

    // A second import of the same export changes nothing the source had.
    let (_, second) = on_target(|| import_all(&tables));
    assert_eq!(second[0], 0, "nothing new the second time: {second:?}");
}

#[test]
fn issue10_the_import_refuses_another_format_or_version() {
    for body in [
        json!({"format": "hydra", "version": 1, "table": "users", "rows": []}),
        json!({"format": "edgeid-export", "version": 2, "table": "users", "rows": []}),
        json!({"format": "edgeid-export", "version": 1, "table": "nope", "rows": []}),
    ] {
        assert_eq!(
            admin("POST", "/import/edgeid", Some(body.clone())).status,
            400,
            "{body}"
        );
    }
}
