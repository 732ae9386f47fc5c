//! End to end: the sidecar's real controller loop (list/watch, finalizers, status, Secret
//! creation) against a small fake Kubernetes API server and a real native `edgeid serve`.
//!
//! No real API server can be installed on the build machines, which is why the Kubernetes
//! side is faked (`support/apiserver.rs`: HTTP list and watch of `OAuth2Client`s and Secrets,
//! get, create, JSON and merge patches, finalizer-aware deletion, owner-reference garbage
//! collection). The provider is the real one: the `edgeid` binary, built with
//! `cargo build -p edgeid-cli` when missing or stale.
//!
//! Applying `infra/k8s/examples/gitlab` unchanged registers `ext-gitlab` with its Secret's
//! credentials (the token endpoint authenticates them); a resource without a Secret gets
//! generated credentials that work for `client_credentials`; deleting the GitLab resource
//! removes its client.

// Test code and its helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "support/apiserver.rs"]
mod apiserver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{Value, json};

use apiserver::{FakeApiServer, Kind};
use edgeid_sidecar::registration::SecretKeys;
use edgeid_sidecar::{Context, Settings};

const NS: &str = "edgeid";
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(60);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds (or finds up to date) the native `edgeid` binary.
fn edgeid_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "edgeid-cli", "--bin", "edgeid"])
        .current_dir(workspace())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p edgeid-cli failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace().join(target)
    };
    let bin = target.join("debug/edgeid");
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// A running `edgeid serve` on a free loopback port with its own data directory.
struct Edgeid {
    child: Child,
    url: String,
    data: PathBuf,
}

impl Edgeid {
    async fn start() -> Self {
        let bin = edgeid_binary();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data =
            std::env::temp_dir().join(format!("edgeid-sidecar-e2e-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let child = Command::new(bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .env("EDGEID_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("EDGEID_THREADS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("edgeid serve starts");
        let edgeid = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data,
        };
        let discovery = format!("{}/.well-known/openid-configuration", edgeid.url);
        wait_for("edgeid to serve discovery", || async {
            reqwest::get(&discovery)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        edgeid
    }

    async fn client(&self, id: &str) -> Option<Value> {
        let resp = reqwest::Client::new()
            .get(format!("{}/admin/clients/{id}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => Some(resp.json().await.unwrap()),
            404 => None,
            s => panic!("GET /admin/clients/{id}: {s}"),
        }
    }

    /// `POST /oauth2/token` with `client_credentials` and Basic authentication.
    async fn token(&self, id: &str, secret: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/oauth2/token", self.url))
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Edgeid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Polls `check` every 100 ms until it holds; fails the test after `WAIT`.
async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn manifests(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The policy `infra/k8s/sidecar-policy.yaml` ships (its ConfigMap's `policy.yaml`): the
/// example runs under it unchanged.
fn shipped_policy() -> edgeid_sidecar::Policy {
    let config_map = manifests(&workspace().join("infra/k8s/sidecar-policy.yaml")).remove(0);
    edgeid_sidecar::Policy::parse(config_map["data"]["policy.yaml"].as_str().unwrap()).unwrap()
}

fn ready(obj: &Value) -> bool {
    obj["status"]["conditions"] == json!([{"type": "Ready", "status": "True"}])
        && obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_example_applies_unchanged_and_its_client_follows_the_resource() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The sidecar's log in the test output (RUST_LOG=debug for the details).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let edgeid = Edgeid::start().await;
    let kube = FakeApiServer::start().await;
    let settings = Settings {
        edgeid_url: edgeid.url.clone(),
        edgeid_token: ADMIN_TOKEN.into(),
        namespaces: vec![NS.into()],
        secret_keys: SecretKeys::default(),
        resync: Duration::from_secs(300),
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        policy: shipped_policy(),
    };
    let ctx = Arc::new(Context::new(kube.client(), settings).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    }
    .boxed()
    .shared();
    let sidecar = tokio::spawn(edgeid_sidecar::run(ctx, shutdown));

    // kubectl apply -k infra/k8s/examples/gitlab
    let example = workspace().join("infra/k8s/examples/gitlab");
    let secret = manifests(&example.join("secret.yaml")).remove(0);
    let gitlab_secret = secret["stringData"]["CLIENT_SECRET"]
        .as_str()
        .unwrap()
        .to_owned();
    kube.apply(secret);
    for doc in manifests(&example.join("oauth2client.yaml")) {
        kube.apply(doc);
    }

    wait_for("ext-gitlab to be Ready", || async {
        kube.get(Kind::OAuth2Client, NS, "ext-gitlab")
            .is_some_and(|o| ready(&o))
    })
    .await;
    let resource = kube.get(Kind::OAuth2Client, NS, "ext-gitlab").unwrap();
    assert_eq!(
        resource["metadata"]["finalizers"],
        json!([edgeid_sidecar::FINALIZER])
    );
    let stored = edgeid
        .client("ext-gitlab")
        .await
        .expect("ext-gitlab registered");
    assert_eq!(stored["owner"], "ext-gitlab/edgeid");
    assert_eq!(stored["client_name"], "GitLab");
    assert_eq!(
        stored["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        stored["redirect_uris"],
        json!(["https://gitlab.example.org/users/auth/openid_connect/callback"])
    );
    assert_eq!(stored["scope"], "openid profile email stackspin_roles");
    assert_eq!(stored["skip_consent"], true);

    // The token endpoint authenticates GitLab with the Secret's credentials: the client is
    // known and the secret right (only the grant, which GitLab never uses, is refused),
    // while a wrong secret is invalid_client.
    let (status, body) = edgeid.token("ext-gitlab", &gitlab_secret).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let (status, body) = edgeid.token("ext-gitlab", "not-the-secret").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    // A machine client without a Secret: the provider generates the credentials and the
    // sidecar stores them in a Secret owned by the resource; they work at the token endpoint.
    kube.apply(json!({
        "apiVersion": "hydra.ory.sh/v1alpha1", "kind": "OAuth2Client",
        "metadata": {"name": "backup-job", "namespace": NS},
        "spec": {"grantTypes": ["client_credentials"], "scopeArray": ["backup"],
                 "secretName": "backup-job-credentials"}
    }));
    wait_for("backup-job's Secret", || async {
        kube.get(Kind::Secret, NS, "backup-job-credentials")
            .is_some()
    })
    .await;
    let generated = kube
        .get(Kind::Secret, NS, "backup-job-credentials")
        .unwrap();
    let owner = kube.get(Kind::OAuth2Client, NS, "backup-job").unwrap();
    assert_eq!(
        generated["metadata"]["ownerReferences"][0]["uid"],
        owner["metadata"]["uid"]
    );
    let decode = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let id = decode(&generated["data"]["CLIENT_ID"]);
    let secret = decode(&generated["data"]["CLIENT_SECRET"]);
    let (status, body) = edgeid.token(&id, &secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");

    // kubectl delete oauth2client ext-gitlab: the finalizer removes the client first
    kube.delete(Kind::OAuth2Client, NS, "ext-gitlab");
    wait_for("ext-gitlab to be gone", || async {
        kube.get(Kind::OAuth2Client, NS, "ext-gitlab").is_none()
    })
    .await;
    assert!(edgeid.client("ext-gitlab").await.is_none());
    let (status, _) = edgeid.token("ext-gitlab", &gitlab_secret).await;
    assert_eq!(status, 401);
    // the other client is untouched
    assert!(edgeid.client(&id).await.is_some());

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), sidecar)
        .await
        .expect("the sidecar stops on shutdown")
        .unwrap();
}
