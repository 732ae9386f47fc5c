//! The Spin host's ports on WASIp3: spin-sdk 7 (`wasi:http/handler@0.3.0`,
//! `spin:key-value/key-value@3.0.0`, `spin:sqlite/sqlite@3.1.0`,
//! `spin:variables/variables@3.0.0`), which Spin ≥ 4.1 serves — and reuses: one instance
//! answers up to 128 requests, 16 at a time (Spin's defaults), where the spin-sdk 5.2 build
//! ([`super::spin`]) gets a fresh instance for every request.
//!
//! What the two builds share is the core; this adapter differs from [`super::spin`] only where
//! the SDK does: every store call is async (so a busy SQLite is waited out with the WASI clock
//! instead of blocking the instance, whose other requests go on meanwhile), the response is an
//! `http::Response` (repeated `Set-Cookie` survive), and SQLite rows come back as a stream.
//!
//! Reuse changes nothing about state: every request builds its own ports, its own store and
//! database handles, and nothing here outlives the request. A per-instance cache may be added
//! only for what may be stale (DESIGN.md, "KV holds only what may be stale"): bounded in size
//! and age, and never for single-use or revocation-critical state.

use std::cell::OnceCell;

use http_body_util::BodyExt as _;
use spin_sdk7::{key_value, sqlite, variables};

use super::busy;

use crate::ports::{
    Clock, Config, Kv, PortError, Ports, Rng, Row, Sql, Statement, UnixTime, Value,
};

/// spin-sdk 7, for [`crate::spin3_http_handler!`]'s expansion in the function crates.
pub use spin_sdk7 as sdk;

/// Exports `wasi:http/handler@0.3.0` from a function crate, serving every request with
/// `entry` (for example `edgeid::token::handle`) through [`handle`] — the WASIp3 counterpart of
/// `#[spin_sdk::http_component]`. It expands to what spin-sdk 7's `#[http_service]` expands to;
/// that attribute names its crate `::spin_sdk`, which in a function crate is spin-sdk 5.2 (the
/// WASIp2 build's), so the expansion is spelled out here with paths into this crate.
///
/// The expansion holds the SDK's `unsafe` export glue: invoke it inside a module that allows
/// `unsafe_code`, as the WASIp2 entry points are.
#[macro_export]
macro_rules! spin3_http_handler {
    ($function:expr, $entry:path) => {
        struct Spin3Handler;

        $crate::platform::spin3::sdk::wasip3::http::service::export!(Spin3Handler);

        impl $crate::platform::spin3::sdk::wasip3::exports::http::handler::Guest for Spin3Handler {
            async fn handle(
                request: $crate::platform::spin3::sdk::wasip3::http::types::Request,
            ) -> ::core::result::Result<
                $crate::platform::spin3::sdk::wasip3::http::types::Response,
                $crate::platform::spin3::sdk::wasip3::http::types::ErrorCode,
            > {
                let request = <$crate::platform::spin3::sdk::http::Request as
                    $crate::platform::spin3::sdk::http::FromRequest>::from_request(request)?;
                $crate::platform::spin3::sdk::http::IntoResponse::into_response(
                    $crate::platform::spin3::handle($function, request, $entry).await,
                )
            }
        }
    };
}

/// The response body handed to spin-sdk 7.
pub type Body = http_body_util::Full<bytes::Bytes>;

/// Serves one request with `entry`, the core's entry for `function`'s endpoint group (for
/// example `edgeid::token::handle`), as [`super::spin::handle`] does on WASIp2.
///
/// The body is read as a stream and refused (413) from its `Content-Length` or as soon as it
/// passes the core's limit, without ever being buffered beyond it (issue 9).
pub async fn handle(
    function: crate::Function,
    req: spin_sdk7::http::Request,
    entry: impl AsyncFn(&SpinPorts, crate::Request) -> crate::Response,
) -> http::Response<Body> {
    let ports = SpinPorts::default();
    let req = match into_core_request(req, &ports).await {
        Ok(Some(req)) => req,
        Ok(None) => return from_core_response(crate::web::payload_too_large()),
        Err(e) => {
            eprintln!("edgeid {}: unreadable request: {e}", function.name());
            let mut resp = http::Response::new(Body::from("Bad Request\n"));
            *resp.status_mut() = http::StatusCode::BAD_REQUEST;
            return resp;
        }
    };
    from_core_response(crate::serve(entry, &ports, req).await)
}

/// The core routes on `req.uri().path()`, so the URI is the request's own path and query
/// (Spin hands the guest an absolute URI). `None` when the body is over the core's limit.
async fn into_core_request(
    req: spin_sdk7::http::Request,
    ports: &SpinPorts,
) -> Result<Option<crate::Request>, String> {
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let addr = parts
        .headers
        .get("spin-client-addr")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let declared_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(body) = read_body(body, declared_length).await? else {
        return Ok(None);
    };
    let mut core = http::Request::new(body);
    *core.method_mut() = parts.method;
    *core.uri_mut() = path_and_query
        .parse()
        .map_err(|e| format!("request target: {e}"))?;
    *core.headers_mut() = parts.headers;
    // Spin sets `spin-client-addr` from the connection (the socket peer: behind an ingress,
    // the proxy, whose forwarding headers count only when `trusted_proxies` names it).
    crate::throttle::record_client_addr(&mut core, addr.as_deref(), ports);
    Ok(Some(core))
}

/// Reads the body, keeping at most the core's limit (`None` beyond it); the same rule as
/// [`super::spin`]: a declared length over [`DRAIN_LIMIT`] is refused before reading a byte, a
/// smaller oversized body is drained so the client gets its 413.
async fn read_body<B>(body: B, declared_length: Option<u64>) -> Result<Option<Vec<u8>>, String>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let limit = crate::web::MAX_BODY_BYTES;
    if declared_length.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Ok(None);
    }
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e:?}"))?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            return Ok(None);
        }
    }
    Ok((seen <= limit).then_some(buf))
}

/// How much of an oversized body is read and discarded before giving up on it.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

fn from_core_response(resp: crate::Response) -> http::Response<Body> {
    resp.map(|body| Body::new(bytes::Bytes::from(body)))
}

/// The ports of one request.
pub struct SpinPorts {
    sql: SpinSql,
    credentials: SpinSql,
    kv: SpinKv,
}

impl Default for SpinPorts {
    fn default() -> Self {
        Self {
            sql: SpinSql::labelled("default"),
            credentials: SpinSql::labelled(CREDENTIALS_LABEL),
            kv: SpinKv::default(),
        }
    }
}

/// The Spin SQLite label of the credentials database (as [`super::spin::CREDENTIALS_LABEL`]).
pub const CREDENTIALS_LABEL: &str = "credentials";

/// A Spin SQLite database by label, opened on first use.
pub struct SpinSql {
    label: &'static str,
    conn: OnceCell<Result<sqlite::Connection, String>>,
}

/// The `default` Spin key-value store, opened on first use.
#[derive(Default)]
pub struct SpinKv {
    store: OnceCell<Result<key_value::Store, String>>,
}

impl SpinSql {
    fn labelled(label: &'static str) -> Self {
        Self {
            label,
            conn: OnceCell::new(),
        }
    }

    /// Opens the connection once. No borrow is held across the `await`: if two statements of
    /// one request race to open it, the first result is kept and the other handle dropped.
    async fn conn(&self) -> Result<&sqlite::Connection, PortError> {
        if self.conn.get().is_none() {
            let opened = sqlite::Connection::open(self.label)
                .await
                .map_err(|e| format!("{e:?}"));
            let _ = self.conn.set(opened);
        }
        match self.conn.get() {
            Some(Ok(conn)) => Ok(conn),
            Some(Err(e)) => Err(PortError::other(format!(
                "opening SQLite database '{}': {e}",
                self.label
            ))),
            // Invariant: set just above when it was empty.
            None => Err(PortError::other("SQLite connection vanished")),
        }
    }

    async fn run(conn: &sqlite::Connection, stmt: &Statement) -> Result<Vec<Row>, PortError> {
        let params: Vec<sqlite::Value> = stmt.params.iter().map(to_spin).collect();
        let result = conn.execute(stmt.sql, params).await.map_err(sql_err)?;
        let rows = result.collect().await.map_err(sql_err)?;
        Ok(rows
            .into_iter()
            .map(|r| Row(r.values.into_iter().map(from_spin).collect()))
            .collect())
    }

    async fn exec(conn: &sqlite::Connection, sql: &str) -> Result<(), PortError> {
        let result = conn.execute(sql, []).await.map_err(sql_err)?;
        result.collect().await.map(drop).map_err(sql_err)
    }

    async fn batch_once(
        conn: &sqlite::Connection,
        stmts: &[Statement],
    ) -> Result<(), (PortError, bool)> {
        if let Err(e) = Self::exec(conn, "BEGIN IMMEDIATE").await {
            let retry = busy::is_busy(&e.message);
            return Err((e, retry));
        }
        let mut outcome = Ok(());
        for stmt in stmts {
            if let Err(e) = Self::run(conn, stmt).await {
                outcome = Err(e);
                break;
            }
        }
        if outcome.is_ok() {
            outcome = Self::exec(conn, "COMMIT").await;
        }
        let Err(e) = outcome else { return Ok(()) };
        let rolled_back = match Self::exec(conn, "ROLLBACK").await {
            Ok(()) => true,
            Err(r) => r.message.contains("no transaction is active"),
        };
        let retry = rolled_back && busy::is_busy(&e.message);
        Err((e, retry))
    }
}

impl Sql for SpinSql {
    /// One statement in autocommit mode; a `SQLITE_BUSY` refusal changed nothing and is retried
    /// (see [`super::spin`]'s `SpinSql::query`).
    async fn query(&self, stmt: Statement) -> Result<Vec<Row>, PortError> {
        let conn = self.conn().await?;
        let mut backoff = busy::Backoff::default();
        loop {
            match Self::run(conn, &stmt).await {
                Ok(rows) => return Ok(rows),
                Err(e) if busy::is_busy(&e.message) => wait(&mut backoff, e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// `BEGIN IMMEDIATE` … `COMMIT` on the one connection resource, retried as a whole only
    /// where SQLite refused it before anything was committed (see [`super::spin`]'s
    /// `SpinSql::batch`).
    async fn batch(&self, stmts: Vec<Statement>) -> Result<(), PortError> {
        let conn = self.conn().await?;
        let mut backoff = busy::Backoff::default();
        loop {
            match Self::batch_once(conn, &stmts).await {
                Ok(()) => return Ok(()),
                Err((e, true)) => wait(&mut backoff, e).await?,
                Err((e, false)) => return Err(e),
            }
        }
    }
}

/// Waits out one refusal with the WASI clock (the instance's other requests run meanwhile), or
/// reports `e` once the back-off budget is spent.
async fn wait(backoff: &mut busy::Backoff, e: PortError) -> Result<(), PortError> {
    match backoff.next_wait(jitter()) {
        Some(wait) => {
            spin_sdk7::time::sleep(wait).await;
            Ok(())
        }
        None => Err(PortError::other(format!(
            "{} (still locked after {:?} of retries)",
            e.message,
            busy::BUDGET
        ))),
    }
}

fn jitter() -> u32 {
    let mut b = [0u8; 4];
    // No randomness only means no spread between waiters.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

fn to_spin(v: &Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Integer(n) => sqlite::Value::Integer(*n),
        Value::Text(s) => sqlite::Value::Text(s.clone()),
    }
}

/// As [`super::spin`]: REAL and BLOB read as the native host reads them.
fn from_spin(v: sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(n) => Value::Integer(n),
        sqlite::Value::Real(f) => Value::Text(f.to_string()),
        sqlite::Value::Text(s) => Value::Text(s),
        sqlite::Value::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

fn sql_err(e: sqlite::Error) -> PortError {
    match e {
        sqlite::Error::Io(message) => PortError::from_sqlite_message(message),
        other => PortError::other(format!("{other:?}")),
    }
}

impl SpinKv {
    async fn store(&self) -> Result<&key_value::Store, PortError> {
        if self.store.get().is_none() {
            let opened = key_value::Store::open_default()
                .await
                .map_err(|e| format!("{e:?}"));
            let _ = self.store.set(opened);
        }
        match self.store.get() {
            Some(Ok(store)) => Ok(store),
            Some(Err(e)) => Err(PortError::other(format!(
                "opening key-value store 'default': {e}"
            ))),
            // Invariant: set just above when it was empty.
            None => Err(PortError::other("key-value store vanished")),
        }
    }
}

/// Spin >= 4.1 reuses a WASIp3 instance for many requests (issue 12, item 4), so the
/// signing-key and JWKS cache reads are memoized in it for a few seconds ([`super::memo`],
/// as on Workers): only the caches the core names stale-tolerant, never client records or
/// lock markers.
impl Kv for SpinKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let memoizable = super::memo::memoizable(key);
        let now = unix_now();
        if memoizable && let Some(value) = super::memo::get(key, now) {
            return Ok(value);
        }
        let value = self.store().await?.get(key).await.map_err(kv_err)?;
        if memoizable {
            super::memo::put(key, now, value.as_deref());
        }
        Ok(value)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), PortError> {
        super::memo::forget(key);
        self.store().await?.set(key, value).await.map_err(kv_err)
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        super::memo::forget(key);
        self.store().await?.delete(key).await.map_err(kv_err)
    }
}

fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn kv_err(e: key_value::Error) -> PortError {
    PortError::other(format!("key-value: {e:?}"))
}

impl Clock for SpinPorts {
    fn now(&self) -> UnixTime {
        unix_now()
    }
}

impl Rng for SpinPorts {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        getrandom::fill(buf).map_err(|e| PortError::other(format!("getrandom: {e}")))
    }
}

/// The core reads configuration synchronously; `spin:variables@3.0.0.get` is an async import.
/// The call is awaited on the spot (`wit_bindgen::block_on`: this request's task waits on the
/// host, which answers from memory), so names keep being read lazily, exactly those a flow
/// asks for, as on WASIp2.
impl Config for SpinPorts {
    fn var(&self, name: &str) -> Option<String> {
        match spin_sdk7::wit_bindgen::block_on(variables::get(name.to_owned())) {
            Ok(value) => Some(value),
            Err(variables::Error::Undefined(_)) => None,
            Err(e) => {
                eprintln!("edgeid: variable {name:?}: {e:?}");
                None
            }
        }
    }
}

impl Ports for SpinPorts {
    type Sql = SpinSql;
    type Kv = SpinKv;

    fn sql(&self) -> &SpinSql {
        &self.sql
    }

    fn credentials(&self) -> &SpinSql {
        &self.credentials
    }

    fn kv(&self) -> &SpinKv {
        &self.kv
    }

    /// Spin's outbound HTTP (`wasi:http/client@0.3.0`). Spin refuses a destination the
    /// component's `allowed_outbound_hosts` does not list; that refusal is the error here.
    async fn fetch(
        &self,
        request: crate::ports::OutboundRequest,
    ) -> Result<crate::ports::OutboundResponse, PortError> {
        let uri = request.uri().to_string();
        let request = request.map(|body| Body::new(bytes::Bytes::from(body)));
        let response = spin_sdk7::http::send(request)
            .await
            .map_err(|e| PortError::other(format!("POST {uri}: {e}")))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| PortError::other(format!("POST {uri}: body: {e:?}")))?
            .to_bytes()
            .to_vec();
        Ok(http::Response::from_parts(parts, body))
    }
}
