//! An in-process provider: edgeid's own admin API (`edgeid::admin`, the core's rules and an
//! in-memory SQLite database) behind a real HTTP listener on an ephemeral port, recording
//! every request so tests can assert what the sidecar sent. `set_down(true)` makes it drop
//! connections, the way a provider that is down looks to a client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub const TOKEN: &str = "test-admin-token";

/// One request the provider received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: serde_json::Value,
}

pub struct FakeProvider {
    pub url: String,
    log: Arc<Mutex<Vec<Seen>>>,
    down: Arc<AtomicBool>,
}

impl FakeProvider {
    pub fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (log2, down2) = (log.clone(), down.clone());
        // The core's ports are `!Send` (as on Workers): one thread, one local task set.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let host = Rc::new(edgeid::testing::MemoryHost::bare());
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    if down2.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    let (host, log, down) = (host.clone(), log2.clone(), down2.clone());
                    tokio::task::spawn_local(async move {
                        let service = service_fn(move |req: hyper::Request<Incoming>| {
                            let (host, log, down) = (host.clone(), log.clone(), down.clone());
                            async move { serve(&host, &log, &down, req).await }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self {
            url: format!("http://{addr}"),
            log,
            down,
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The requests received since the last call.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// The requests received since the last call, without the read-only ones.
    pub fn take_writes(&self) -> Vec<Seen> {
        self.take()
            .into_iter()
            .filter(|s| s.method != "GET")
            .collect()
    }

    /// Calls the admin API directly (test setup and inspection).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let before = self.log.lock().unwrap().len();
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        // Inspection is not part of what the sidecar sent.
        self.log.lock().unwrap().truncate(before);
        (status, value)
    }

    pub async fn client(&self, id: &str) -> Option<serde_json::Value> {
        match self
            .call(reqwest::Method::GET, &format!("/admin/clients/{id}"), None)
            .await
        {
            (200, v) => Some(v),
            (404, _) => None,
            other => panic!("GET client {id}: {other:?}"),
        }
    }
}

async fn serve(
    host: &edgeid::testing::MemoryHost,
    log: &Mutex<Vec<Seen>>,
    down: &AtomicBool,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if down.load(Ordering::SeqCst) {
        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"down")));
        *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
        return Ok(resp);
    }
    log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let req = http::Request::from_parts(parts, body.to_vec());
    let resp = host.request(req).await;
    let (parts, body) = resp.into_parts();
    Ok(hyper::Response::from_parts(
        parts,
        Full::new(Bytes::from(body)),
    ))
}
