//! The Spin host's ports: Spin SQLite, Spin key-value and Spin variables through spin-sdk 5.2
//! (`fermyon:spin/*@2.0.0`, which every Spin from 2.x on serves), the WASI clock and random
//! source.
//!
//! spin-sdk's calls are synchronous, so the core's async ports complete immediately here.
//! Stores are opened on first use: a discovery request answered from the KV cache never opens
//! SQLite, and a store the component was not granted surfaces as a [`PortError`] the flow
//! turns into `server_error`, not as a bare 500 from the SDK.

use std::cell::OnceCell;

use spin_sdk::{key_value, sqlite, variables};

use super::busy;

use crate::ports::{
    Clock, Config, Kv, PortError, Ports, Rng, Row, Sql, Statement, UnixTime, Value,
};

/// Serves one request with `entry`, the core's entry for `function`'s endpoint group (for
/// example `edgeid::token::handle`): builds the ports, converts the request, runs the flow and
/// converts the response back. `function` only names the component in logs; the entry is a
/// value, not a switch, so the component links nothing but its own flows.
///
/// The entry point takes the SDK's streaming `IncomingRequest`, not its buffered `Request`: a
/// body over the core's limit is refused (413) from its `Content-Length`, or as soon as the
/// stream passes the limit, without ever being buffered (issue 9).
pub async fn handle(
    function: crate::Function,
    req: spin_sdk::http::IncomingRequest,
    entry: impl AsyncFn(&SpinPorts, crate::Request) -> crate::Response,
) -> spin_sdk::http::Response {
    let ports = SpinPorts::default();
    let req = match into_core_request(req, &ports).await {
        Ok(Some(req)) => req,
        Ok(None) => return from_core_response(crate::web::payload_too_large()),
        Err(e) => {
            eprintln!("edgeid {}: unreadable request: {e}", function.name());
            return spin_sdk::http::Response::new(400, "Bad Request\n");
        }
    };
    let resp = crate::serve(entry, &ports, req).await;
    from_core_response(resp)
}

/// The core routes on `req.uri().path()`, so the URI is the request's own path and query
/// (`spin-path-info` is only the part after the matched route prefix). `None` when the body
/// is over the core's limit.
async fn into_core_request(
    req: spin_sdk::http::IncomingRequest,
    ports: &SpinPorts,
) -> Result<Option<crate::Request>, String> {
    let path_and_query = req
        .path_with_query()
        .ok_or_else(|| "request without a path".to_owned())?;
    let method =
        http::Method::from_bytes(req.method().to_string().as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    let mut addr = None;
    let mut declared_length = None;
    for (name, value) in req.headers().entries() {
        if name.eq_ignore_ascii_case("spin-client-addr") {
            // Spin sets `spin-client-addr` from the connection (the socket peer: behind an
            // ingress, the proxy, whose forwarding headers count only when `trusted_proxies`
            // names it).
            addr = String::from_utf8(value.clone()).ok();
        } else if name.eq_ignore_ascii_case("content-length") {
            declared_length = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
        }
        builder = builder.header(name, value);
    }
    let Some(body) = read_body(req, declared_length).await? else {
        return Ok(None);
    };
    let mut core = builder.body(body).map_err(|e| e.to_string())?;
    crate::throttle::record_client_addr(&mut core, addr.as_deref(), ports);
    Ok(Some(core))
}

/// Reads the body as a stream, keeping at most the core's limit (`None` beyond it). A
/// declared `Content-Length` over [`DRAIN_LIMIT`] is refused before reading a byte; a smaller
/// oversized body is read to its end and discarded so the client gets its 413 rather than a
/// reset connection halfway through its upload. Nothing past the limit is ever kept.
async fn read_body(
    req: spin_sdk::http::IncomingRequest,
    declared_length: Option<u64>,
) -> Result<Option<Vec<u8>>, String> {
    use futures_util::StreamExt as _;
    let limit = crate::web::MAX_BODY_BYTES;
    if declared_length.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Ok(None);
    }
    let mut stream = std::pin::pin!(req.into_body_stream());
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("body: {}", e.to_debug_string()))?;
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

/// spin-sdk's `Response` keeps one value per header name. Repeated fields are joined with
/// `", "` (RFC 9110 §5.3), which is exact for list-valued fields; `Set-Cookie` cannot be joined
/// that way (RFC 6265 §3), so a response carrying more than one loses all but the last.
fn from_core_response(resp: crate::Response) -> spin_sdk::http::Response {
    let (parts, body) = resp.into_parts();
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(parts.headers.keys_len());
    for name in parts.headers.keys() {
        let mut values = parts.headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let mut value = first.as_bytes().to_vec();
        for more in values {
            if name == http::header::SET_COOKIE {
                eprintln!("edgeid: spin-sdk keeps only one Set-Cookie per response");
                value = more.as_bytes().to_vec();
            } else {
                value.extend_from_slice(b", ");
                value.extend_from_slice(more.as_bytes());
            }
        }
        headers.push((name.as_str().to_owned(), value));
    }
    spin_sdk::http::Response::builder()
        .status(parts.status.as_u16())
        .headers(headers)
        .body(body)
        .build()
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

/// The Spin SQLite label of the credentials database. Only the components that need it
/// declare it in `spin.toml`; Spin refuses it to every other one (`access-denied`).
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

    fn conn(&self) -> Result<&sqlite::Connection, PortError> {
        self.conn
            .get_or_init(|| sqlite::Connection::open(self.label).map_err(|e| format!("{e:?}")))
            .as_ref()
            .map_err(|e| PortError::other(format!("opening SQLite database '{}': {e}", self.label)))
    }

    fn run(conn: &sqlite::Connection, stmt: &Statement) -> Result<Vec<Row>, PortError> {
        let params: Vec<sqlite::Value> = stmt.params.iter().map(to_spin).collect();
        let result = conn.execute(stmt.sql, &params).map_err(sql_err)?;
        Ok(result
            .rows
            .into_iter()
            .map(|r| Row(r.values.into_iter().map(from_spin).collect()))
            .collect())
    }

    fn exec(conn: &sqlite::Connection, sql: &str) -> Result<(), PortError> {
        conn.execute(sql, &[]).map(drop).map_err(sql_err)
    }
}

impl Sql for SpinSql {
    /// One statement in autocommit mode. SQLite: "If the statement is a COMMIT or occurs
    /// outside of an explicit transaction, then you can retry the statement" (`sqlite3_step`,
    /// SQLITE_BUSY) — a refused statement changed nothing, so it is retried.
    async fn query(&self, stmt: Statement) -> Result<Vec<Row>, PortError> {
        let conn = self.conn()?;
        retry_busy(|| {
            Self::run(conn, &stmt).map_err(|e| {
                let retry = busy::is_busy(&e.message);
                (e, retry)
            })
        })
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front, so a batch never fails half-way on a
    /// lock upgrade; every statement runs on the same connection resource.
    ///
    /// Spin's connections set no busy timeout: while another connection writes, `BEGIN
    /// IMMEDIATE` is refused at once (nothing ran). A refusal later in the batch — a statement
    /// or the `COMMIT` — leaves the transaction open or rolled back by SQLite itself
    /// (sqlite.org/lang_transaction.html), never committed; after our `ROLLBACK` nothing of
    /// the attempt remains. Only those refusals are retried, the whole batch each time; any
    /// other failure, or a `ROLLBACK` that fails for another reason than "no transaction is
    /// active", is reported as it is.
    async fn batch(&self, stmts: Vec<Statement>) -> Result<(), PortError> {
        let conn = self.conn()?;
        retry_busy(|| {
            if let Err(e) = Self::exec(conn, "BEGIN IMMEDIATE") {
                let retry = busy::is_busy(&e.message);
                return Err((e, retry));
            }
            let outcome = stmts
                .iter()
                .try_for_each(|stmt| Self::run(conn, stmt).map(drop))
                .and_then(|()| Self::exec(conn, "COMMIT"));
            let Err(e) = outcome else { return Ok(()) };
            let rolled_back = match Self::exec(conn, "ROLLBACK") {
                Ok(()) => true,
                Err(r) => r.message.contains("no transaction is active"),
            };
            let retry = rolled_back && busy::is_busy(&e.message);
            Err((e, retry))
        })
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the back-off budget is spent.
/// `attempt` answers each failure with whether it is safe to run again.
///
/// The component is synchronous here: `std::thread::sleep` on wasm32-wasip2 waits on a
/// `wasi:clocks` pollable, which the host serves asynchronously, so other requests go on.
fn retry_busy<T>(
    mut attempt: impl FnMut() -> Result<T, (PortError, bool)>,
) -> Result<T, PortError> {
    let mut backoff = busy::Backoff::default();
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err((e, true)) => match backoff.next_wait(jitter()) {
                Some(wait) => std::thread::sleep(wait),
                None => {
                    return Err(PortError::other(format!(
                        "{} (still locked after {:?} of retries)",
                        e.message,
                        busy::BUDGET
                    )));
                }
            },
            Err((e, false)) => return Err(e),
        }
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

/// The schema holds only INTEGER and TEXT; REAL and BLOB are mapped as the native host maps
/// them, so a stray value reads the same on every host.
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
    fn store(&self) -> Result<&key_value::Store, PortError> {
        self.store
            .get_or_init(|| key_value::Store::open_default().map_err(|e| format!("{e:?}")))
            .as_ref()
            .map_err(|e| PortError::other(format!("opening key-value store 'default': {e}")))
    }
}

impl Kv for SpinKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        self.store()?.get(key).map_err(kv_err)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), PortError> {
        self.store()?.set(key, value).map_err(kv_err)
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.store()?.delete(key).map_err(kv_err)
    }
}

fn kv_err(e: key_value::Error) -> PortError {
    PortError::other(format!("key-value: {e:?}"))
}

impl Clock for SpinPorts {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

impl Rng for SpinPorts {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        getrandom::fill(buf).map_err(|e| PortError::other(format!("getrandom: {e}")))
    }
}

/// Config names are Spin variable names as they are (lower snake case); the component must
/// map each one in `[component.X.variables]`, or it reads as unset.
impl Config for SpinPorts {
    fn var(&self, name: &str) -> Option<String> {
        match variables::get(name) {
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

    /// Spin's outbound HTTP (`wasi:http/outgoing-handler`). Spin refuses a destination the
    /// component's `allowed_outbound_hosts` does not list; that refusal is the error here.
    async fn fetch(
        &self,
        request: crate::ports::OutboundRequest,
    ) -> Result<crate::ports::OutboundResponse, PortError> {
        let uri = request.uri().to_string();
        let response: spin_sdk::http::Response = spin_sdk::http::send(request)
            .await
            .map_err(|e| PortError::other(format!("POST {uri}: {e}")))?;
        let status = http::StatusCode::from_u16(*response.status())
            .map_err(|e| PortError::other(format!("POST {uri}: {e}")))?;
        let mut out = http::Response::new(response.into_body());
        *out.status_mut() = status;
        Ok(out)
    }
}
