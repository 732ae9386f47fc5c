//! The test host serving the real edgeid components from the repository's `spin.toml`.
//!
//! Skipped, with a message, when the components are not built: build them with the xtask's
//! Spin build, which copies them to `target/wasm32-wasip2/release/` where `spin.toml` points.

mod common;

use common::{repo_root, request, start, temp_dir};

const COMPONENTS: [&str; 3] = ["edgeid_discovery", "edgeid_token", "edgeid_admin"];

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
    let args: Vec<String> = migrations
        .iter()
        .flat_map(|m| ["--sqlite".to_owned(), format!("@{}", m.display())])
        .collect();
    let host = start(
        &root.join("spin.toml"),
        temp_dir("e2e")?,
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

    assert_eq!(request(&addr, "GET", "/no/such/route", &[])?.status, 404);

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
    Ok(())
}
