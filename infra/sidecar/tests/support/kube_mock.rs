//! A mock Kubernetes API server in the kube-rs controller-rs style: `tower_test::mock::pair`
//! behind `kube::Client::new`, answering from a script of expected requests and checking
//! each one (method, path, body). Anything unexpected is recorded and answered with 500, so
//! a test fails with the request that should not have been sent.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::Value;
use tokio::task::JoinHandle;
use tower_test::mock;

type Check = Box<dyn FnOnce(&Value) + Send>;

/// One request the controller must send next, and the API server's answer.
pub struct Expect {
    pub method: Method,
    pub path: String,
    pub check: Check,
    pub status: u16,
    pub reply: Value,
}

impl Expect {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            check: Box::new(|_| {}),
            status: 200,
            reply: Value::Null,
        }
    }

    /// Checks the request body (parsed JSON; `null` when empty).
    pub fn check(mut self, f: impl FnOnce(&Value) + Send + 'static) -> Self {
        self.check = Box::new(f);
        self
    }

    pub fn reply(mut self, status: u16, body: Value) -> Self {
        self.status = status;
        self.reply = body;
        self
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Expect>,
    failures: Vec<String>,
    served: usize,
}

pub struct MockKube {
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl MockKube {
    pub fn new() -> (kube::Client, MockKube) {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let what = format!("{} {}", parts.method, parts.uri);
                let next = s.lock().unwrap().script.pop_front();
                let (status, reply) = match next {
                    None => {
                        s.lock()
                            .unwrap()
                            .failures
                            .push(format!("unexpected request {what} {body}"));
                        (500, serde_json::json!({"kind": "Status", "code": 500}))
                    }
                    Some(e) => {
                        if e.method != parts.method || e.path != parts.uri.path() {
                            s.lock().unwrap().failures.push(format!(
                                "expected {} {}, got {what} {body}",
                                e.method, e.path
                            ));
                            (500, serde_json::json!({"kind": "Status", "code": 500}))
                        } else {
                            let check = e.check;
                            // A failed check is a failure of the test, not a panic in this task.
                            let result =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    check(&body)
                                }));
                            if let Err(p) = result {
                                let msg = p
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default();
                                s.lock()
                                    .unwrap()
                                    .failures
                                    .push(format!("{what}: {msg}\nbody: {body}"));
                            }
                            s.lock().unwrap().served += 1;
                            (e.status, e.reply)
                        }
                    }
                };
                let resp = Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap();
                send.send_response(resp);
            }
        });
        (client, MockKube { shared, task })
    }

    /// Queues the requests the next reconcile must send, in order.
    pub fn expect(&self, script: impl IntoIterator<Item = Expect>) {
        self.shared.lock().unwrap().script.extend(script);
    }

    /// Asserts that every queued request was sent, as expected, and nothing else.
    pub fn assert_done(&self) {
        let s = self.shared.lock().unwrap();
        assert!(s.failures.is_empty(), "API server mock: {:#?}", s.failures);
        let left: Vec<String> = s
            .script
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert!(left.is_empty(), "requests never sent: {left:?}");
    }

    pub async fn finish(self) {
        self.assert_done();
        self.task.abort();
    }
}

/// `GET` of a Secret.
pub fn get_secret(ns: &str, name: &str, reply: Option<Value>) -> Expect {
    let e = Expect::new(
        Method::GET,
        format!("/api/v1/namespaces/{ns}/secrets/{name}"),
    );
    match reply {
        Some(secret) => e.reply(200, secret),
        None => e.reply(
            404,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "NotFound", "code": 404, "message": format!("secrets \"{name}\" not found")
            }),
        ),
    }
}

pub fn client_path(ns: &str, name: &str) -> String {
    format!("/apis/hydra.ory.sh/v1alpha1/namespaces/{ns}/oauth2clients/{name}")
}

pub fn status_path(ns: &str, name: &str) -> String {
    format!("{}/status", client_path(ns, name))
}
