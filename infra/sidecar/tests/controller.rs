//! Controller tests without a cluster, kube-rs style: the Kubernetes side is a mock API
//! server (`tower_test::mock::pair` behind `kube::Client::new`) that checks every request
//! the controller sends; the provider side is edgeid's own admin API in process
//! (`support/provider.rs`), which records what the sidecar wrote.

// Test code and its helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "support/kube_mock.rs"]
mod kube_mock;
#[path = "support/provider.rs"]
mod provider;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use edgeid_sidecar::registration::SecretKeys;
use edgeid_sidecar::{Context, FINALIZER, LEGACY_FINALIZER, OAuth2Client, Policy, Settings};
use kube_mock::{Expect, MockKube, client_path, get_secret, status_path};
use provider::FakeProvider;

const NS: &str = "apps";
const RESYNC: Duration = Duration::from_secs(300);

fn settings(provider: &FakeProvider) -> Settings {
    Settings {
        edgeid_url: provider.url.clone(),
        edgeid_token: provider::TOKEN.into(),
        namespaces: vec![NS.into()],
        secret_keys: SecretKeys::default(),
        resync: RESYNC,
        backoff_base: Duration::from_secs(5),
        backoff_max: Duration::from_secs(300),
        // The tests of the sync itself run in a namespace the operator trusts fully; the
        // policy has its own tests below.
        policy: Policy::parse(
            "namespaces: {apps: {allowSkipConsent: true, audiences: ['*'], scopes: ['*']}}",
        )
        .unwrap(),
    }
}

fn setup() -> (Arc<Context>, MockKube, FakeProvider) {
    setup_with(None)
}

/// A context whose policy is `policy` (YAML), or the permissive one of [`settings`].
fn setup_with(policy: Option<&str>) -> (Arc<Context>, MockKube, FakeProvider) {
    let provider = FakeProvider::start();
    let (client, kube) = MockKube::new();
    let mut settings = settings(&provider);
    if let Some(p) = policy {
        settings.policy = Policy::parse(p).unwrap();
    }
    let ctx = Arc::new(Context::new(client, settings).unwrap());
    (ctx, kube, provider)
}

/// An `OAuth2Client` as the API server returns it: namespaced, with uid and generation.
fn resource(name: &str, spec: Value) -> OAuth2Client {
    serde_json::from_value(json!({
        "apiVersion": "hydra.ory.sh/v1alpha1",
        "kind": "OAuth2Client",
        "metadata": {
            "name": name, "namespace": NS, "uid": format!("uid-{name}"),
            "generation": 1, "resourceVersion": "1"
        },
        "spec": spec,
    }))
    .unwrap()
}

fn machine_spec(secret_name: &str) -> Value {
    json!({"grantTypes": ["client_credentials"], "scope": "read", "secretName": secret_name})
}

fn finalized(mut obj: OAuth2Client) -> OAuth2Client {
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    obj
}

fn with_status(mut obj: OAuth2Client, patch: &Value) -> OAuth2Client {
    let status = serde_json::from_value(patch["status"].clone()).unwrap();
    obj.status = Some(status);
    obj
}

fn deleting(mut obj: OAuth2Client) -> OAuth2Client {
    obj.metadata.deletion_timestamp =
        Some(serde_json::from_value(json!("2025-01-01T00:00:00Z")).unwrap());
    obj
}

fn secret(name: &str, pairs: &[(&str, &str)]) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let data: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(b64(v))))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "7"},
        "type": "Opaque", "data": data
    })
}

/// The status patch the controller sends when `obj` is in sync, answered with `obj`
/// carrying that status; the answer is stored in `into` for the next step.
fn ready_status(obj: &OAuth2Client, into: &Arc<Mutex<Option<OAuth2Client>>>) -> Expect {
    let generation = obj.metadata.generation;
    let (obj, into) = (obj.clone(), into.clone());
    let name = obj.metadata.name.clone().unwrap();
    let reply = {
        let patch = json!({"status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True"}]
        }});
        let updated = with_status(obj.clone(), &patch);
        *into.lock().unwrap() = Some(updated.clone());
        serde_json::to_value(updated).unwrap()
    };
    Expect::new(Method::PATCH, status_path(NS, &name))
        .check(move |body| {
            assert_eq!(body["status"]["observedGeneration"], json!(generation));
            assert_eq!(
                body["status"]["conditions"],
                json!([{"type": "Ready", "status": "True"}])
            );
            assert!(
                body["status"]["reconciliationError"].is_null(),
                "a sync clears the error"
            );
        })
        .reply(200, reply)
}

/// The status patch reporting `code`, whose description must contain `needle`.
fn error_status(obj: &OAuth2Client, code: &'static str, needle: &'static str) -> Expect {
    let name = obj.metadata.name.clone().unwrap();
    let generation = obj.metadata.generation;
    let reply_obj = obj.clone();
    Expect::new(Method::PATCH, status_path(NS, &name))
        .check(move |body| {
            let status = &body["status"];
            assert_eq!(status["observedGeneration"], json!(generation));
            assert_eq!(
                status["conditions"],
                json!([{"type": "Ready", "status": "False"}])
            );
            assert_eq!(status["reconciliationError"]["statusCode"], code);
            let description = status["reconciliationError"]["description"]
                .as_str()
                .unwrap();
            assert!(description.contains(needle), "{description}");
        })
        .reply(200, serde_json::to_value(reply_obj).unwrap())
}

async fn reconcile(
    obj: &OAuth2Client,
    ctx: &Arc<Context>,
) -> Result<Action, edgeid_sidecar::Error> {
    tokio::time::timeout(
        Duration::from_secs(20),
        edgeid_sidecar::reconcile(Arc::new(obj.clone()), ctx.clone()),
    )
    .await
    .expect("reconcile finished")
}

#[tokio::test]
async fn a_new_resource_gets_the_finalizer_first() {
    let (ctx, kube, provider) = setup();
    let obj = resource("app-a", machine_spec("app-a-creds"));
    let reply = serde_json::to_value(finalized(obj.clone())).unwrap();
    kube.expect([Expect::new(Method::PATCH, client_path(NS, "app-a"))
        .check(|body| {
            assert_eq!(
                body,
                &json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
                ])
            );
        })
        .reply(200, reply)]);
    let action = reconcile(&obj, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert!(
        provider.take().is_empty(),
        "nothing is registered before the finalizer"
    );
    kube.finish().await;
}

#[tokio::test]
async fn create_then_unchanged_generation_is_skipped_then_update() {
    let (ctx, kube, provider) = setup();
    let obj = finalized(resource("app-a", machine_spec("app-a-creds")));
    let creds = secret(
        "app-a-creds",
        &[("CLIENT_ID", "app-a"), ("CLIENT_SECRET", "first-secret")],
    );
    let current = Arc::new(Mutex::new(None));

    // create
    kube.expect([
        get_secret(NS, "app-a-creds", Some(creds.clone())),
        ready_status(&obj, &current),
    ]);
    assert_eq!(
        reconcile(&obj, &ctx).await.unwrap(),
        Action::requeue(RESYNC)
    );
    kube.assert_done();
    let writes = provider.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].method.as_str(), writes[0].path.as_str()),
        ("POST", "/admin/clients")
    );
    assert_eq!(writes[0].body["client_id"], "app-a");
    assert_eq!(writes[0].body["client_secret"], "first-secret");
    assert_eq!(writes[0].body["owner"], "app-a/apps");
    let stored = provider.client("app-a").await.unwrap();
    assert_eq!(stored["owner"], "app-a/apps");
    assert_eq!(stored["grant_types"], json!(["client_credentials"]));
    assert_eq!(stored["scope"], "read");

    // the same generation again (e.g. the watch event of our own status patch): no provider
    // call, no status write
    let obj = current.lock().unwrap().clone().unwrap();
    kube.expect([get_secret(NS, "app-a-creds", Some(creds.clone()))]);
    assert_eq!(
        reconcile(&obj, &ctx).await.unwrap(),
        Action::requeue(RESYNC)
    );
    kube.assert_done();
    assert!(provider.take().is_empty(), "unchanged generation skipped");

    // a new generation: updated in place
    let mut obj = obj;
    obj.metadata.generation = Some(2);
    obj.spec.scope = "read write".into();
    obj.spec.client_name = "App A".into();
    kube.expect([
        get_secret(NS, "app-a-creds", Some(creds)),
        ready_status(&obj, &current),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    let writes = provider.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].method.as_str(), writes[0].path.as_str()),
        ("PUT", "/admin/clients/app-a")
    );
    let stored = provider.client("app-a").await.unwrap();
    assert_eq!(stored["scope"], "read write");
    assert_eq!(stored["client_name"], "App A");
    kube.finish().await;
}

#[tokio::test]
async fn a_rotated_secret_is_pushed_and_a_changed_id_replaces_the_old_client() {
    let (ctx, kube, provider) = setup();
    let obj = finalized(resource("app-a", machine_spec("app-a-creds")));
    let current = Arc::new(Mutex::new(None));
    kube.expect([
        get_secret(
            NS,
            "app-a-creds",
            Some(secret(
                "app-a-creds",
                &[("CLIENT_ID", "app-a"), ("CLIENT_SECRET", "first-secret")],
            )),
        ),
        ready_status(&obj, &current),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    provider.take();
    let obj = current.lock().unwrap().clone().unwrap();

    // rotation: same generation, new secret value -> PUT with the new secret; status unchanged
    kube.expect([get_secret(
        NS,
        "app-a-creds",
        Some(secret(
            "app-a-creds",
            &[("client_id", "app-a"), ("client_secret", "second-secret")],
        )),
    )]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    let writes = provider.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PUT");
    assert_eq!(writes[0].body["client_secret"], "second-secret");

    // a new client id: the new client is created, the old one removed
    kube.expect([get_secret(
        NS,
        "app-a-creds",
        Some(secret(
            "app-a-creds",
            &[("CLIENT_ID", "app-a-v2"), ("CLIENT_SECRET", "third-secret")],
        )),
    )]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    let writes: Vec<(String, String)> = provider
        .take_writes()
        .into_iter()
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(
        writes,
        vec![
            ("POST".into(), "/admin/clients".into()),
            ("DELETE".into(), "/admin/clients/app-a".into())
        ]
    );
    assert!(provider.client("app-a").await.is_none());
    assert!(provider.client("app-a-v2").await.is_some());
    kube.finish().await;
}

#[tokio::test]
async fn a_missing_secret_is_generated_by_the_provider_and_created_with_an_owner_reference() {
    let (ctx, kube, provider) = setup();
    let obj = finalized(resource("job", machine_spec("job-creds")));
    let current = Arc::new(Mutex::new(None));
    let created = Arc::new(Mutex::new(Value::Null));
    let created2 = created.clone();
    kube.expect([
        get_secret(NS, "job-creds", None),
        Expect::new(Method::POST, format!("/api/v1/namespaces/{NS}/secrets"))
            .check(move |body| {
                assert_eq!(body["metadata"]["name"], "job-creds");
                assert_eq!(
                    body["metadata"]["ownerReferences"],
                    json!([{
                        "apiVersion": "hydra.ory.sh/v1alpha1", "kind": "OAuth2Client",
                        "name": "job", "uid": "uid-job", "controller": true
                    }])
                );
                assert!(body["data"]["CLIENT_ID"].is_string());
                assert!(body["data"]["CLIENT_SECRET"].is_string());
                *created2.lock().unwrap() = body.clone();
            })
            .reply(201, secret("job-creds", &[])),
        ready_status(&obj, &current),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    let writes = provider.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert!(
        writes[0].body.get("client_id").is_none(),
        "the provider generates the id"
    );
    assert!(writes[0].body.get("client_secret").is_none());

    let secret = created.lock().unwrap().clone();
    let decode = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let id = decode(&secret["data"]["CLIENT_ID"]);
    assert!(decode(&secret["data"]["CLIENT_SECRET"]).len() >= 32);
    let stored = provider.client(&id).await.unwrap();
    assert_eq!(stored["owner"], "job/apps");
    kube.finish().await;
}

#[tokio::test]
async fn deleting_the_resource_deletes_the_client_and_releases_the_finalizer() {
    let (ctx, kube, provider) = setup();
    provider
        .call(
            Method::POST,
            "/admin/clients",
            Some(
                json!({"client_id": "app-a", "client_secret": "first-secret",
                        "grant_types": ["client_credentials"], "owner": "app-a/apps"}),
            ),
        )
        .await;
    let obj = deleting(finalized(resource("app-a", machine_spec("app-a-creds"))));
    kube.expect([Expect::new(Method::PATCH, client_path(NS, "app-a"))
        .check(|body| {
            assert_eq!(
                body,
                &json!([
                    {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
                    {"op": "remove", "path": "/metadata/finalizers/0"}
                ])
            );
        })
        .reply(200, serde_json::to_value(&obj).unwrap())]);
    assert_eq!(reconcile(&obj, &ctx).await.unwrap(), Action::await_change());
    kube.assert_done();
    let writes: Vec<String> = provider
        .take_writes()
        .into_iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(writes, vec!["DELETE /admin/clients/app-a"]);
    assert!(provider.client("app-a").await.is_none());
    kube.finish().await;
}

#[tokio::test]
async fn deletion_policy_orphan_keeps_the_client() {
    let (ctx, kube, provider) = setup();
    provider
        .call(
            Method::POST,
            "/admin/clients",
            Some(
                json!({"client_id": "app-a", "client_secret": "first-secret",
                        "grant_types": ["client_credentials"], "owner": "app-a/apps"}),
            ),
        )
        .await;
    let mut spec = machine_spec("app-a-creds");
    spec["deletionPolicy"] = json!("orphan");
    let obj = deleting(finalized(resource("app-a", spec)));
    kube.expect([Expect::new(Method::PATCH, client_path(NS, "app-a"))
        .reply(200, serde_json::to_value(&obj).unwrap())]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    assert!(provider.take_writes().is_empty());
    assert!(provider.client("app-a").await.is_some());
    kube.finish().await;
}

#[tokio::test]
async fn a_client_owned_by_someone_else_is_never_overwritten() {
    let (ctx, kube, provider) = setup();
    for (id, owner) in [("by-hand", ""), ("taken", "other/apps")] {
        provider
            .call(
                Method::POST,
                "/admin/clients",
                Some(json!({"client_id": id, "client_secret": "their-secret",
                            "grant_types": ["client_credentials"], "owner": owner})),
            )
            .await;
    }
    for (id, needle) in [
        ("by-hand", "outside Kubernetes"),
        ("taken", "belongs to other/apps"),
    ] {
        let obj = finalized(resource("mine", machine_spec("mine-creds")));
        kube.expect([
            get_secret(
                NS,
                "mine-creds",
                Some(secret(
                    "mine-creds",
                    &[("CLIENT_ID", id), ("CLIENT_SECRET", "my-secret")],
                )),
            ),
            error_status(&obj, "INVALID_SECRET", needle),
        ]);
        // Reported, not retried as an error: the resource must change.
        assert_eq!(
            reconcile(&obj, &ctx).await.unwrap(),
            Action::requeue(RESYNC)
        );
        kube.assert_done();
        assert!(provider.take_writes().is_empty());
    }
    assert_eq!(provider.client("by-hand").await.unwrap()["owner"], "");
    assert_eq!(
        provider.client("taken").await.unwrap()["owner"],
        "other/apps"
    );
    kube.finish().await;
}

#[tokio::test]
async fn an_invalid_spec_is_reported_in_status_with_the_cores_reason() {
    let (ctx, kube, provider) = setup();
    let cases = [
        (
            json!({"grantTypes": ["authorization_code"], "secretName": "c"}),
            "CLIENT_REGISTRATION_FAILED",
            "redirect_uri",
        ),
        (
            json!({"grantTypes": ["client_credentials"], "secretName": "c", "tokenEndpointAuthMethod": "private_key_jwt"}),
            "CLIENT_REGISTRATION_FAILED",
            "private_key_jwt",
        ),
        (
            json!({"grantTypes": ["authorization_code"], "secretName": "c", "redirectUris": ["http://app.example/cb"]}),
            "CLIENT_REGISTRATION_FAILED",
            "https",
        ),
    ];
    for (spec, code, needle) in cases {
        let obj = finalized(resource("bad", spec));
        kube.expect([
            get_secret(
                NS,
                "c",
                Some(secret(
                    "c",
                    &[("CLIENT_ID", "bad"), ("CLIENT_SECRET", "bad-secret")],
                )),
            ),
            error_status(&obj, code, needle),
        ]);
        assert_eq!(
            reconcile(&obj, &ctx).await.unwrap(),
            Action::requeue(RESYNC)
        );
        kube.assert_done();
    }
    // a Secret the core's rules refuse
    let obj = finalized(resource("bad", machine_spec("c")));
    kube.expect([
        get_secret(
            NS,
            "c",
            Some(secret(
                "c",
                &[("CLIENT_ID", "bad id"), ("CLIENT_SECRET", "bad-secret")],
            )),
        ),
        error_status(&obj, "INVALID_SECRET", "client_id"),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    assert!(provider.take().is_empty(), "nothing reaches the provider");
    kube.finish().await;
}

#[tokio::test]
async fn provider_down_then_up_backs_off_then_recovers() {
    let (ctx, kube, provider) = setup();
    let obj = finalized(resource("app-a", machine_spec("app-a-creds")));
    let creds = secret(
        "app-a-creds",
        &[("CLIENT_ID", "app-a"), ("CLIENT_SECRET", "first-secret")],
    );
    provider.set_down(true);

    let reported = Arc::new(Mutex::new(Value::Null));
    let reported2 = reported.clone();
    let report = error_status(&obj, "CLIENT_REGISTRATION_FAILED", "provider unavailable");
    let check = report.check;
    kube.expect([
        get_secret(NS, "app-a-creds", Some(creds.clone())),
        Expect {
            check: Box::new(move |body| {
                check(body);
                *reported2.lock().unwrap() = body.clone();
            }),
            ..report
        },
    ]);
    let err = reconcile(&obj, &ctx).await.unwrap_err();
    kube.assert_done();
    let obj_arc = Arc::new(obj.clone());
    assert_eq!(
        edgeid_sidecar::error_policy(obj_arc.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );

    // still down: the status already says so, so only the Secret is read
    let failing = with_status(obj.clone(), &reported.lock().unwrap());
    kube.expect([get_secret(NS, "app-a-creds", Some(creds.clone()))]);
    let err = reconcile(&failing, &ctx).await.unwrap_err();
    kube.assert_done();
    assert_eq!(
        edgeid_sidecar::error_policy(obj_arc.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );

    // up again: registered, status cleared
    provider.set_down(false);
    let current = Arc::new(Mutex::new(None));
    kube.expect([
        get_secret(NS, "app-a-creds", Some(creds)),
        ready_status(&failing, &current),
    ]);
    reconcile(&failing, &ctx).await.unwrap();
    kube.assert_done();
    assert!(provider.client("app-a").await.is_some());
    // a later failure starts the backoff from the beginning again
    assert_eq!(
        edgeid_sidecar::error_policy(obj_arc, &err, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    kube.finish().await;
}

#[tokio::test]
async fn hydra_maesters_finalizer_is_adopted() {
    let (ctx, kube, provider) = setup();
    let mut obj = resource("app-a", machine_spec("app-a-creds"));
    obj.metadata.finalizers = Some(vec![LEGACY_FINALIZER.into()]);
    let adopted = finalized(resource("app-a", machine_spec("app-a-creds")));
    let current = Arc::new(Mutex::new(None));
    kube.expect([
        Expect::new(Method::PATCH, client_path(NS, "app-a"))
            .check(|body| {
                assert_eq!(
                    body,
                    &json!([
                        {"op": "test", "path": "/metadata/finalizers", "value": [LEGACY_FINALIZER]},
                        {"op": "replace", "path": "/metadata/finalizers", "value": [FINALIZER]}
                    ])
                );
            })
            .reply(200, serde_json::to_value(&adopted).unwrap()),
        get_secret(
            NS,
            "app-a-creds",
            Some(secret(
                "app-a-creds",
                &[("CLIENT_ID", "app-a"), ("CLIENT_SECRET", "first-secret")],
            )),
        ),
        ready_status(&adopted, &current),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    assert!(provider.client("app-a").await.is_some());

    // a resource deleted while it still carries only hydra-maester's finalizer: cleaned up
    // and released, never left hanging
    let mut gone = deleting(resource("app-a", machine_spec("app-a-creds")));
    gone.metadata.finalizers = Some(vec![LEGACY_FINALIZER.into(), "other.example/keep".into()]);
    kube.expect([Expect::new(Method::PATCH, client_path(NS, "app-a"))
        .check(|body| {
            assert_eq!(
                body[1],
                json!({"op": "replace", "path": "/metadata/finalizers", "value": ["other.example/keep"]})
            );
        })
        .reply(200, serde_json::to_value(&gone).unwrap())]);
    assert_eq!(
        reconcile(&gone, &ctx).await.unwrap(),
        Action::await_change()
    );
    kube.assert_done();
    assert!(provider.client("app-a").await.is_none());
    kube.finish().await;
}

#[tokio::test]
async fn a_public_client_needs_no_secret() {
    let (ctx, kube, provider) = setup();
    let obj = finalized(resource(
        "spa",
        json!({"grantTypes": ["authorization_code"], "responseTypes": ["code"],
               "redirectUris": ["https://spa.example/cb"], "scopeArray": ["openid"],
               "tokenEndpointAuthMethod": "none", "secretName": "spa-id"}),
    ));
    let current = Arc::new(Mutex::new(None));
    kube.expect([
        get_secret(
            NS,
            "spa-id",
            Some(secret("spa-id", &[("CLIENT_ID", "spa")])),
        ),
        ready_status(&obj, &current),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    let writes = provider.take_writes();
    assert!(writes[0].body.get("client_secret").is_none());
    let stored = provider.client("spa").await.unwrap();
    assert_eq!(stored["token_endpoint_auth_method"], "none");
    kube.finish().await;
}

#[tokio::test]
async fn the_periodic_resync_repairs_drift_in_the_provider() {
    let provider = FakeProvider::start();
    let (client, kube) = MockKube::new();
    // resync 0: every reconcile is a resync and checks the provider
    let ctx = Arc::new(
        Context::new(
            client,
            Settings {
                resync: Duration::ZERO,
                ..settings(&provider)
            },
        )
        .unwrap(),
    );
    let obj = finalized(resource("app-a", machine_spec("app-a-creds")));
    let creds = secret(
        "app-a-creds",
        &[("CLIENT_ID", "app-a"), ("CLIENT_SECRET", "first-secret")],
    );
    let current = Arc::new(Mutex::new(None));
    kube.expect([
        get_secret(NS, "app-a-creds", Some(creds.clone())),
        ready_status(&obj, &current),
    ]);
    reconcile(&obj, &ctx).await.unwrap();
    kube.assert_done();
    provider.take();

    // someone edits the client by hand
    let (status, _) = provider
        .call(
            Method::PUT,
            "/admin/clients/app-a",
            Some(
                json!({"grant_types": ["client_credentials"], "scope": "read admin",
                        "owner": "app-a/apps"}),
            ),
        )
        .await;
    assert_eq!(status, 200);

    let obj = current.lock().unwrap().clone().unwrap();
    kube.expect([get_secret(NS, "app-a-creds", Some(creds))]);
    assert_eq!(
        reconcile(&obj, &ctx).await.unwrap(),
        Action::requeue(Duration::ZERO)
    );
    kube.assert_done();
    let writes = provider.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PUT");
    assert_eq!(provider.client("app-a").await.unwrap()["scope"], "read");
    kube.finish().await;
}

/// The resource `name` with `spec`, its Secret holding `id`, reconciled once: the status patch
/// must report `code` with `needle` in its description, and nothing may be written to the
/// provider.
async fn refused(
    ctx: &Arc<Context>,
    kube: &MockKube,
    provider: &FakeProvider,
    spec: Value,
    id: &str,
    code: &'static str,
    needle: &'static str,
) {
    let obj = finalized(resource("app-p", spec));
    kube.expect([
        get_secret(
            NS,
            "p-creds",
            Some(secret(
                "p-creds",
                &[("CLIENT_ID", id), ("CLIENT_SECRET", "policy-secret")],
            )),
        ),
        error_status(&obj, code, needle),
    ]);
    // Reported and left until the resource (or the policy) changes: no error backoff.
    assert_eq!(reconcile(&obj, ctx).await.unwrap(), Action::requeue(RESYNC));
    kube.assert_done();
    assert!(provider.take_writes().is_empty(), "nothing is written");
    assert!(provider.client(id).await.is_none());
}

async fn accepted(ctx: &Arc<Context>, kube: &MockKube, provider: &FakeProvider, spec: Value) {
    let obj = finalized(resource("app-p", spec));
    let current = Arc::new(Mutex::new(None));
    kube.expect([
        get_secret(
            NS,
            "p-creds",
            Some(secret(
                "p-creds",
                &[("CLIENT_ID", "app-p"), ("CLIENT_SECRET", "policy-secret")],
            )),
        ),
        ready_status(&obj, &current),
    ]);
    reconcile(&obj, ctx).await.unwrap();
    kube.assert_done();
    let writes = provider.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert!(provider.client("app-p").await.is_some());
}

#[tokio::test]
async fn issue9_the_default_policy_refuses_skip_consent_audiences_and_extra_scopes() {
    let (ctx, kube, provider) = setup_with(Some("{}"));
    let app = |extra: Value| {
        let mut spec = json!({
            "grantTypes": ["authorization_code"], "redirectUris": ["https://app.example/cb"],
            "scope": "openid profile email", "secretName": "p-creds",
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let code = "CLIENT_POLICY_REFUSED";
    refused(
        &ctx,
        &kube,
        &provider,
        app(json!({"skipConsent": true})),
        "app-p",
        code,
        "skipConsent is not allowed",
    )
    .await;
    refused(
        &ctx,
        &kube,
        &provider,
        app(json!({"audience": ["https://api.example/v1"]})),
        "app-p",
        code,
        "audience https://api.example/v1 is not allowed",
    )
    .await;
    refused(
        &ctx,
        &kube,
        &provider,
        app(json!({"scope": "openid stackspin_roles"})),
        "app-p",
        code,
        "scope stackspin_roles is not allowed",
    )
    .await;
    refused(
        &ctx,
        &kube,
        &provider,
        app(json!({"scopeArray": ["openid", "groups"]})),
        "app-p",
        code,
        "default policy",
    )
    .await;
    // What the default allows goes through.
    accepted(
        &ctx,
        &kube,
        &provider,
        app(json!({"scope": "openid profile email offline_access"})),
    )
    .await;
    kube.finish().await;
}

#[tokio::test]
async fn issue9_a_namespace_entry_allows_what_it_lists_and_nothing_else() {
    let policy = "default: {scopes: [openid]}\n\
                  namespaces:\n  \
                    apps: {audiences: ['https://api.example/'], scopes: [read]}\n";
    let (ctx, kube, provider) = setup_with(Some(policy));
    let machine = |aud: &str, scope: &str| {
        json!({"grantTypes": ["client_credentials"], "audience": [aud], "scope": scope,
               "secretName": "p-creds"})
    };
    refused(
        &ctx,
        &kube,
        &provider,
        machine("https://evil.example/", "read"),
        "app-p",
        "CLIENT_POLICY_REFUSED",
        "the policy for namespace apps",
    )
    .await;
    refused(
        &ctx,
        &kube,
        &provider,
        machine("https://api.example/v1", "write"),
        "app-p",
        "CLIENT_POLICY_REFUSED",
        "scope write is not allowed",
    )
    .await;
    let mut skip = machine("https://api.example/v1", "read");
    skip["skipConsent"] = true.into();
    refused(
        &ctx,
        &kube,
        &provider,
        skip,
        "app-p",
        "CLIENT_POLICY_REFUSED",
        "skipConsent",
    )
    .await;
    accepted(
        &ctx,
        &kube,
        &provider,
        machine("https://api.example/v1", "read"),
    )
    .await;
    kube.finish().await;
}

#[tokio::test]
async fn issue9_a_client_id_equal_to_a_users_sub_is_reported_in_status() {
    let (ctx, kube, provider) = setup();
    let (status, user) = provider
        .call(
            Method::POST,
            "/admin/users",
            Some(json!({"email": "ada@example.com", "username": "ada"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let sub = user["id"].as_str().unwrap().to_owned();
    let obj = finalized(resource("app-p", machine_spec("p-creds")));
    kube.expect([
        get_secret(
            NS,
            "p-creds",
            Some(secret(
                "p-creds",
                &[
                    ("CLIENT_ID", sub.as_str()),
                    ("CLIENT_SECRET", "policy-secret"),
                ],
            )),
        ),
        error_status(&obj, "CLIENT_REGISTRATION_FAILED", "(sub) of a user"),
    ]);
    // The provider's refusal (400) is final for this spec: reported, not retried.
    assert_eq!(
        reconcile(&obj, &ctx).await.unwrap(),
        Action::requeue(RESYNC)
    );
    kube.assert_done();
    assert!(provider.client(&sub).await.is_none());
    kube.finish().await;
}

#[tokio::test]
async fn issue9_a_relative_audience_is_reported_before_any_request() {
    let (ctx, kube, provider) = setup();
    let spec = json!({"grantTypes": ["client_credentials"], "audience": ["api"], "scope": "read",
                      "secretName": "p-creds"});
    refused(
        &ctx,
        &kube,
        &provider,
        spec,
        "app-p",
        "CLIENT_REGISTRATION_FAILED",
        "absolute URI",
    )
    .await;
    assert!(
        provider.take().is_empty(),
        "not even a read reached the provider"
    );
    kube.finish().await;
}
