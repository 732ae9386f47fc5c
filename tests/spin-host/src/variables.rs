//! Spin variables: `[component.X.variables] name = "{{ app_var }}"` templates over application
//! variables, resolved as `spin up` does with its default providers — the environment variable
//! `SPIN_VARIABLE_<APP_VAR>` first, then the manifest's `default`.
//!
//! A component sees only the names it maps; everything else is `undefined`, exactly as under
//! Spin. That is what keeps `admin_token` out of discovery (DESIGN.md, least privilege).

use std::collections::BTreeMap;

use anyhow::bail;

use crate::manifest::{App, Variable};

/// A parsed template: literal text and `{{ name }}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Reference(String),
}

/// Why a variable could not be read; maps onto `fermyon:spin/variables.error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    InvalidName(String),
    Undefined(String),
}

impl Template {
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated '{{{{' in template {text:?}");
            };
            let name = after[..end].trim();
            crate::manifest::check_variable_name(name)?;
            parts.push(Part::Reference(name.to_owned()));
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            bail!("unmatched '}}}}' in template {text:?}");
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The application variables this template reads.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Reference(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Expands the template; `lookup` gives an application variable's value.
    pub fn expand(
        &self,
        mut lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<String, ResolveError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Reference(name) => out
                    .push_str(&lookup(name).ok_or_else(|| ResolveError::Undefined(name.clone()))?),
            }
        }
        Ok(out)
    }
}

/// The value of application variable `name`: `SPIN_VARIABLE_<NAME>` from `env`, else the
/// manifest default, else none (a required variable without a value).
pub fn app_variable(
    name: &str,
    declared: &BTreeMap<String, Variable>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let var = declared.get(name)?;
    env(&env_name(name)).or_else(|| var.default.clone())
}

/// The environment variable Spin's default provider reads for application variable `name`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Expands every variable of `component` once, at start, as Spin would on each read. A
/// required application variable with no value fails here, naming the environment variable
/// to set, instead of failing the first request that reads it.
pub fn resolve_component(
    app: &App,
    component: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(spec) = app.components.get(component) else {
        bail!("no component {component:?}");
    };
    let mut out = BTreeMap::new();
    for (name, template) in &spec.variables {
        let value = template
            .expand(|v| app_variable(v, &app.variables, env))
            .map_err(|e| match e {
                ResolveError::Undefined(v) => anyhow::anyhow!(
                    "component {component:?} variable {name:?}: application variable {v:?} is required; set {}",
                    env_name(&v)
                ),
                ResolveError::InvalidName(v) => anyhow::anyhow!("invalid variable name {v:?}"),
            })?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_references() -> anyhow::Result<()> {
        let t = Template::parse("https://{{ host }}:{{port}}/x")?;
        assert_eq!(t.references().collect::<Vec<_>>(), ["host", "port"]);
        let v = t.expand(|n| Some(if n == "host" { "h".into() } else { "1".into() }));
        assert_eq!(v.as_deref(), Ok("https://h:1/x"));
        Ok(())
    }

    #[test]
    fn rejects_malformed_templates() {
        assert!(Template::parse("{{ x").is_err());
        assert!(Template::parse("x }}").is_err());
        assert!(Template::parse("{{ Bad-Name }}").is_err());
    }
}
