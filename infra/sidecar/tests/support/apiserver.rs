//! A small fake Kubernetes API server for the end-to-end test: HTTP list, watch, get, create
//! and patch (JSON patch, merge patch, the status subresource) of `OAuth2Client`s and
//! Secrets, finalizer-aware deletion and owner-reference garbage collection. No real API
//! server can be installed on the build machines, which is why it is faked; what it does is
//! only what the sidecar's requests need.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    OAuth2Client,
    Secret,
}

impl Kind {
    fn list_kind(self) -> &'static str {
        match self {
            Kind::OAuth2Client => "OAuth2ClientList",
            Kind::Secret => "SecretList",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::OAuth2Client => "hydra.ory.sh/v1alpha1",
            Kind::Secret => "v1",
        }
    }

    fn of(obj: &Value) -> Kind {
        match obj["kind"].as_str() {
            Some("Secret") => Kind::Secret,
            Some("OAuth2Client") => Kind::OAuth2Client,
            other => panic!("the fake API server has no kind {other:?}"),
        }
    }
}

type Key = (Kind, String, String);

#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    kind: Kind,
    ns: String,
    type_: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    log: Vec<Event>,
    uid: u64,
}

impl State {
    fn emit(&mut self, events: &broadcast::Sender<Event>, type_: &'static str, mut obj: Value) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let kind = Kind::of(&obj);
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if type_ == "DELETED" {
            self.objects.remove(&(kind, ns.clone(), name));
        } else {
            self.objects.insert((kind, ns.clone(), name), obj.clone());
        }
        let event = Event {
            rv: self.rv,
            kind,
            ns,
            type_,
            object: obj,
        };
        self.log.push(event.clone());
        let _ = events.send(event);
    }

    /// Removes `obj` once nothing holds it, and what it owns (the garbage collector).
    fn settle(&mut self, events: &broadcast::Sender<Event>, obj: Value) {
        let deleting = !obj["metadata"]["deletionTimestamp"].is_null();
        let finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let released = deleting && !finalizers;
        if !released {
            self.emit(events, "MODIFIED", obj);
            return;
        }
        let uid = obj["metadata"]["uid"].clone();
        self.emit(events, "DELETED", obj);
        let owned: Vec<Value> = self
            .objects
            .values()
            .filter(|o| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .cloned()
            .collect();
        for o in owned {
            self.emit(events, "DELETED", o);
        }
    }

    fn next_uid(&mut self) -> String {
        self.uid += 1;
        format!("00000000-0000-0000-0000-{:012}", self.uid)
    }
}

#[derive(Clone)]
pub struct FakeApiServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
}

type Resp = hyper::Response<BoxBody<Bytes, Infallible>>;

impl FakeApiServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (events, _) = broadcast::channel(1024);
        let server = Self {
            url,
            state: Arc::default(),
            events,
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(s.handle(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    /// A client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// `kubectl apply` of one manifest: creates, or replaces the spec (and data) of an
    /// existing object, bumping `generation` when the spec changed. Secrets' `stringData` is
    /// folded into `data` as the API server does.
    pub fn apply(&self, mut obj: Value) {
        let mut st = self.state.lock().unwrap();
        let kind = Kind::of(&obj);
        if let Some(string_data) = obj.get("stringData").cloned() {
            let data = obj["data"].as_object().cloned().unwrap_or_default();
            let mut data = data;
            for (k, v) in string_data.as_object().unwrap() {
                let b64 = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap());
                data.insert(k.clone(), json!(b64));
            }
            obj["data"] = json!(data);
            obj.as_object_mut().unwrap().remove("stringData");
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        let existing = st.objects.get(&(kind, ns, name)).cloned();
        match existing {
            None => {
                obj["metadata"]["uid"] = json!(st.next_uid());
                obj["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
                if kind == Kind::OAuth2Client {
                    obj["metadata"]["generation"] = json!(1);
                }
                st.emit(&self.events, "ADDED", obj);
            }
            Some(mut current) => {
                for field in ["spec", "data"] {
                    if obj.get(field).is_some() && current[field] != obj[field] {
                        current[field] = obj[field].clone();
                        if field == "spec" {
                            let g = current["metadata"]["generation"].as_i64().unwrap_or(0);
                            current["metadata"]["generation"] = json!(g + 1);
                        }
                    }
                }
                st.emit(&self.events, "MODIFIED", current);
            }
        }
    }

    /// `kubectl delete`: marks the object when finalizers hold it, else removes it.
    pub fn delete(&self, kind: Kind, ns: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        let Some(mut obj) = st.objects.get(&(kind, ns.into(), name.into())).cloned() else {
            return;
        };
        obj["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:01Z");
        let g = obj["metadata"]["generation"].as_i64().unwrap_or(0);
        obj["metadata"]["generation"] = json!(g + 1);
        st.settle(&self.events, obj);
    }

    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let st = self.state.lock().unwrap();
        st.objects.get(&(kind, ns.into(), name.into())).cloned()
    }

    async fn handle(&self, req: hyper::Request<Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path: Vec<String> = parts
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let query = parts.uri.query().unwrap_or("");
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        let (kind, ns, rest): (Kind, Option<&str>, &[&str]) = match segs.as_slice() {
            ["api", "v1", "namespaces", ns, "secrets", rest @ ..] => (Kind::Secret, Some(ns), rest),
            ["api", "v1", "secrets", rest @ ..] => (Kind::Secret, None, rest),
            [
                "apis",
                "hydra.ory.sh",
                "v1alpha1",
                "namespaces",
                ns,
                "oauth2clients",
                rest @ ..,
            ] => (Kind::OAuth2Client, Some(ns), rest),
            [
                "apis",
                "hydra.ory.sh",
                "v1alpha1",
                "oauth2clients",
                rest @ ..,
            ] => (Kind::OAuth2Client, None, rest),
            _ => return status(404, "NotFound", "no such path"),
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        match (parts.method.as_str(), rest) {
            ("GET", [])
                if query
                    .split('&')
                    .any(|p| p == "watch=true" || p == "watch=1") =>
            {
                let from = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("resourceVersion="))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                self.watch(kind, ns.map(str::to_owned), from)
            }
            ("GET", []) => {
                let st = self.state.lock().unwrap();
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|((k, n, _), _)| *k == kind && ns.is_none_or(|ns| ns == n))
                    .map(|(_, v)| v.clone())
                    .collect();
                json_response(
                    200,
                    &json!({
                        "apiVersion": kind.api_version(), "kind": kind.list_kind(),
                        "metadata": {"resourceVersion": st.rv.to_string()},
                        "items": items
                    }),
                )
            }
            ("GET", [name]) => match self.get(kind, ns.unwrap_or_default(), name) {
                Some(obj) => json_response(200, &obj),
                None => status(404, "NotFound", &format!("{name} not found")),
            },
            ("POST", []) => {
                let mut obj: Value = serde_json::from_slice(&body).unwrap();
                let ns = ns.unwrap_or_default();
                obj["metadata"]["namespace"] = json!(ns);
                let name = obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if self.get(kind, ns, &name).is_some() {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                let mut st = self.state.lock().unwrap();
                obj["metadata"]["uid"] = json!(st.next_uid());
                st.emit(&self.events, "ADDED", obj);
                let created = st.objects.get(&(kind, ns.into(), name)).cloned();
                json_response(201, &created.unwrap_or_default())
            }
            ("PATCH", [name, sub @ ..]) => {
                let ns = ns.unwrap_or_default();
                let mut st = self.state.lock().unwrap();
                let Some(current) = st.objects.get(&(kind, ns.into(), (*name).into())).cloned()
                else {
                    return status(404, "NotFound", &format!("{name} not found"));
                };
                let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
                let mut next = current.clone();
                if content_type.starts_with("application/json-patch+json") {
                    // The API server's JSON patch reads a missing member as null for `test`
                    // (what kube-runtime's finalizer helper relies on).
                    if next["metadata"].get("finalizers").is_none() {
                        next["metadata"]["finalizers"] = Value::Null;
                    }
                    let Ok(p) = serde_json::from_value::<json_patch::Patch>(patch) else {
                        return status(400, "BadRequest", "invalid JSON patch");
                    };
                    if json_patch::patch(&mut next, &p).is_err() {
                        return status(422, "Invalid", "the JSON patch does not apply");
                    }
                } else if content_type.starts_with("application/merge-patch+json") {
                    json_patch::merge(&mut next, &patch);
                } else {
                    return status(415, "UnsupportedMediaType", &content_type);
                }
                // The status subresource changes only status; the main resource never does.
                if next["metadata"]["finalizers"].is_null()
                    && let Some(m) = next["metadata"].as_object_mut()
                {
                    m.remove("finalizers");
                }
                let mut result = current.clone();
                if sub == ["status"] {
                    result["status"] = next["status"].clone();
                } else {
                    result["metadata"] = next["metadata"].clone();
                    result["spec"] = next["spec"].clone();
                }
                st.settle(&self.events, result.clone());
                let stored = st
                    .objects
                    .get(&(kind, ns.into(), (*name).into()))
                    .cloned()
                    .unwrap_or(result);
                json_response(200, &stored)
            }
            _ => status(405, "MethodNotAllowed", "not supported by the fake"),
        }
    }

    fn watch(&self, kind: Kind, ns: Option<String>, from: u64) -> Resp {
        let st = self.state.lock().unwrap();
        // Subscribing under the lock: no event falls between the backlog and the live feed.
        let rx = self.events.subscribe();
        let wanted = move |e: &Event| e.kind == kind && ns.as_ref().is_none_or(|n| *n == e.ns);
        let backlog: Vec<Event> = st
            .log
            .iter()
            .filter(|e| e.rv > from && wanted(e))
            .cloned()
            .collect();
        drop(st);
        let line = |e: Event| {
            let mut bytes =
                serde_json::to_vec(&json!({"type": e.type_, "object": e.object})).unwrap();
            bytes.push(b'\n');
            Ok::<_, Infallible>(Frame::data(Bytes::from(bytes)))
        };
        let live = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let wanted2 = wanted.clone();
        let stream = futures::stream::iter(backlog)
            .chain(live.filter(move |e| futures::future::ready(wanted2(e))))
            .map(line);
        hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(BoxBody::new(StreamBody::new(stream)))
            .unwrap()
    }
}

fn json_response(code: u16, value: &Value) -> Resp {
    hyper::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(BoxBody::new(Full::new(Bytes::from(
            serde_json::to_vec(value).unwrap(),
        ))))
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Resp {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "reason": reason, "message": message, "code": code}),
    )
}
