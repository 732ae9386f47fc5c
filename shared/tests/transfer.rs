//! Issue 10, in memory: importing the Hydra and Stackspin fixtures through the admin API
//! (twice: the second run changes nothing; a dry run writes nothing; unsupported fields and
//! missing secrets are reported), and moving a deployment with `GET /admin/export` /
//! `POST /admin/import/edgeid` between two in-memory hosts (a token issued before the move
//! verifies after it, the user signs in with the same password, the client authenticates with
//! the same secret).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/migration/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn secrets() -> Value {
    let mut map = serde_json::Map::new();
    for s in fixture("hydra-client-secrets.json").as_array().unwrap() {
        map.insert(
            s["client_id"].as_str().unwrap().to_owned(),
            s["client_secret"].clone(),
        );
    }
    Value::Object(map)
}

fn import(host: &MemoryHost, kind: &str, body: Value) -> Value {
    let resp = admin(host, "POST", &format!("/admin/import/{kind}"), body);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    json_of(&resp)
}

fn result<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}: {report}"))
}

fn counts(report: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| report[k].as_u64().unwrap();
    (n("created"), n("updated"), n("unchanged"), n("refused"))
}

fn client_ids(host: &MemoryHost) -> Vec<String> {
    let resp = admin(host, "GET", "/admin/clients", json!(null));
    json_of(&resp)["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect()
}

fn client_credentials(host: &MemoryHost, id: &str, secret: &str) -> Response {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    send(
        host,
        "POST",
        "/oauth2/token",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials",
    )
}

#[test]
fn issue10_hydra_fixture_imports_keeping_ids_reports_what_it_cannot_carry_and_is_idempotent() {
    let host = block_on(MemoryHost::new());
    let clients = fixture("hydra-clients.json");
    let ids = [
        "dashboard",
        "monitoring-exporter",
        "nextcloud",
        "stackspin-cli",
        "zulip",
    ];

    let dry = import(&host, "hydra", json!({"dry_run": true, "clients": clients}));
    assert_eq!(counts(&dry), (5, 0, 0, 0), "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert!(client_ids(&host).is_empty(), "a dry run writes nothing");

    let first = import(&host, "hydra", json!({"clients": clients}));
    assert_eq!(counts(&first), (5, 0, 0, 0), "{first}");
    assert_eq!(client_ids(&host), ids);
    // Hydra exports no secrets: every confidential client is reported.
    for id in ["dashboard", "monitoring-exporter", "nextcloud", "zulip"] {
        let notes = result(&first, id)["notes"].to_string();
        assert!(notes.contains("needs a secret"), "{id}: {notes}");
    }
    assert!(
        result(&first, "dashboard")["notes"]
            .to_string()
            .contains("sidecar")
    );
    assert!(result(&first, "stackspin-cli").get("notes").is_none());
    // Fields edgeid does not carry are listed.
    let exporter = result(&first, "monitoring-exporter")["notes"].to_string();
    assert!(
        exporter.contains("client_credentials_grant_access_token_lifespan"),
        "{exporter}"
    );
    // The registration is Hydra's.
    let zulip = json_of(&admin(&host, "GET", "/admin/clients/zulip", json!(null)));
    assert_eq!(zulip["skip_consent"], true);
    assert_eq!(zulip["owner"], "zulip-oauth-client/stackspin-apps");
    assert_eq!(
        zulip["redirect_uris"][0],
        "https://zulip.stackspin.example.org/complete/oidc/"
    );
    let cli = json_of(&admin(
        &host,
        "GET",
        "/admin/clients/stackspin-cli",
        json!(null),
    ));
    assert_eq!(cli["token_endpoint_auth_method"], "none");
    assert_eq!(cli["metadata"]["pkce"], "S256");
    let exp = json_of(&admin(
        &host,
        "GET",
        "/admin/clients/monitoring-exporter",
        json!(null),
    ));
    assert_eq!(
        exp["audience"][0],
        "https://dashboard.stackspin.example.org/api/v1"
    );
    // Without its secret the client cannot authenticate with a guess.
    assert_eq!(
        client_credentials(&host, "monitoring-exporter", "1MfD-vzW-XpGaHIm7~L-KDHVyx").status(),
        401
    );

    let again = import(&host, "hydra", json!({"clients": clients}));
    assert_eq!(counts(&again), (0, 0, 5, 0), "{again}");

    // The secrets file supplies them; a second run with it changes nothing.
    let with = import(
        &host,
        "hydra",
        json!({"clients": clients, "secrets": secrets()}),
    );
    assert_eq!(counts(&with), (0, 4, 1, 0), "{with}");
    assert!(
        !result(&with, "dashboard")["notes"]
            .to_string()
            .contains("needs a secret")
    );
    let resp = client_credentials(&host, "monitoring-exporter", "1MfD-vzW-XpGaHIm7~L-KDHVyx");
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let with_again = import(
        &host,
        "hydra",
        json!({"clients": clients, "secrets": secrets()}),
    );
    assert_eq!(counts(&with_again), (0, 0, 5, 0), "{with_again}");
    // An import without secrets keeps the stored ones.
    let without = import(&host, "hydra", json!({"clients": clients}));
    assert_eq!(counts(&without), (0, 0, 5, 0), "{without}");
    assert_eq!(
        client_credentials(&host, "monitoring-exporter", "1MfD-vzW-XpGaHIm7~L-KDHVyx").status(),
        200
    );

    // A changed source updates.
    let mut changed = clients.clone();
    changed[0]["client_name"] = json!("Dashboard (renamed)");
    let upd = import(&host, "hydra", json!({"clients": changed}));
    assert_eq!(counts(&upd), (0, 1, 4, 0), "{upd}");
    assert_eq!(result(&upd, "dashboard")["outcome"], "updated");
    let dash = json_of(&admin(
        &host,
        "GET",
        "/admin/clients/dashboard",
        json!(null),
    ));
    assert_eq!(dash["client_name"], "Dashboard (renamed)");

    // Dry run of a change: reported, not written.
    changed[0]["client_name"] = json!("Dashboard again");
    let dry = import(&host, "hydra", json!({"dry_run": true, "clients": changed}));
    assert_eq!(result(&dry, "dashboard")["outcome"], "updated");
    let dash = json_of(&admin(
        &host,
        "GET",
        "/admin/clients/dashboard",
        json!(null),
    ));
    assert_eq!(dash["client_name"], "Dashboard (renamed)");
}

#[test]
fn issue10_hydra_import_keeps_to_the_sidecar_ownership_rule() {
    let host = block_on(MemoryHost::new());
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({"client_id": "by-hand", "grant_types": ["client_credentials"]}),
    );
    assert_eq!(resp.status(), 201);
    let owned = json!({"client_id": "by-hand", "grant_types": ["client_credentials"],
                       "owner": "by-hand/apps", "token_endpoint_auth_method": "client_secret_basic"});
    let report = import(&host, "hydra", json!({"clients": [owned]}));
    assert_eq!(result(&report, "by-hand")["outcome"], "refused", "{report}");
    assert!(
        result(&report, "by-hand")["reason"]
            .to_string()
            .contains("outside Kubernetes")
    );
    // A client edgeid cannot authenticate, and a client id that is a user's sub, are refused
    // and the rest of the batch goes in.
    let sub = json_of(&admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "u@example.com", "username": "u"}),
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = import(
        &host,
        "hydra",
        json!({"clients": [
            {"client_id": "jwt-client", "token_endpoint_auth_method": "private_key_jwt",
             "grant_types": ["client_credentials"]},
            {"client_id": sub, "grant_types": ["client_credentials"]},
            {"client_id": "fine", "grant_types": ["client_credentials"]},
        ]}),
    );
    assert_eq!(counts(&report), (1, 0, 0, 2), "{report}");
    assert_eq!(result(&report, "fine")["outcome"], "created");
}

/// The fixture's identities as edgeid users with their Kratos ids (what `import kratos` does;
/// written directly here so this test does not depend on that importer).
fn kratos_users(host: &MemoryHost) {
    for ident in fixture("kratos-identities.json").as_array().unwrap() {
        let email = ident["traits"]["email"].as_str().unwrap();
        let user = edgeid::user::User {
            id: ident["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            username: email.split('@').next().unwrap().to_owned(),
            name: ident["traits"]["name"].as_str().unwrap_or("").to_owned(),
            given_name: String::new(),
            family_name: String::new(),
            email_verified: true,
            is_admin: false,
            disabled: false,
            created_at: 1,
            updated_at: 1,
        };
        assert_eq!(
            block_on(edgeid::user::insert(&host.sql, &user)).unwrap(),
            edgeid::user::Inserted::Created
        );
    }
}

fn roles_of(host: &MemoryHost, user: &str) -> Vec<(String, String)> {
    let resp = admin(
        host,
        "GET",
        &format!("/admin/users/{user}/roles"),
        json!(null),
    );
    json_of(&resp)["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["app"].as_str().unwrap().to_owned(),
                r["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const JAN: &str = "a60af083-a7ef-450c-b687-10d09ecc411c";
const KEES: &str = "064435f7-ad13-4bce-886c-4fcb6aaa79e3";

#[test]
fn issue10_stackspin_fixture_maps_apps_and_roles_no_access_is_no_role_and_reruns_change_nothing() {
    let host = block_on(MemoryHost::new());
    import(
        &host,
        "hydra",
        json!({"clients": fixture("hydra-clients.json")}),
    );
    let mut body = fixture("stackspin-roles.json");
    body["domain"] = json!("stackspin.example.org");

    // Users must exist first.
    let early = import(&host, "stackspin", body.clone());
    assert_eq!(early["refused"], 10, "one per unknown user: {early}");
    assert!(
        result(&early, JAN)["reason"]
            .to_string()
            .contains("import kratos")
    );
    let apps = json_of(&admin(&host, "GET", "/admin/apps", json!(null)));
    assert_eq!(
        apps["apps"].as_array().unwrap().len(),
        6,
        "apps went in: {apps}"
    );
    kratos_users(&host);

    body["dry_run"] = json!(true);
    let dry = import(&host, "stackspin", body.clone());
    assert!(dry["created"].as_u64().unwrap() > 20, "{dry}");
    assert!(roles_of(&host, JAN).is_empty(), "a dry run writes nothing");
    body["dry_run"] = json!(false);

    let first = import(&host, "stackspin", body.clone());
    assert_eq!(first["refused"], 0, "{first}");
    assert_eq!(
        roles_of(&host, JAN),
        [
            ("dashboard", "user"),
            ("hedgedoc", "user"),
            ("nextcloud", "admin"),
            ("wekan", "user"),
            ("zulip", "user"),
        ]
        .map(|(a, r)| (a.to_owned(), r.to_owned())),
        "jan has no access to wordpress"
    );
    assert!(
        roles_of(&host, KEES).is_empty(),
        "no access everywhere is no role"
    );
    // App URLs: from the client's redirect URI, else from the domain.
    let app = |slug: &str| {
        json_of(&admin(
            &host,
            "GET",
            &format!("/admin/apps/{slug}"),
            json!(null),
        ))
    };
    assert_eq!(
        app("nextcloud")["url"],
        "https://files.stackspin.example.org/"
    );
    assert_eq!(app("wekan")["url"], "https://wekan.stackspin.example.org/");
    assert_eq!(app("nextcloud")["client_id"], "nextcloud");
    assert_eq!(app("zulip")["name"], "Zulip");

    let again = import(&host, "stackspin", body.clone());
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(again["refused"], 0);

    // A changed dashboard updates: Jan goes from admin to user on Nextcloud, loses Zulip.
    for row in body["app_role"].as_array_mut().unwrap() {
        if row["user_id"] == JAN && row["app_id"] == 5 {
            row["role_id"] = json!(2);
        }
        if row["user_id"] == JAN && row["app_id"] == 3 {
            row["role_id"] = json!(3);
        }
    }
    let changed = import(&host, "stackspin", body.clone());
    assert_eq!(changed["updated"], 2, "{changed}");
    let jan = roles_of(&host, JAN);
    assert!(
        jan.contains(&("nextcloud".into(), "user".into())),
        "{jan:?}"
    );
    assert!(!jan.iter().any(|(a, _)| a == "zulip"), "{jan:?}");
}

/// A provisioned host whose keys differ from [`MemoryHost::new`]'s (another seed).
fn other_host(seed: u64) -> MemoryHost {
    let mut host = MemoryHost::bare();
    host.rng = edgeid::testing::SeededRng::new(seed);
    let settings = edgeid::config::Settings::load(&host).unwrap();
    for alg in edgeid::jose::Alg::ALL {
        block_on(edgeid::keys::rotate(&host, &settings, 1_700_000_000, alg)).unwrap();
    }
    host
}

/// Every table of the export, page by page, as `{table: rows}`.
fn export_all(host: &MemoryHost) -> (Value, Vec<(String, Vec<Value>)>) {
    let head = json_of(&admin(
        host,
        "GET",
        "/admin/export?include_secrets=true",
        json!(null),
    ));
    assert_eq!(head["format"], "edgeid-export");
    assert_eq!(head["version"], 1);
    let mut tables = Vec::new();
    for t in head["tables"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let path =
                format!("/admin/export?include_secrets=true&table={t}&after={after}&limit=2");
            let page = json_of(&admin(host, "GET", &path, json!(null)));
            rows.extend(page["rows"].as_array().unwrap().iter().cloned());
            match page["next"].as_i64() {
                Some(n) => after = n,
                None => break,
            }
        }
        tables.push((t.to_owned(), rows));
    }
    (head, tables)
}

fn import_all(host: &MemoryHost, tables: &[(String, Vec<Value>)]) -> (u64, u64, u64, u64) {
    let mut total = (0, 0, 0, 0);
    for (t, rows) in tables {
        let r = import(
            host,
            "edgeid",
            json!({"format": "edgeid-export", "version": 1, "table": t, "rows": rows}),
        );
        let c = counts(&r);
        total = (total.0 + c.0, total.1 + c.1, total.2 + c.2, total.3 + c.3);
    }
    total
}

#[test]
fn issue10_export_then_import_moves_a_deployment_tokens_passwords_and_secrets_keep_working() {
    let (a, sub) = setup(json!({}));
    let browser = Browser::new(&a);
    let code = first_login(&a, &browser);
    let tokens = json_of(&redeem(&a, &code));
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (_, tables) = export_all(&a);
    let row_count = |name: &str| tables.iter().find(|(t, _)| t == name).unwrap().1.len();
    assert_eq!(row_count("users"), 1);
    assert_eq!(row_count("password_credentials"), 1);
    assert_eq!(
        row_count("signing_keys"),
        4,
        "current and next of ES256 and RS256"
    );
    assert_eq!(row_count("consents"), 1);

    // Another host, same key-encryption key, its own signing keys.
    let b = other_host(4242);
    let first = import_all(&b, &tables);
    assert_eq!(first.3, 0, "nothing refused: {first:?}");
    assert!(first.0 >= 8, "{first:?}");
    let second = import_all(&b, &tables);
    assert_eq!(
        (second.0, second.1, second.3),
        (0, 0, 0),
        "a second run changes nothing"
    );

    // The ID token issued by A verifies against B's JWKS.
    let jwks = json_of(&send(&b, "GET", "/.well-known/jwks.json", &[], ""));
    let keys: Vec<edgeid::jose::Jwk> = serde_json::from_value(jwks["keys"].clone()).unwrap();
    let verified = edgeid::jose::verify(&id_token, &keys).expect("verifies on the new host");
    assert_eq!(verified.claims["sub"], sub);
    // B's own earlier keys are still published (retired), and B signs with A's key.
    assert_eq!(keys.len(), 8, "{jwks}");
    // The access token works at B's userinfo, the refresh token at B's token endpoint.
    let info = userinfo(&b, &access_token);
    assert_eq!(info.status(), 200, "{}", text(&info));
    assert_eq!(json_of(&info)["sub"], sub);
    let refreshed = token(
        &b,
        &format!("grant_type=refresh_token&refresh_token={refresh_token}"),
    );
    assert_eq!(refreshed.status(), 200, "{}", text(&refreshed));
    let new_id = json_of(&refreshed)["id_token"].as_str().unwrap().to_owned();
    assert_eq!(
        edgeid::jose::verify(&new_id, &keys).unwrap().kid,
        verified.kid,
        "B signs with the key A published"
    );

    // Alice signs in on B with her password (consent remembered), the client authenticates
    // with its secret (`redeem` uses Basic rp:rp-secret-123), and the sub is the same.
    let browser = Browser::new(&b);
    let resp = browser.get(&authorize_url(""));
    let resp = browser.login(&resp, "alice", "wonderland-42");
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let code = callback(&resp)["code"].clone();
    let tokens = redeem(&b, &code);
    assert_eq!(tokens.status(), 200, "{}", text(&tokens));
    let id = json_of(&tokens)["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&id)["sub"], sub);

    // Importing the (older) export again does not make the refresh token B has rotated
    // usable again: single-use marks never move backwards.
    let third = import_all(&b, &tables);
    assert_eq!(third.3, 0, "{third:?}");
    let replay = token(
        &b,
        &format!("grant_type=refresh_token&refresh_token={refresh_token}"),
    );
    assert_eq!(replay.status(), 400, "{}", text(&replay));
}

#[test]
fn issue10_export_serves_secrets_only_when_asked_and_a_different_kek_refuses_sealed_rows() {
    let (a, sub) = setup(json!({}));
    // Alice has an authenticator app.
    let secret = *b"twenty-byte-secret!!";
    assert!(
        block_on(edgeid::totp::enroll(
            &a,
            &sub,
            &secret,
            1,
            &[],
            1_700_000_000
        ))
        .unwrap()
    );
    // Admin token only.
    let resp = send(&a, "GET", "/admin/export?include_secrets=true", &[], "");
    assert_eq!(resp.status(), 401);
    // Without include_secrets: no secret columns, no secret-only tables.
    let head = json_of(&admin(&a, "GET", "/admin/export", json!(null)));
    assert!(
        !head["tables"].to_string().contains("password_credentials"),
        "{head}"
    );
    let resp = admin(
        &a,
        "GET",
        "/admin/export?table=password_credentials",
        json!(null),
    );
    assert_eq!(resp.status(), 400);
    let keys = json_of(&admin(
        &a,
        "GET",
        "/admin/export?table=signing_keys",
        json!(null),
    ));
    assert!(!keys.to_string().contains("private_sealed"), "{keys}");
    assert!(keys["rows"][0]["public_jwk"].is_string());
    let clients = json_of(&admin(
        &a,
        "GET",
        "/admin/export?table=clients",
        json!(null),
    ));
    assert!(
        !clients.to_string().contains("client_secret_sha256"),
        "{clients}"
    );
    // Such rows cannot create keys elsewhere.
    let b = other_host(7);
    let r = import(
        &b,
        "edgeid",
        json!({"format": "edgeid-export", "version": 1, "table": "signing_keys",
               "rows": keys["rows"], "dry_run": true}),
    );
    assert_eq!(r["refused"], 4, "{r}");

    // With the same key-encryption key the TOTP secret moves and opens.
    let (_, tables) = export_all(&a);
    let rows = |name: &str| tables.iter().find(|(t, _)| t == name).unwrap().1.clone();
    let same = other_host(11);
    for t in ["users", "user_factors", "totp_credentials"] {
        let r = import(
            &same,
            "edgeid",
            json!({"format": "edgeid-export", "version": 1, "table": t, "rows": rows(t)}),
        );
        assert_eq!(
            (r["created"].as_u64(), r["refused"].as_u64()),
            (Some(1), Some(0)),
            "{t}: {r}"
        );
    }
    let moved = block_on(edgeid::totp::load(&same, &sub)).unwrap().unwrap();
    assert_eq!(moved.secret, secret);
    assert!(block_on(edgeid::totp::enrolled(&same.sql, &sub)).unwrap());

    // A host with another key-encryption key cannot open the sealed keys or TOTP secrets:
    // refused, not stored.
    let mut c = block_on(MemoryHost::new());
    c.vars.insert("key_encryption_key".into(), b64(&[9u8; 32]));
    let keys_rows = &tables.iter().find(|(t, _)| t == "signing_keys").unwrap().1;
    let r = import(
        &c,
        "edgeid",
        json!({"format": "edgeid-export", "version": 1, "table": "signing_keys", "rows": keys_rows}),
    );
    assert_eq!(r["refused"], 4, "{r}");
    import(
        &c,
        "edgeid",
        json!({"format": "edgeid-export", "version": 1, "table": "users", "rows": rows("users")}),
    );
    let totp = import(
        &c,
        "edgeid",
        json!({"format": "edgeid-export", "version": 1, "table": "totp_credentials",
               "rows": rows("totp_credentials")}),
    );
    assert_eq!(totp["refused"], 1, "{totp}");
    assert!(block_on(edgeid::totp::load(&c, &sub)).unwrap().is_none());
    assert!(
        r["results"][0]["reason"]
            .to_string()
            .contains("key_encryption_key"),
        "{r}"
    );
    // Another format or version is refused outright.
    let resp = admin(
        &c,
        "POST",
        "/admin/import/edgeid",
        json!({"format": "edgeid-export", "version": 2, "table": "users", "rows": []}),
    );
    assert_eq!(resp.status(), 400);
}
