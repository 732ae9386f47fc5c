//! What a component may touch: undeclared stores are `access-denied`, variables resolve from
//! `SPIN_VARIABLE_*` then the manifest default and only where the component maps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgeid_spin_host::host::{Grants, key_value, sqlite, variables};
use edgeid_spin_host::manifest::App;
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
    let dir = temp_dir("grants")?;
    let stores = open_stores(&app, &dir)?;

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
    assert!(credentials.path().ends_with("credentials.db"));
    assert!(matches!(
        admin.sqlite("other", &stores),
        Err(sqlite::Error::AccessDenied)
    ));
    assert!(dir.join("sqlite_key_value.db").is_file());

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
    let opened = open_stores(&app, &dir);
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
