//! Issue 10, black box: the Hydra and Stackspin fixtures imported through the admin API on any
//! host (ids made unique per run, so the suite can run twice against one host). A second run
//! changes nothing, a dry run writes nothing, unsupported fields and missing secrets are
//! reported, the imported clients authenticate with their old secrets.

use edgeid_suite::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/migration")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture")).expect("JSON")
}

fn import(kind: &str, body: Value) -> Value {
    let resp = admin("POST", &format!("/import/{kind}"), Some(body));
    assert_eq!(resp.status, 200, "import {kind}: {}", resp.text());
    resp.json()
}

fn outcome<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}: {report}"))
}

fn counts(report: &Value) -> [u64; 4] {
    ["created", "updated", "unchanged", "refused"].map(|k| report[k].as_u64().unwrap_or(99))
}

/// The Hydra fixture with every client_id (and owner) prefixed by `run`, and its secrets.
fn hydra_fixture(run: &str) -> (Vec<Value>, Value) {
    let clients: Vec<Value> = fixture("hydra-clients.json")
        .as_array()
        .expect("an array")
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["client_id"] = format!("{run}-{}", c["client_id"].as_str().unwrap_or("")).into();
            if let Some(o) = c["owner"].as_str().filter(|o| !o.is_empty()) {
                c["owner"] = format!("{run}-{o}").into();
            }
            c
        })
        .collect();
    let mut secrets = serde_json::Map::new();
    for s in fixture("hydra-client-secrets.json")
        .as_array()
        .expect("an array")
    {
        secrets.insert(
            format!("{run}-{}", s["client_id"].as_str().unwrap_or("")),
            s["client_secret"].clone(),
        );
    }
    (clients, Value::Object(secrets))
}

#[test]
fn issue10_hydra_fixture_imports_through_the_admin_api_and_a_second_run_changes_nothing() {
    let run = unique("hy");
    let (clients, secrets) = hydra_fixture(&run);
    let exporter = format!("{run}-monitoring-exporter");

    let dry = import("hydra", json!({"dry_run": true, "clients": clients}));
    assert_eq!(counts(&dry), [5, 0, 0, 0], "{dry}");
    assert_eq!(
        admin("GET", &format!("/clients/{exporter}"), None).status,
        404,
        "dry run"
    );

    let first = import("hydra", json!({"clients": clients}));
    assert_eq!(counts(&first), [5, 0, 0, 0], "{first}");
    let notes = outcome(&first, &exporter)["notes"].to_string();
    assert!(notes.contains("needs a secret"), "{notes}");
    assert!(
        notes.contains("client_credentials_grant_access_token_lifespan"),
        "{notes}"
    );
    let zulip = admin("GET", &format!("/clients/{run}-zulip"), None).json();
    assert_eq!(zulip["skip_consent"], true);
    assert_eq!(
        zulip["owner"],
        format!("{run}-zulip-oauth-client/stackspin-apps")
    );

    let again = import("hydra", json!({"clients": clients}));
    assert_eq!(counts(&again), [0, 0, 5, 0], "{again}");

    let with = import("hydra", json!({"clients": clients, "secrets": secrets}));
    assert_eq!(counts(&with), [0, 4, 1, 0], "{with}");
    let with_again = import("hydra", json!({"clients": clients, "secrets": secrets}));
    assert_eq!(counts(&with_again), [0, 0, 5, 0], "{with_again}");

    // The imported client authenticates with the secret it had in Hydra.
    let secret = secrets[&exporter].as_str().unwrap_or_default();
    let resp = token(
        Some(&basic(&exporter, secret)),
        "grant_type=client_credentials&scope=stackspin.users.read",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let at = resp.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let claims = verify_access_token(
        &at,
        &jwks(),
        "https://dashboard.stackspin.example.org/api/v1",
    );
    assert_eq!(claims["sub"], exporter.as_str());
    let wrong = token(
        Some(&basic(&exporter, "not-the-secret")),
        "grant_type=client_credentials",
    );
    assert_eq!(wrong.status, 401);
}

/// Users with chosen ids (as `import kratos` keeps Kratos ids), made through the edgeid
/// import route.
fn users_with_ids(ids: &[String]) {
    let rows: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "email": format!("{id}@example.test"), "username": id,
                   "name": "Imported", "given_name": "", "family_name": "",
                   "email_verified": 1, "is_admin": 0, "disabled": 0,
                   "created_at": 1, "updated_at": 1})
        })
        .collect();
    let r = import(
        "edgeid",
        json!({"format": "edgeid-export", "version": 1, "table": "users", "rows": rows}),
    );
    assert_eq!(r["refused"], 0, "{r}");
}

fn roles_of(user: &str) -> Vec<(String, String)> {
    let resp = admin("GET", &format!("/users/{user}/roles"), None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| {
            (
                r["app"].as_str().unwrap_or("").to_owned(),
                r["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn issue10_stackspin_fixture_becomes_apps_and_roles_no_access_is_no_role() {
    let run = unique("ss");
    let mut body = fixture("stackspin-roles.json");
    // Unique users and slugs for this run.
    let mut ids = std::collections::BTreeMap::new();
    for row in body["app_role"].as_array_mut().expect("app_role") {
        let kratos = row["user_id"].as_str().unwrap_or("").to_owned();
        let n = ids.len();
        let mine = ids
            .entry(kratos)
            .or_insert_with(|| format!("{run}-u{n}"))
            .clone();
        row["user_id"] = mine.into();
    }
    for app in body["app"].as_array_mut().expect("app") {
        app["slug"] = format!("{run}-{}", app["slug"].as_str().unwrap_or("")).into();
    }
    for link in body["oauthclient_app"]
        .as_array_mut()
        .expect("oauthclient_app")
    {
        link["oauthclient_id"] =
            format!("{run}-{}", link["oauthclient_id"].as_str().unwrap_or("")).into();
    }
    body["domain"] = "stackspin.example.org".into();
    let jan = ids["a60af083-a7ef-450c-b687-10d09ecc411c"].clone();
    let kees = ids["064435f7-ad13-4bce-886c-4fcb6aaa79e3"].clone();

    // Roles of users edgeid does not know are refused; the apps go in.
    let early = import("stackspin", body.clone());
    assert_eq!(early["refused"], 10, "{early}");
    assert!(
        outcome(&early, &jan)["reason"]
            .to_string()
            .contains("import kratos")
    );
    let users: Vec<String> = ids.values().cloned().collect();
    users_with_ids(&users);

    body["dry_run"] = true.into();
    let dry = import("stackspin", body.clone());
    assert_eq!(dry["refused"], 0, "{dry}");
    assert!(roles_of(&jan).is_empty(), "a dry run writes nothing");
    body["dry_run"] = false.into();

    let first = import("stackspin", body.clone());
    assert_eq!(first["refused"], 0, "{first}");
    let slug = |s: &str| format!("{run}-{s}");
    let mut want = vec![
        (slug("dashboard"), "user".to_owned()),
        (slug("hedgedoc"), "user".to_owned()),
        (slug("nextcloud"), "admin".to_owned()),
        (slug("wekan"), "user".to_owned()),
        (slug("zulip"), "user".to_owned()),
    ];
    want.sort();
    assert_eq!(roles_of(&jan), want, "no role on wordpress (no access)");
    assert!(roles_of(&kees).is_empty(), "no access everywhere");
    let app = admin("GET", &format!("/apps/{}", slug("wekan")), None).json();
    assert_eq!(
        app["url"],
        format!("https://{}.stackspin.example.org/", slug("wekan"))
    );
    assert_eq!(app["name"], "Wekan");

    let again = import("stackspin", body.clone());
    assert_eq!(
        (
            again["created"].as_u64(),
            again["updated"].as_u64(),
            again["refused"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{again}"
    );
}
