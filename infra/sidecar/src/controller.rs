//! The controller: `reconcile` runs inside kube-runtime's `finalizer(...)` (Apply / Cleanup),
//! `error_policy` backs off per object, status is written on the status subresource, and a
//! periodic requeue repairs drift in the provider.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::admin::{AdminApi, AdminError, Registration};
use crate::crd::{API_VERSION, KIND, status_code};
use crate::crd::{OAuth2Client, OAuth2ClientCondition, OAuth2ClientStatus, ReconciliationError};
use crate::policy::Policy;
use crate::registration::{self, SecretKeys};

/// The sidecar's finalizer: the provider's client is removed before the resource goes.
pub const FINALIZER: &str = "oauth2clients.edgeid.sidecar/finalizer";
/// hydra-maester's finalizer. Resources that carry it are adopted (swapped for ours), so
/// deleting them never hangs on a controller that no longer runs.
pub const LEGACY_FINALIZER: &str = "finalizer.ory.hydra.sh";

/// What the sidecar is told by its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub edgeid_url: String,
    pub edgeid_token: String,
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    pub secret_keys: SecretKeys,
    /// How often an unchanged resource is checked against the provider (drift repair).
    pub resync: Duration,
    /// First retry delay after a failure; doubles per consecutive failure up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// What the resources of each namespace may claim ([`crate::policy`]).
    pub policy: Policy,
}

impl Settings {
    /// Reads `EDGEID_URL`, `EDGEID_TOKEN`, `WATCH_NAMESPACES` (comma- or space-separated,
    /// empty = all), `CLIENT_ID_KEY`, `CLIENT_SECRET_KEY`, `RESYNC_SECONDS` (default 300) and
    /// `POLICY_FILE` (the namespace policy; unset: the safe default of [`crate::policy`]). A
    /// policy file that cannot be read or parsed stops the start: running without the
    /// operator's limits would be worse.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("{name} is not set"))
        };
        let optional = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let resync = match optional("RESYNC_SECONDS") {
            None => 300,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("RESYNC_SECONDS must be a number of seconds, got {s:?}"))?,
        };
        Ok(Self {
            edgeid_url: required("EDGEID_URL")?,
            edgeid_token: required("EDGEID_TOKEN")?.trim().to_owned(),
            namespaces: optional("WATCH_NAMESPACES")
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            secret_keys: SecretKeys {
                client_id: optional("CLIENT_ID_KEY"),
                client_secret: optional("CLIENT_SECRET_KEY"),
            },
            resync: Duration::from_secs(resync),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            policy: match optional("POLICY_FILE") {
                None => Policy::default(),
                Some(path) => Policy::load(path.trim())?,
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),
    #[error("finalizer patch: {0}")]
    Patch(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the last successful sync of one resource wrote.
#[derive(Debug, Clone)]
struct Synced {
    generation: Option<i64>,
    fingerprint: String,
    at: Instant,
}

/// State shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    pub admin: AdminApi,
    pub settings: Settings,
    synced: Mutex<HashMap<String, Synced>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: kube::Client, settings: Settings) -> Result<Self> {
        let admin = AdminApi::new(&settings.edgeid_url, &settings.edgeid_token)?;
        Ok(Self {
            client,
            admin,
            settings,
            synced: Mutex::default(),
            failures: Mutex::default(),
        })
    }

    fn synced(&self, key: &str) -> Option<Synced> {
        self.synced.lock().ok()?.get(key).cloned()
    }

    fn remember(&self, key: String, synced: Option<Synced>) {
        if let Ok(mut map) = self.synced.lock() {
            match synced {
                Some(s) => map.insert(key, s),
                None => map.remove(&key),
            };
        }
    }
}

fn key(obj: &OAuth2Client) -> String {
    obj.owner()
}

/// Reconciles one `OAuth2Client`.
pub async fn reconcile(obj: Arc<OAuth2Client>, ctx: Arc<Context>) -> Result<Action> {
    let ns = obj
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let api: Api<OAuth2Client> = Api::namespaced(ctx.client.clone(), &ns);
    let obj = match adopt_legacy_finalizer(&api, obj, &ctx).await? {
        Adoption::Done(action) => return Ok(action),
        Adoption::Continue(obj) => obj,
    };
    let action = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(obj) => apply(&obj, &ctx).await,
            Finalizer::Cleanup(obj) => cleanup(&obj, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    Ok(action)
}

/// Retries a failed reconcile after `backoff_base * 2^(failures so far)`, capped.
pub fn error_policy(obj: Arc<OAuth2Client>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&obj);
    let failures = match ctx.failures.lock() {
        Ok(mut map) => {
            let n = map.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    let delay = ctx
        .settings
        .backoff_base
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(ctx.settings.backoff_max);
    warn!(%key, failures, ?delay, "reconcile failed: {error}");
    Action::requeue(delay)
}

enum Adoption {
    Continue(Arc<OAuth2Client>),
    Done(Action),
}

/// Swaps hydra-maester's finalizer for ours (or, on a resource being deleted, runs our
/// cleanup and removes both), guarded by a JSON-patch `test` so a concurrent change to the
/// finalizer list makes the patch fail and the reconcile retry.
async fn adopt_legacy_finalizer(
    api: &Api<OAuth2Client>,
    obj: Arc<OAuth2Client>,
    ctx: &Context,
) -> Result<Adoption> {
    let current = obj.finalizers().to_vec();
    if !current.iter().any(|f| f == LEGACY_FINALIZER) {
        return Ok(Adoption::Continue(obj));
    }
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("name"))?;
    let deleting = obj.meta().deletion_timestamp.is_some();
    let mut next: Vec<String> = Vec::with_capacity(current.len());
    for f in &current {
        let f = if f == LEGACY_FINALIZER { FINALIZER } else { f };
        // On a resource being deleted ours goes too: cleanup runs right here.
        let released = deleting && f == FINALIZER;
        let duplicate = next.iter().any(|n| n == f);
        if !released && !duplicate {
            next.push(f.to_owned());
        }
    }
    if deleting {
        cleanup(&obj, ctx).await?;
    }
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": current},
        {"op": "replace", "path": "/metadata/finalizers", "value": next},
    ]))?;
    let patched = api
        .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    info!(resource = %obj.owner(), "adopted hydra-maester's finalizer");
    if deleting {
        Ok(Adoption::Done(Action::await_change()))
    } else {
        Ok(Adoption::Continue(Arc::new(patched)))
    }
}

/// Why a sync did not finish.
enum Failure {
    /// The resource (or its Secret) must change: reported in status, not retried until
    /// something changes or the periodic resync comes.
    Invalid {
        code: &'static str,
        description: String,
    },
    /// The provider or the API server failed: reported in status and retried with backoff.
    Transient { code: &'static str, error: Error },
}

impl Failure {
    fn from_admin(code: &'static str, e: AdminError) -> Failure {
        match e {
            AdminError::Refused {
                status,
                error,
                description,
            } if status != 409 => Failure::Invalid {
                code,
                description: format!("{error}: {description}"),
            },
            e => Failure::Transient {
                code,
                error: e.into(),
            },
        }
    }
}

async fn apply(obj: &OAuth2Client, ctx: &Context) -> Result<Action> {
    let resync = ctx.settings.resync;
    match sync(obj, ctx).await {
        Ok(()) => {
            if let Ok(mut map) = ctx.failures.lock() {
                map.remove(&key(obj));
            }
            write_status(obj, ctx, None).await?;
            Ok(Action::requeue(resync))
        }
        Err(Failure::Invalid { code, description }) => {
            warn!(resource = %obj.owner(), code, "{description}");
            ctx.remember(key(obj), None);
            write_status(obj, ctx, Some((code, description))).await?;
            Ok(Action::requeue(resync))
        }
        Err(Failure::Transient { code, error }) => {
            // The status says why; the error makes the controller back off and retry.
            write_status(obj, ctx, Some((code, error.to_string()))).await?;
            Err(error)
        }
    }
}

/// Makes the provider hold what `obj` asks for.
async fn sync(obj: &OAuth2Client, ctx: &Context) -> Result<(), Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let owner = obj.owner();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let public = registration::is_public(obj);
    let secret = secrets
        .get_opt(&obj.spec.secret_name)
        .await
        .map_err(|e| Failure::Transient {
            code: status_code::REGISTRATION_FAILED,
            error: e.into(),
        })?;
    let creds = match &secret {
        Some(s) => Some(
            registration::credentials(s, &ctx.settings.secret_keys, public).map_err(
                |description| Failure::Invalid {
                    code: status_code::INVALID_SECRET,
                    description,
                },
            )?,
        ),
        None if obj.spec.require_existing_secret == Some(true) => {
            return Err(Failure::Invalid {
                code: status_code::SECRET_NOT_FOUND,
                description: format!("Secret {ns}/{} does not exist", obj.spec.secret_name),
            });
        }
        None => None,
    };
    let reg = registration::registration(obj, creds.as_ref());
    let wanted = registration::validate(&reg).map_err(|description| Failure::Invalid {
        code: status_code::REGISTRATION_FAILED,
        description,
    })?;
    // The operator's limits for this namespace, before anything is written: a refused
    // resource changes nothing in the provider (a client it registered earlier stays as it
    // was) and says why in its status.
    ctx.settings
        .policy
        .check(&ns, &wanted)
        .map_err(|description| Failure::Invalid {
            code: status_code::POLICY_REFUSED,
            description,
        })?;
    let Some(creds) = creds else {
        return register_with_generated_credentials(obj, ctx, &secrets, &reg).await;
    };

    let fingerprint = registration::fingerprint(&reg);
    let last = ctx.synced(&key(obj));
    let unchanged = last.as_ref().is_some_and(|l| {
        l.fingerprint == fingerprint
            && l.generation == obj.meta().generation
            && l.at.elapsed() < ctx.settings.resync
    });
    if unchanged && is_ready(obj) {
        return Ok(());
    }

    let stored = ctx
        .admin
        .get(&creds.client_id)
        .await
        .map_err(|e| Failure::from_admin(status_code::REGISTRATION_FAILED, e))?;
    match stored {
        None => {
            ctx.admin
                .create(&reg)
                .await
                .map_err(|e| Failure::from_admin(status_code::REGISTRATION_FAILED, e))?;
            info!(resource = %owner, client_id = %creds.client_id, "client created");
        }
        Some(stored) if stored.owner != owner => {
            let holder = if stored.owner.is_empty() {
                "was created outside Kubernetes".to_owned()
            } else {
                format!("belongs to {}", stored.owner)
            };
            return Err(Failure::Invalid {
                code: status_code::INVALID_SECRET,
                description: format!(
                    "client {} named by Secret {ns}/{} {holder}; it is not overwritten",
                    creds.client_id, obj.spec.secret_name
                ),
            });
        }
        Some(stored) => {
            let secret_changed = last.is_none_or(|l| l.fingerprint != fingerprint);
            if !registration::same_registration(&stored, &wanted) || secret_changed {
                ctx.admin
                    .update(&creds.client_id, &reg)
                    .await
                    .map_err(|e| Failure::from_admin(status_code::UPDATE_FAILED, e))?;
                info!(resource = %owner, client_id = %creds.client_id, "client updated");
            }
        }
    }
    prune(ctx, &owner, &creds.client_id).await?;
    ctx.remember(
        key(obj),
        Some(Synced {
            generation: obj.meta().generation,
            fingerprint,
            at: Instant::now(),
        }),
    );
    Ok(())
}

/// No Secret yet: the provider generates the id and secret, and the sidecar stores them in a
/// Secret owned by the resource (deleted with it by the garbage collector).
async fn register_with_generated_credentials(
    obj: &OAuth2Client,
    ctx: &Context,
    secrets: &Api<Secret>,
    reg: &Registration,
) -> Result<(), Failure> {
    let created = ctx
        .admin
        .create(reg)
        .await
        .map_err(|e| Failure::from_admin(status_code::REGISTRATION_FAILED, e))?;
    let keys = &ctx.settings.secret_keys;
    let mut data = BTreeMap::new();
    data.insert(
        keys.id_key().to_owned(),
        ByteString(created.client_id.clone().into_bytes()),
    );
    if let Some(secret) = &created.client_secret {
        data.insert(
            keys.secret_key().to_owned(),
            ByteString(secret.clone().into_bytes()),
        );
    }
    let owner_ref = obj
        .controller_owner_ref(&())
        .ok_or_else(|| Failure::Transient {
            code: status_code::CREATE_SECRET_FAILED,
            error: Error::MissingObjectKey("uid"),
        })?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(obj.spec.secret_name.clone()),
            namespace: obj.namespace(),
            owner_references: Some(vec![owner_ref]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    };
    if let Err(e) = secrets.create(&PostParams::default(), &secret).await {
        // Without the Secret nobody knows the generated secret: drop the client so the retry
        // starts clean instead of leaving an unusable one behind.
        if let Err(del) = ctx.admin.delete(&created.client_id).await {
            warn!(client_id = %created.client_id, "could not remove the unusable client: {del}");
        }
        return Err(Failure::Transient {
            code: status_code::CREATE_SECRET_FAILED,
            error: e.into(),
        });
    }
    info!(resource = %obj.owner(), client_id = %created.client_id, "client created with generated credentials");
    prune(ctx, &obj.owner(), &created.client_id).await
}

/// Removes clients this resource registered earlier under another id (the Secret's
/// `CLIENT_ID` changed, or a generated client whose Secret could not be written).
async fn prune(ctx: &Context, owner: &str, keep: &str) -> Result<(), Failure> {
    let owned = ctx
        .admin
        .owned_by(owner)
        .await
        .map_err(|e| Failure::from_admin(status_code::UPDATE_FAILED, e))?;
    for id in owned.iter().filter(|id| *id != keep) {
        ctx.admin
            .delete(id)
            .await
            .map_err(|e| Failure::from_admin(status_code::UPDATE_FAILED, e))?;
        info!(%owner, client_id = %id, "stale client removed");
    }
    Ok(())
}

/// Finalizer cleanup: the resource is going; its clients go too unless it says `orphan`.
async fn cleanup(obj: &OAuth2Client, ctx: &Context) -> Result<Action> {
    ctx.remember(key(obj), None);
    if obj.orphans_on_delete() {
        info!(resource = %obj.owner(), "deletionPolicy orphan: client kept");
        return Ok(Action::await_change());
    }
    for id in ctx.admin.owned_by(&obj.owner()).await? {
        ctx.admin.delete(&id).await?;
        info!(resource = %obj.owner(), client_id = %id, "client deleted");
    }
    Ok(Action::await_change())
}

fn is_ready(obj: &OAuth2Client) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.meta().generation
            && s.reconciliation_error.is_none()
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Writes `observedGeneration`, the `Ready` condition and `reconciliationError`, only when
/// they change. A JSON merge patch rather than server-side apply: hydra-maester wrote status
/// with updates, so a `reconciliationError` it left is owned by its field manager and an
/// apply would leave it standing; a merge patch with `null` clears it whoever wrote it.
async fn write_status(
    obj: &OAuth2Client,
    ctx: &Context,
    error: Option<(&'static str, String)>,
) -> Result<()> {
    let status = OAuth2ClientStatus {
        observed_generation: obj.meta().generation,
        reconciliation_error: error
            .as_ref()
            .map(|(code, description)| ReconciliationError {
                status_code: (*code).to_owned(),
                description: description.clone(),
            }),
        conditions: vec![OAuth2ClientCondition {
            type_: "Ready".into(),
            status: if error.is_none() { "True" } else { "False" }.into(),
        }],
    };
    if obj.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let ns = obj
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("name"))?;
    let api: Api<OAuth2Client> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "status": {
            "observedGeneration": status.observed_generation,
            "conditions": status.conditions,
            "reconciliationError": status.reconciliation_error,
        }
    });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Runs one controller per watched namespace (one for all when none is configured) until
/// `shutdown` resolves.
pub async fn run<S>(ctx: Arc<Context>, shutdown: S)
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let scopes: Vec<Option<String>> = if ctx.settings.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.settings.namespaces.iter().cloned().map(Some).collect()
    };
    let controllers = scopes.into_iter().map(|ns| {
        // Secrets are watched by metadata only (`PartialObjectMeta`): a change to one re-runs
        // the resources that name it, which then read it; the sidecar never holds every
        // Secret's data.
        let (clients, secrets): (Api<OAuth2Client>, Api<PartialObjectMeta<Secret>>) = match &ns {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
        let controller = Controller::new(clients, watcher::Config::default());
        let store = controller.store();
        controller
            .watches(secrets, watcher::Config::default(), move |secret| {
                let ns = secret.namespace();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|c| c.namespace() == ns && c.spec.secret_name == name)
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                match result {
                    Ok((obj, _)) => tracing::debug!(resource = %obj, "reconciled"),
                    Err(e) => warn!("controller: {e}"),
                }
            })
    });
    futures::future::join_all(controllers).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_env() {
        let env: HashMap<&str, &str> = [
            ("EDGEID_URL", "http://edgeid:8080"),
            ("EDGEID_TOKEN", "tok\n"),
            ("WATCH_NAMESPACES", "apps, tools"),
            ("CLIENT_ID_KEY", "id"),
            ("RESYNC_SECONDS", "60"),
        ]
        .into_iter()
        .collect();
        let s = Settings::from_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.namespaces, vec!["apps", "tools"]);
        assert_eq!(s.edgeid_token, "tok");
        assert_eq!(s.secret_keys.client_id.as_deref(), Some("id"));
        assert_eq!(s.secret_keys.client_secret, None);
        assert_eq!(s.resync, Duration::from_secs(60));
        assert_eq!(
            s.policy,
            Policy::default(),
            "no POLICY_FILE: the safe default"
        );
        assert!(Settings::from_env(|_| None).is_err());
    }

    #[test]
    fn issue9_a_policy_file_is_read_and_a_broken_one_stops_the_start() {
        let dir =
            std::env::temp_dir().join(format!("edgeid-sidecar-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, "namespaces: {apps: {allowSkipConsent: true}}").unwrap();
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "default: {audiences: [not-a-uri]}").unwrap();
        let env = |policy: &std::path::Path| {
            let policy = policy.display().to_string();
            move |k: &str| match k {
                "EDGEID_URL" => Some("http://edgeid".to_owned()),
                "EDGEID_TOKEN" => Some("tok".to_owned()),
                "POLICY_FILE" => Some(policy.clone()),
                _ => None,
            }
        };
        let s = Settings::from_env(env(&good)).unwrap();
        assert!(s.policy.for_namespace("apps").allow_skip_consent);
        assert!(!s.policy.for_namespace("other").allow_skip_consent);
        assert!(Settings::from_env(env(&bad)).is_err());
        assert!(Settings::from_env(env(&dir.join("missing.yaml"))).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
