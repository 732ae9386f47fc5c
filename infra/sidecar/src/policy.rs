//! The operator's policy per namespace (issue 9, item 7): what an `OAuth2Client` in a namespace
//! may claim beyond the core's registration rules. Whoever may create an `OAuth2Client` in a
//! namespace is usually not the operator of the identity provider: without a policy they could
//! register a first-party-looking client that skips consent, ask for tokens with another
//! service's audience, or request scopes that yield other users' roles and groups.
//!
//! The policy is a YAML (or JSON) document, read once at start from `POLICY_FILE` (a mounted
//! ConfigMap, `infra/k8s/sidecar-policy.yaml`):
//!
//! ```yaml
//! default:            # namespaces not listed below
//!   allowSkipConsent: false
//!   audiences: []
//!   scopes: [openid, profile, email, address, phone, offline_access]
//! namespaces:
//!   edgeid:           # a listed namespace gets exactly its entry (no merging with default)
//!     allowSkipConsent: true
//!     audiences: ["*"]
//!     scopes: ["*"]
//! ```
//!
//! A field missing from an entry takes the safe value (the one of [`NamespacePolicy::default`]),
//! and so does everything when there is no file: `skipConsent` refused, no audience, the
//! standard OpenID Connect scopes only (OIDC Core §5.4 `profile email address phone`, §3.1.2.1
//! `openid`, §11 `offline_access`). An audience entry is an absolute URI matched exactly, or one
//! ending in `/` that also matches every URI under it, or `*` for any; a scope entry is one
//! scope token, or `*` for any. A refusal is reported on the resource's status
//! (`CLIENT_POLICY_REFUSED`) and nothing is written to the provider.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What the `OAuth2Client`s of one namespace may claim.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacePolicy {
    /// Whether `skipConsent: true` is accepted.
    #[serde(default)]
    pub allow_skip_consent: bool,
    /// The audiences a client may register (`audience`).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The scopes a client may register (`scope`, `scopeArray`).
    #[serde(default = "standard_scopes")]
    pub scopes: Vec<String>,
}

/// The standard OpenID Connect scopes (OIDC Core §3.1.2.1, §5.4, §11).
pub fn standard_scopes() -> Vec<String> {
    [
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "offline_access",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

impl Default for NamespacePolicy {
    /// The safe default: no `skipConsent`, no audience, the standard OIDC scopes.
    fn default() -> Self {
        Self {
            allow_skip_consent: false,
            audiences: Vec::new(),
            scopes: standard_scopes(),
        }
    }
}

/// The whole policy: a default and per-namespace entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub default: NamespacePolicy,
    #[serde(default)]
    pub namespaces: BTreeMap<String, NamespacePolicy>,
}

const ANY: &str = "*";

impl Policy {
    /// Parses and checks a policy document (YAML; JSON is YAML too).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy =
            serde_yaml::from_str(text).map_err(|e| format!("the policy is not valid: {e}"))?;
        for (name, entry) in std::iter::once(("default", &policy.default))
            .chain(policy.namespaces.iter().map(|(n, e)| (n.as_str(), e)))
        {
            for a in entry.audiences.iter().filter(|a| *a != ANY) {
                edgeid::client::validate_audience(a)
                    .map_err(|e| format!("policy for {name}: {}", e.0))?;
            }
            for s in entry.scopes.iter().filter(|s| *s != ANY) {
                let one_token =
                    !s.is_empty() && !s.contains(' ') && edgeid::client::validate_scope(s).is_ok();
                if !one_token {
                    return Err(format!(
                        "policy for {name}: {s:?} is not one scope token (RFC 6749 §3.3)"
                    ));
                }
            }
        }
        Ok(policy)
    }

    /// Reads the policy file.
    pub fn load(path: &str) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("POLICY_FILE {path}: {e}"))?;
        Policy::parse(&text).map_err(|e| format!("POLICY_FILE {path}: {e}"))
    }

    /// The entry that applies to `namespace`.
    pub fn for_namespace(&self, namespace: &str) -> &NamespacePolicy {
        self.namespaces.get(namespace).unwrap_or(&self.default)
    }

    /// Whether a client in `namespace` may hold `client` (the registration as the provider
    /// would store it, already checked with the core's rules); the refusal names every
    /// value the policy does not allow.
    pub fn check(&self, namespace: &str, client: &edgeid::client::Client) -> Result<(), String> {
        let entry = self.for_namespace(namespace);
        let mut refused = Vec::new();
        if client.skip_consent && !entry.allow_skip_consent {
            refused.push("skipConsent is not allowed".to_owned());
        }
        let audiences: Vec<&str> = client
            .audience
            .iter()
            .filter(|a| {
                !entry
                    .audiences
                    .iter()
                    .any(|allowed| audience_matches(allowed, a))
            })
            .map(String::as_str)
            .collect();
        if !audiences.is_empty() {
            refused.push(format!("audience {} is not allowed", audiences.join(", ")));
        }
        let scopes: Vec<&str> = client
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .filter(|s| {
                !entry
                    .scopes
                    .iter()
                    .any(|allowed| allowed == ANY || allowed == s)
            })
            .collect();
        if !scopes.is_empty() {
            refused.push(format!("scope {} is not allowed", scopes.join(" ")));
        }
        if refused.is_empty() {
            return Ok(());
        }
        let listed = if self.namespaces.contains_key(namespace) {
            format!("the policy for namespace {namespace}")
        } else {
            format!("the default policy (namespace {namespace} has no entry)")
        };
        Err(format!(
            "refused by {listed}: {}; the operator sets it in POLICY_FILE",
            refused.join("; ")
        ))
    }
}

fn audience_matches(allowed: &str, audience: &str) -> bool {
    allowed == ANY
        || allowed == audience
        || (allowed.ends_with('/') && audience.starts_with(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(json: serde_json::Value) -> edgeid::client::Client {
        let input: edgeid::client::ClientInput = serde_json::from_value(json).unwrap();
        input
            .validate(&edgeid::testing::SeededRng::new(1), 0, None)
            .unwrap()
            .0
    }

    #[test]
    fn issue9_the_default_refuses_skip_consent_audiences_and_non_standard_scopes() {
        let policy = Policy::default();
        let ok = client(serde_json::json!({
            "redirect_uris": ["https://app.example/cb"],
            "scope": "openid profile email offline_access",
        }));
        assert_eq!(policy.check("apps", &ok), Ok(()));
        let bad = client(serde_json::json!({
            "redirect_uris": ["https://app.example/cb"],
            "scope": "openid stackspin_roles groups",
            "skip_consent": true,
            "audience": ["https://api.example/"],
        }));
        let e = policy.check("apps", &bad).unwrap_err();
        for needle in [
            "skipConsent is not allowed",
            "audience https://api.example/ is not allowed",
            "scope stackspin_roles groups is not allowed",
            "default policy",
        ] {
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn issue9_a_namespace_entry_replaces_the_default_and_prefixes_match_under_a_slash() {
        let policy = Policy::parse(
            "default: {scopes: [openid]}\n\
             namespaces:\n  \
               apps:\n    \
                 allowSkipConsent: true\n    \
                 audiences: ['https://api.example/v1/', 'urn:example:exact']\n    \
                 scopes: [openid, read]\n  \
               ops: {audiences: ['*'], scopes: ['*']}\n",
        )
        .unwrap();
        let c = |aud: &str, scope: &str, skip: bool| {
            client(serde_json::json!({
                "grant_types": ["client_credentials"], "audience": [aud], "scope": scope,
                "skip_consent": skip,
            }))
        };
        assert!(
            policy
                .check(
                    "apps",
                    &c("https://api.example/v1/items", "openid read", true)
                )
                .is_ok()
        );
        assert!(
            policy
                .check("apps", &c("urn:example:exact", "read", false))
                .is_ok()
        );
        for bad in [
            "https://api.example/v1",
            "https://api.example/v2/x",
            "urn:example:exactly",
        ] {
            assert!(
                policy.check("apps", &c(bad, "read", false)).is_err(),
                "{bad}"
            );
        }
        assert!(
            policy
                .check("apps", &c("urn:example:exact", "write", false))
                .is_err()
        );
        // ops: any audience and scope, but no skipConsent (the field's safe value).
        assert!(
            policy
                .check("ops", &c("https://any.example", "anything", false))
                .is_ok()
        );
        let e = policy
            .check("ops", &c("https://any.example", "x", true))
            .unwrap_err();
        assert!(
            e.contains("namespace ops") && e.contains("skipConsent"),
            "{e}"
        );
        // Unlisted namespaces get the file's default.
        assert!(
            policy
                .check("other", &c("urn:example:exact", "openid", false))
                .is_err()
        );
    }

    #[test]
    fn issue9_a_policy_with_bad_entries_is_refused_at_start() {
        for bad in [
            "default: {audiences: [relative]}",
            "namespaces: {a: {scopes: ['two words']}}",
            "default: {allowSkipConsent: true, typo: 1}",
            "namespaces: [a, b]",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Policy::parse("{}").unwrap(), Policy::default());
        assert!(Policy::load("/nonexistent/policy.yaml").is_err());
    }
}
