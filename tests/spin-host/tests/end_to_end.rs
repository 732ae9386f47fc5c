//! The test host serving the real edgeid components from the repository's `spin.toml`.
//!
//! Skipped, with a message, when the components are not built: build them with the xtask's
//! Spin build, which copies them to `target/wasm32-wasip2/release/` where `spin.toml` points.

mod common;

use common::{repo_root, request, start, temp_dir};

const COMPONENTS: [&str; 6] = [
    "edgeid_discovery",
    "edgeid_authorize",
    "edgeid_token",
    "edgeid_userinfo",
    "edgeid_login",
    "edgeid_admin",
];

#[test]
fn serves_the_edgeid_components() -> anyhow::Result<()> {
    let root = repo_root();
    let built = root.join("target/wasm32-wasip2/release");
    let missing: Vec<_> = COMPONENTS
        .iter()
        .filter(|c| !built.join(format!("{c}.wasm")).is_file())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED serves_the_edgeid_components: {missing:?} not built in {} \
             (build the Spin components first with the xtask's spin build)",
            built.display()
        );
        return Ok(());
    }

    let mut migrations: Vec<_> = std::fs::read_dir(root.join("infra/migrations"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    migrations.sort();
    let mut args: Vec<String> = migrations
        .iter()
        .flat_map(|m| ["--sqlite".to_owned(), format!("@{}", m.display())])
        .collect();
    // login and admin declare `credentials`: the host starts only with a runtime config for it.
    let state_dir = temp_dir("e2e")?;
    let credentials_db = state_dir.join("credentials.db");
    let runtime_config = state_dir.join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!("[sqlite_database.credentials]\ntype = \"spin\"\npath = {credentials_db:?}\n"),
    )?;
    args.extend([
        "--runtime-config-file".to_owned(),
        runtime_config.display().to_string(),
    ]);
    let host = start(
        &root.join("spin.toml"),
        state_dir,
        &args,
        &[
            ("SPIN_VARIABLE_ISSUER", "http://{addr}".to_owned()),
            ("SPIN_VARIABLE_ADMIN_TOKEN", "e2e-admin-token".to_owned()),
            // base64url of 32 zero bytes: a valid key-encryption key for a throwaway state.
            ("SPIN_VARIABLE_KEY_ENCRYPTION_KEY", "A".repeat(43)),
        ],
    )?;
    let addr = host.addr.clone();

    let r = request(&addr, "GET", "/.well-known/openid-configuration", &[])?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{r:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&r.body)?;
    assert_eq!(doc["issuer"], format!("http://{addr}"));
    assert_eq!(doc["token_endpoint"], format!("http://{addr}/oauth2/token"));

    let unrouted = request(&addr, "GET", "/no/such/route", &[])?;
    assert_eq!(
        (unrouted.status, unrouted.text().as_str()),
        (404, "Not Found\n")
    );

    // Each function's paths reach a component (whatever the core answers there), never the
    // host's own 404 for an unrouted path.
    for path in [
        "/oauth2/auth",
        "/oauth2/revoke",
        "/oauth2/introspect",
        "/userinfo",
        "/login",
        "/consent",
        "/logout",
        "/oauth2/sessions/logout",
        "/assets/x",
    ] {
        let r = request(&addr, "GET", path, &[])?;
        assert!(
            r.text() != unrouted.text(),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }

    // admin_token reached the admin component (and only the core decides on it).
    let r = request(
        &addr,
        "GET",
        "/admin/keys",
        &[("authorization", "Bearer wrong")],
    )?;
    assert_eq!(r.status, 401);
    let r = request(
        &addr,
        "GET",
        "/admin/keys",
        &[("authorization", "Bearer e2e-admin-token")],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());

    assert!(host.state_dir.join("sqlite_db.db").is_file());
    assert!(host.state_dir.join("sqlite_key_value.db").is_file());
    assert!(credentials_db.is_file());
    Ok(())
}
