//! What a component may touch: undeclared stores are `access-denied`, variables resolve from
//! `SPIN_VARIABLE_*` then the manifest default and only where the component maps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgeid_spin_host::host::{Grants, key_value, sqlite, variables};
use edgeid_spin_host::manifest::App;
use edgeid_spin_host::runtime_config::RuntimeConfig;
use edgeid_spin_host::server::open_stores;
use edgeid_spin_host::variables::resolve_component;

const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
issuer = { default = "http://127.0.0.1:3000" }
admin_token = { required = true, secret = true }
ttl = { default = "900" }

[[trigger.http]]
route = "/pub"
component = "public"
[component.public]
source = "p.wasm"
key_value_stores = ["default"]
[component.public.variables]
issuer = "{{ issuer }}"
discovery_url = "{{ issuer }}/.well-known/openid-configuration"

[[trigger.http]]
route = "/admin/..."
component = "admin"
[component.admin]
source = "a.wasm"
sqlite_databases = ["default", "credentials"]
key_value_stores = ["default"]
[component.admin.variables]
admin_token = "{{ admin_token }}"
ttl = "{{ ttl }}"

[[trigger.http]]
route = "/oauth2/token"
component = "token"
[component.token]
source = "t.wasm"
sqlite_databases = ["default"]
"#;

fn app() -> anyhow::Result<App> {
    App::parse(MANIFEST, Path::new("."))
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn grants(app: &App, id: &str, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Grants> {
    let c = &app.components[id];
    Ok(Grants {
        component: id.to_owned(),
        key_value_stores: c.key_value_stores.clone(),
        sqlite_databases: c.sqlite_databases.clone(),
        variables: resolve_component(app, id, env)?,
    })
}

/// The runtime config that defines `credentials`, in `dir` (as infra/spin/runtime-config.toml
/// does for `.spin/`).
fn runtime_config(dir: &Path) -> anyhow::Result<RuntimeConfig> {
    RuntimeConfig::parse(
        "[sqlite_database.credentials]\ntype = \"spin\"\npath = \"creds/credentials.db\"\n",
        dir,
    )
}

fn temp_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("edgeid-spin-host-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[test]
fn undeclared_stores_are_access_denied() -> anyhow::Result<()> {
    let app = app()?;
    let env = env(&[("SPIN_VARIABLE_ADMIN_TOKEN", "t")]);
    let public = grants(&app, "public", &env)?;
    let admin = grants(&app, "admin", &env)?;
    let token = grants(&app, "token", &env)?;
    let dir = temp_dir("grants")?;
    let stores = open_stores(&app, &dir, &runtime_config(&dir)?)?;

    assert!(public.key_value("default").is_ok());
    assert!(matches!(
        public.key_value("cache"),
        Err(key_value::Error::AccessDenied)
    ));
    // `default` exists (admin declares it) but public did not declare it.
    assert!(matches!(
        public.sqlite("default", &stores),
        Err(sqlite::Error::AccessDenied)
    ));
    assert!(matches!(
        public.sqlite("credentials", &stores),
        Err(sqlite::Error::AccessDenied)
    ));

    let default = admin
        .sqlite("default", &stores)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(default.path().ends_with("sqlite_db.db"));
    let credentials = admin
        .sqlite("credentials", &stores)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(credentials.path(), dir.join("creds/credentials.db"));
    // The credentials database exists, yet a component that declared only `default` is
    // denied it: least privilege holds per component, not per database.
    assert!(token.sqlite("default", &stores).is_ok());
    assert!(matches!(
        token.sqlite("credentials", &stores),
        Err(sqlite::Error::AccessDenied)
    ));
    assert!(matches!(
        admin.sqlite("other", &stores),
        Err(sqlite::Error::AccessDenied)
    ));
    assert!(dir.join("sqlite_key_value.db").is_file());

    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn sqlite_label_without_runtime_config_fails_at_start() -> anyhow::Result<()> {
    let app = app()?;
    let dir = temp_dir("nolabel")?;
    let opened = open_stores(&app, &dir, &RuntimeConfig::default());
    std::fs::remove_dir_all(&dir)?;
    let err = opened.err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("credentials")),
        "Spin refuses a SQLite label no runtime config defines: {err:?}"
    );
    Ok(())
}

#[test]
fn runtime_config_may_move_default() -> anyhow::Result<()> {
    let app = app()?;
    let dir = temp_dir("movedefault")?;
    let config = RuntimeConfig::parse(
        "[sqlite_database.default]\ntype = \"spin\"\npath = \"main.db\"\n\
         [sqlite_database.credentials]\ntype = \"spin\"\npath = \"c.db\"\n",
        &dir,
    )?;
    let stores = open_stores(&app, &dir, &config)?;
    assert_eq!(stores.sqlite["default"].path(), dir.join("main.db"));
    assert!(!dir.join("sqlite_db.db").exists());
    drop(stores);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn undeclared_kv_label_fails_at_start() -> anyhow::Result<()> {
    let text = MANIFEST.replacen(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"default\", \"sessions\"]",
        1,
    );
    let app = App::parse(&text, Path::new("."))?;
    let dir = temp_dir("kvlabel")?;
    let opened = open_stores(&app, &dir, &runtime_config(&dir)?);
    std::fs::remove_dir_all(&dir)?;
    assert!(
        opened.is_err(),
        "Spin refuses a KV label it has no store for"
    );
    Ok(())
}

#[test]
fn variables_come_from_env_then_default() -> anyhow::Result<()> {
    let app = app()?;
    let defaults = grants(&app, "public", &env(&[("SPIN_VARIABLE_ADMIN_TOKEN", "t")]))?;
    assert_eq!(
        defaults.variable("issuer").ok().as_deref(),
        Some("http://127.0.0.1:3000")
    );
    assert_eq!(
        defaults.variable("discovery_url").ok().as_deref(),
        Some("http://127.0.0.1:3000/.well-known/openid-configuration")
    );

    let overridden = grants(
        &app,
        "public",
        &env(&[("SPIN_VARIABLE_ISSUER", "https://id.example")]),
    )?;
    assert_eq!(
        overridden.variable("issuer").ok().as_deref(),
        Some("https://id.example")
    );
    Ok(())
}

#[test]
fn variables_are_visible_only_where_mapped() -> anyhow::Result<()> {
    let app = app()?;
    let env = env(&[("SPIN_VARIABLE_ADMIN_TOKEN", "secret")]);
    let public = grants(&app, "public", &env)?;
    let admin = grants(&app, "admin", &env)?;
    assert_eq!(
        admin.variable("admin_token").ok().as_deref(),
        Some("secret")
    );
    assert_eq!(admin.variable("ttl").ok().as_deref(), Some("900"));
    assert!(matches!(
        public.variable("admin_token"),
        Err(variables::Error::Undefined(_))
    ));
    assert!(matches!(
        public.variable("Admin-Token"),
        Err(variables::Error::InvalidName(_))
    ));
    Ok(())
}

#[test]
fn missing_required_variable_fails_at_start_naming_the_env_var() -> anyhow::Result<()> {
    let app = app()?;
    let err = resolve_component(&app, "admin", &env(&[]))
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("SPIN_VARIABLE_ADMIN_TOKEN")),
        "{err:?}"
    );
    // A component that does not map the variable starts fine without it.
    assert!(resolve_component(&app, "public", &env(&[])).is_ok());
    Ok(())
}
