//! The test host seen from inside a guest: the probe fixture component
//! (`fixtures/probe`) reports what the host granted it, which `spin-*` headers it got, and
//! traps on request.
//!
//! Skipped, with a message, when the probe is not built:
//!
//! ```text
//! CARGO_TARGET_DIR=$HOME/.cache/edgeid/target-spin cargo build --release \
//!   --target wasm32-wasip2 --manifest-path tests/spin-host/fixtures/probe/Cargo.toml
//! ```
//! (`EDGEID_SPIN_PROBE_WASM` points the test at another build.)

mod common;

use std::path::PathBuf;

use common::{request, start, temp_dir};

fn probe_wasm() -> PathBuf {
    if let Some(path) = std::env::var_os("EDGEID_SPIN_PROBE_WASM") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/edgeid/target-spin/wasm32-wasip2/release/edgeid_spin_host_probe.wasm")
}

fn manifest(wasm: &std::path::Path) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "probe"
[variables]
greeting = {{ default = "hello" }}
secret = {{ required = true, secret = true }}

[[trigger.http]]
route = "/probe/..."
component = "probe"
[[trigger.http]]
route = "/probe/exact"
component = "probe"
[[trigger.http]]
route = "/bare/..."
component = "bare"
[[trigger.http]]
route = "/vault/..."
component = "vault"

[component.probe]
source = {wasm:?}
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.probe.variables]
greeting = "{{{{ greeting }}}}, world"
secret = "{{{{ secret }}}}"

[component.bare]
source = {wasm:?}

[component.vault]
source = {wasm:?}
sqlite_databases = ["default", "credentials"]
"#
    )
}

#[test]
fn guest_sees_spin_semantics() -> anyhow::Result<()> {
    let wasm = probe_wasm();
    if !wasm.is_file() {
        eprintln!(
            "SKIPPED guest_sees_spin_semantics: {} not built (see this file's header)",
            wasm.display()
        );
        return Ok(());
    }
    let dir = temp_dir("probe")?;
    let manifest_path = dir.join("spin.toml");
    std::fs::write(&manifest_path, manifest(&wasm))?;
    // `credentials` exists only through the runtime config, in a file of its choosing.
    let credentials_db = dir.join("elsewhere").join("credentials.db");
    let runtime_config = dir.join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!("[sqlite_database.credentials]\ntype = \"spin\"\npath = {credentials_db:?}\n"),
    )?;
    let host = start(
        &manifest_path,
        dir.join("state"),
        &[
            "--runtime-config-file".to_owned(),
            runtime_config.display().to_string(),
        ],
        &[
            ("SPIN_VARIABLE_SECRET", "s3cret".to_owned()),
            ("SPIN_VARIABLE_GREETING", "hi".to_owned()),
        ],
    )?;
    let addr = host.addr.clone();
    let get = |path: &str| -> anyhow::Result<(u16, String)> {
        let r = request(&addr, "GET", path, &[])?;
        Ok((r.status, r.text()))
    };

    // Declared stores work, everything else is access-denied.
    assert_eq!(get("/probe/kv/default")?, (200, "ok Some([49])".to_owned()));
    assert_eq!(
        get("/probe/kv/cache")?,
        (200, "Error::AccessDenied".to_owned())
    );
    assert_eq!(
        get("/probe/sqlite/default")?,
        (200, "ok Some(42)".to_owned())
    );
    // `credentials` exists (vault declares it) but probe did not declare it.
    assert_eq!(
        get("/probe/sqlite/credentials")?,
        (200, "Error::AccessDenied".to_owned())
    );
    assert_eq!(
        get("/vault/sqlite/credentials")?,
        (200, "ok Some(42)".to_owned())
    );
    assert!(credentials_db.is_file(), "{}", credentials_db.display());
    assert!(!host.state_dir.join("credentials.db").exists());
    assert_eq!(
        get("/bare/kv/default")?,
        (200, "Error::AccessDenied".to_owned())
    );
    assert_eq!(
        get("/bare/sqlite/default")?,
        (200, "Error::AccessDenied".to_owned())
    );

    // Variables: the environment wins over the default, templates expand, and a component
    // sees only the names it maps.
    assert_eq!(
        get("/probe/var/greeting")?,
        (200, "ok hi, world".to_owned())
    );
    assert_eq!(get("/probe/var/secret")?, (200, "ok s3cret".to_owned()));
    let (_, undefined) = get("/bare/var/secret")?;
    assert!(undefined.starts_with("Error::Undefined("), "{undefined}");
    let (_, invalid) = get("/probe/var/Not-Valid")?;
    assert!(invalid.starts_with("Error::InvalidName("), "{invalid}");

    // Spin's request headers, for an exact route and for a wildcard.
    let (_, exact) = get("/probe/exact")?;
    assert!(
        exact.contains("spin-matched-route: /probe/exact\n"),
        "{exact}"
    );
    assert!(exact.contains("spin-path-info: \n"), "{exact}");
    let (_, wild) = get("/probe/x/y?q=1")?;
    for line in [
        "spin-matched-route: /probe/...".to_owned(),
        "spin-raw-component-route: /probe/...".to_owned(),
        "spin-component-route: /probe".to_owned(),
        "spin-path-info: /x/y".to_owned(),
        "spin-base-path: /".to_owned(),
        format!("spin-full-url: http://{addr}/probe/x/y?q=1"),
        format!("uri: http://{addr}/probe/x/y?q=1"),
    ] {
        assert!(
            wild.lines().any(|l| l == line),
            "missing {line:?} in\n{wild}"
        );
    }

    // A trapping guest costs its own request a 500; the host keeps serving.
    assert_eq!(get("/probe/trap")?.0, 500);
    assert_eq!(get("/probe/kv/default")?.0, 200);
    assert_eq!(get("/nothing/here")?.0, 404);

    drop(host);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
