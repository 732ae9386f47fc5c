//! `kubectl`-free validation of `infra/k8s`: every YAML document parses, the checked-in CRD
//! is exactly what `crdgen` prints, the examples are valid `OAuth2Client`s and Secrets, and
//! the kustomizations name files that exist.

// Test code and its helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn documents(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn every_manifest_parses_and_names_its_kind() {
    let mut files = Vec::new();
    yaml_files(&k8s_dir(), &mut files);
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        let docs = documents(&file);
        assert!(!docs.is_empty(), "{}: empty", file.display());
        for doc in docs {
            for field in ["apiVersion", "kind"] {
                assert!(
                    doc.get(field).and_then(|v| v.as_str()).is_some(),
                    "{}: a document without {field}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_checked_in_crd_is_what_crdgen_prints() {
    let generated = edgeid_sidecar::crd::crd_yaml().unwrap();
    let path = k8s_dir().join("crd.yaml");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: cargo run -p edgeid-sidecar --bin crdgen > infra/k8s/crd.yaml",
        path.display()
    );
}

#[test]
fn kustomizations_name_existing_files() {
    for dir in [k8s_dir(), k8s_dir().join("examples/gitlab")] {
        let docs = documents(&dir.join("kustomization.yaml"));
        let resources = docs[0]["resources"].as_sequence().unwrap();
        for r in resources {
            let r = r.as_str().unwrap();
            assert!(
                dir.join(r).is_file(),
                "{}: {r} does not exist",
                dir.display()
            );
        }
    }
}

#[test]
fn the_gitlab_example_is_a_valid_client_and_secret() {
    let dir = k8s_dir().join("examples/gitlab");
    let client: edgeid_sidecar::OAuth2Client =
        serde_yaml::from_value(documents(&dir.join("oauth2client.yaml")).remove(0)).unwrap();
    assert_eq!(client.metadata.name.as_deref(), Some("ext-gitlab"));
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_yaml::from_value(documents(&dir.join("secret.yaml")).remove(0)).unwrap();
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some(client.spec.secret_name.as_str())
    );
    let string_data = secret.string_data.unwrap();
    let creds = edgeid_sidecar::registration::Credentials {
        client_id: string_data["CLIENT_ID"].clone(),
        client_secret: Some(string_data["CLIENT_SECRET"].clone()),
    };
    let reg = edgeid_sidecar::registration::registration(&client, Some(&creds));
    let stored = edgeid_sidecar::registration::validate(&reg).unwrap();
    assert_eq!(stored.client_id, "ext-gitlab");
    assert_eq!(stored.owner, "ext-gitlab/edgeid");
}

#[test]
fn rbac_grants_only_what_the_sidecar_uses() {
    let docs = documents(&k8s_dir().join("rbac.yaml"));
    let role = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("ClusterRole"))
        .unwrap();
    let mut grants: Vec<String> = Vec::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for resource in rule["resources"].as_sequence().unwrap() {
            for verb in rule["verbs"].as_sequence().unwrap() {
                grants.push(format!(
                    "{}:{}",
                    resource.as_str().unwrap(),
                    verb.as_str().unwrap()
                ));
            }
        }
    }
    grants.sort();
    assert_eq!(
        grants,
        [
            "oauth2clients/status:get",
            "oauth2clients/status:patch",
            "oauth2clients:get",
            "oauth2clients:list",
            "oauth2clients:patch",
            "oauth2clients:watch",
            "secrets:create",
            "secrets:get",
            "secrets:list",
            "secrets:watch",
        ]
    );
}

#[test]
fn issue9_the_shipped_policy_parses_admits_the_gitlab_example_and_keeps_the_safe_default() {
    let docs = documents(&k8s_dir().join("sidecar-policy.yaml"));
    let text = docs[0]["data"]["policy.yaml"].as_str().unwrap();
    let policy = edgeid_sidecar::Policy::parse(text).unwrap();
    assert_eq!(
        policy.default,
        edgeid_sidecar::policy::NamespacePolicy::default(),
        "the file states the built-in default"
    );
    let dir = k8s_dir().join("examples/gitlab");
    let client: edgeid_sidecar::OAuth2Client =
        serde_yaml::from_value(documents(&dir.join("oauth2client.yaml")).remove(0)).unwrap();
    let stored = edgeid_sidecar::registration::validate(
        &edgeid_sidecar::registration::registration(&client, None),
    )
    .unwrap();
    assert_eq!(policy.check("edgeid", &stored), Ok(()));
    // The same resource in a tenant namespace asks for more than the default allows.
    let e = policy.check("apps", &stored).unwrap_err();
    assert!(
        e.contains("skipConsent") && e.contains("stackspin_roles"),
        "{e}"
    );
    // The sidecar is told where the file is mounted.
    let deployment = documents(&k8s_dir().join("sidecar.yaml")).remove(0);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_sequence().unwrap();
    let path = env
        .iter()
        .find(|e| e["name"].as_str() == Some("POLICY_FILE"))
        .and_then(|e| e["value"].as_str())
        .unwrap();
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(path, format!("{mount}/policy.yaml"));
}
