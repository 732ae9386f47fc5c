//! The subset of Spin's application manifest (`spin.toml`, `spin_manifest_version = 2`) that
//! the test host serves: HTTP triggers, components with their stores and variables, and
//! application variables.
//!
//! Anything else a manifest may say (files, outbound hosts, other trigger types, inline
//! components) is refused at load time rather than silently ignored: a test host that quietly
//! drops a grant would let a component pass here and fail under the real `spin up`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::routing::{Route, Router};
use crate::variables::Template;

/// A loaded, checked manifest.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// Application variables by name (`[variables]`).
    pub variables: BTreeMap<String, Variable>,
    /// Components by id, in manifest order of their ids.
    pub components: BTreeMap<String, Component>,
    pub router: Router,
}

/// An application variable (`[variables] name = { default = "...", required = true, secret = true }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// A component and what it was granted.
#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    /// The `.wasm` file, resolved against the manifest's directory.
    pub source: PathBuf,
    /// `key_value_stores`: the KV labels this component may open.
    pub key_value_stores: Vec<String>,
    /// `sqlite_databases`: the SQLite labels this component may open.
    pub sqlite_databases: Vec<String>,
    /// `[component.X.variables]`: component variable name → template over application variables.
    pub variables: BTreeMap<String, Template>,
    /// `environment`: environment variables the guest sees.
    pub environment: BTreeMap<String, String>,
}

impl App {
    /// Reads and checks `spin.toml`.
    pub fn load(path: &Path) -> anyhow::Result<App> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        App::parse(&text, base).with_context(|| format!("in manifest {}", path.display()))
    }

    /// Parses manifest text; relative `source` paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<App> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version = {} is not supported (only 2)",
                raw.spin_manifest_version
            );
        }
        for (name, var) in &raw.variables {
            check_variable_name(name).with_context(|| format!("[variables] {name}"))?;
            if var.required && var.default.is_some() {
                bail!("variable {name:?} cannot be both required and have a default");
            }
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            components.insert(id.clone(), c.check(&id, base, &raw.variables)?);
        }

        let mut routes = Vec::new();
        for (kind, triggers) in &raw.trigger {
            if kind != "http" {
                bail!("trigger type {kind:?} is not supported by the test host (only http)");
            }
            for t in triggers {
                let component = t.component.as_str().with_context(|| {
                    format!(
                        "trigger route {:?}: inline components are not supported",
                        t.route
                    )
                })?;
                if !components.contains_key(component) {
                    bail!(
                        "trigger route {:?} names unknown component {component:?}",
                        t.route
                    );
                }
                if let Some(executor) = &t.executor
                    && executor.kind != "spin"
                {
                    bail!("executor {:?} is not supported (only spin)", executor.kind);
                }
                match &t.route {
                    RawRoute::Route(r) => routes.push(Route::parse(r, component)?),
                    // A private endpoint is reachable only through service chaining, which
                    // edgeid does not use: it simply gets no route.
                    RawRoute::Private { private: true } => {}
                    RawRoute::Private { private: false } => {
                        bail!("component {component:?}: route {{ private = false }} is not valid")
                    }
                }
            }
        }
        let router = Router::new(routes);

        Ok(App {
            name: raw.application.name,
            variables: raw.variables,
            components,
            router,
        })
    }
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and underscores, starting
/// with a letter. Names map 1:1 to `SPIN_VARIABLE_<UPPER>` environment variables.
pub fn check_variable_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_with_letter
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!(
            "invalid variable name {name:?}: use lower-case letters, digits and '_', starting with a letter"
        );
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<RawTrigger>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
struct RawApplication {
    name: String,
    // version, description, authors: informational only.
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    #[allow(dead_code, reason = "Spin's optional trigger id; accepted, not used")]
    id: Option<String>,
    route: RawRoute,
    component: toml::Value,
    #[serde(default)]
    executor: Option<RawExecutor>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Route(String),
    Private { private: bool },
}

#[derive(Debug, Deserialize)]
struct RawExecutor {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    #[allow(dead_code, reason = "informational")]
    description: Option<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    files: Vec<toml::Value>,
    #[serde(default)]
    #[allow(dead_code, reason = "used by `spin build`, not by the host")]
    build: Option<toml::Value>,
}

impl RawComponent {
    fn check(
        self,
        id: &str,
        base: &Path,
        app_vars: &BTreeMap<String, Variable>,
    ) -> anyhow::Result<Component> {
        let Some(source) = self.source.as_str() else {
            bail!("component {id:?}: only a local file `source` is supported");
        };
        if !self.allowed_outbound_hosts.is_empty() {
            bail!("component {id:?}: allowed_outbound_hosts is not supported by the test host");
        }
        if !self.files.is_empty() {
            bail!("component {id:?}: files are not supported by the test host");
        }
        let mut variables = BTreeMap::new();
        for (name, template) in self.variables {
            check_variable_name(&name).with_context(|| format!("component {id:?}"))?;
            let template = Template::parse(&template)
                .with_context(|| format!("component {id:?} variable {name:?}"))?;
            for reference in template.references() {
                if !app_vars.contains_key(reference) {
                    bail!(
                        "component {id:?} variable {name:?} refers to undefined application variable {reference:?}"
                    );
                }
            }
            variables.insert(name, template);
        }
        Ok(Component {
            id: id.to_owned(),
            source: base.join(source),
            key_value_stores: self.key_value_stores,
            sqlite_databases: self.sqlite_databases,
            variables,
            environment: self.environment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "demo"

[variables]
issuer = { default = "http://localhost" }
token = { required = true, secret = true }

[[trigger.http]]
route = "/a/..."
component = "a"

[component.a]
source = "a.wasm"
key_value_stores = ["default"]
[component.a.variables]
issuer = "{{ issuer }}"
[component.a.build]
command = "cargo build"
"#;

    #[test]
    fn parses_components_routes_and_variables() -> anyhow::Result<()> {
        let app = App::parse(MANIFEST, Path::new("/app"))?;
        assert_eq!(app.name, "demo");
        let a = &app.components["a"];
        assert_eq!(a.source, Path::new("/app/a.wasm"));
        assert_eq!(a.key_value_stores, ["default"]);
        assert!(a.sqlite_databases.is_empty());
        assert!(app.variables["token"].required);
        assert_eq!(app.router.route("/a/b").map(|m| m.component), Some("a"));
        Ok(())
    }

    #[test]
    fn refuses_reference_to_undefined_variable() {
        let text = MANIFEST.replace("{{ issuer }}", "{{ nope }}");
        assert!(App::parse(&text, Path::new(".")).is_err());
    }

    #[test]
    fn refuses_unsupported_grants() {
        let text = MANIFEST.replace(
            "key_value_stores = [\"default\"]",
            "allowed_outbound_hosts = [\"https://example.com\"]",
        );
        assert!(App::parse(&text, Path::new(".")).is_err());
    }

    #[test]
    fn variable_names_follow_spin() {
        assert!(check_variable_name("access_token_ttl").is_ok());
        assert!(check_variable_name("Issuer").is_err());
        assert!(check_variable_name("1x").is_err());
        assert!(check_variable_name("a-b").is_err());
        assert!(check_variable_name("").is_err());
    }
}
