//! The Cloudflare Workers host's ports: D1 (binding `DB`), Workers KV (binding `KV`), Worker
//! vars and secrets, the JS clock and `crypto.getRandomValues` through workers-rs 0.8.
//!
//! Bindings are per Worker (each function's `infra/cloudflare/wrangler.<name>.jsonc`), so they
//! are looked up on first use: a Worker without a binding it never touches works, and one that
//! reaches for a binding it was not granted gets a [`PortError`] the flow turns into
//! `server_error`.

use std::cell::OnceCell;

use worker::js_sys::{self, Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, Env, KvStore};

use crate::ports::{
    Clock, Config, Kv, PortError, Ports, Rng, Row, Sql, Statement, UnixTime, Value,
};

/// The D1 database binding every function that needs SQL declares.
const D1_BINDING: &str = "DB";
/// The credentials database (password hashes), bound only to the login, recovery and admin
/// Workers (DESIGN.md, least privilege).
const CREDENTIALS_BINDING: &str = "CREDENTIALS";
/// The Workers KV namespace binding.
const KV_BINDING: &str = "KV";

/// JS numbers carry integers exactly up to 2^53 - 1 (`Number.MAX_SAFE_INTEGER`), and D1 binds
/// and returns INTEGER values as JS numbers.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Serves one request with `entry`, the core's entry for `function`'s endpoint group (for
/// example `edgeid::token::handle`): builds the ports, converts the request, runs the flow and
/// converts the response back. `function` only names the Worker in logs; the entry is a
/// value, not a switch, so the Worker links nothing but its own flows.
pub async fn handle(
    function: crate::Function,
    mut req: worker::Request,
    env: Env,
    entry: impl AsyncFn(&CloudflarePorts, crate::Request) -> crate::Response,
) -> worker::Result<worker::Response> {
    let core_req = match into_core_request(&mut req).await {
        Ok(Some(core_req)) => core_req,
        Ok(None) => return from_core_response(crate::web::payload_too_large()),
        Err(e) => {
            worker::console_error!("edgeid {}: unreadable request: {e}", function.name());
            return worker::Response::error("Bad Request\n", 400);
        }
    };
    let ports = CloudflarePorts::new(env);
    let resp = crate::serve(entry, &ports, core_req).await;
    from_core_response(resp)
}

/// The admin Worker's Cron Trigger (`triggers.crons` in `wrangler.admin.jsonc`): one pruning
/// pass ([`crate::prune`]), its summary in the Worker's log.
pub async fn scheduled(env: Env) {
    let ports = CloudflarePorts::new(env);
    match crate::prune::run_now(&ports).await {
        Ok(summary) => worker::console_log!(
            "edgeid prune: {}",
            serde_json::to_string(&summary).unwrap_or_default()
        ),
        Err(e) => worker::console_error!(
            "edgeid prune: {}",
            e.internal.as_deref().unwrap_or(&e.description)
        ),
    }
}

/// The core routes on `req.uri().path()`, so the URI is the request's own path and query.
/// The request as the core sees it, or `None` when its body is over the limit.
async fn into_core_request(req: &mut worker::Request) -> Result<Option<crate::Request>, String> {
    let url = req.url().map_err(|e| format!("URL: {e}"))?;
    let path_and_query = &url[worker::url::Position::BeforePath..worker::url::Position::AfterQuery];
    // The raw method: workers-rs' `Method` maps unknown methods to GET.
    let method = http::Method::from_bytes(req.inner().method().as_bytes())
        .map_err(|e| format!("method: {e}"))?;
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    // The Fetch API joins repeated request fields with ", " (RFC 9110 §5.3).
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    // Cloudflare's edge sets `CF-Connecting-IP`; a client cannot.
    let addr = req.headers().get("cf-connecting-ip").ok().flatten();
    let Some(body) = read_body(req).await? else {
        return Ok(None);
    };
    let mut core = builder.body(body).map_err(|e| e.to_string())?;
    // No trusted proxies here: the edge has already resolved the client.
    crate::throttle::set_client_addr(
        &mut core,
        addr.as_deref(),
        &crate::throttle::TrustedProxies::default(),
    );
    Ok(Some(core))
}

/// Reads the body as a stream, keeping at most the core's limit (`None` beyond it). A
/// declared `Content-Length` over the drain limit is refused before reading a byte; a smaller
/// oversized body is read to its end and discarded, so the client gets its 413 instead of a
/// reset connection halfway through its upload; nothing past the limit is ever buffered.
async fn read_body(req: &mut worker::Request) -> Result<Option<Vec<u8>>, String> {
    use futures_util::StreamExt as _;
    const DRAIN_LIMIT: usize = 4 * 1024 * 1024;
    if req.inner().body().is_none() {
        return Ok(Some(Vec::new()));
    }
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Ok(None);
    }
    let mut stream = req.stream().map_err(|e| format!("body: {e}"))?;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("body: {e}"))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= crate::web::MAX_BODY_BYTES {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            return Ok(None);
        }
    }
    Ok((seen <= crate::web::MAX_BODY_BYTES).then_some(buf))
}

/// Repeated header fields (`Set-Cookie` among them) stay separate fields: the Fetch API's
/// `Headers.append` keeps each `Set-Cookie` on its own.
fn from_core_response(resp: crate::Response) -> worker::Result<worker::Response> {
    let (parts, body) = resp.into_parts();
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        headers.append(name.as_str(), &String::from_utf8_lossy(value.as_bytes()))?;
    }
    // The Fetch API refuses statuses outside 200..=599 and a body on 204/205/304.
    let status = match parts.status.as_u16() {
        s @ 200..=599 => s,
        other => {
            worker::console_error!("edgeid: status {other} cannot be sent from a Worker");
            500
        }
    };
    let builder = worker::ResponseBuilder::new()
        .with_status(status)
        .with_headers(headers);
    Ok(if body.is_empty() || matches!(status, 204 | 205 | 304) {
        builder.empty()
    } else {
        builder.fixed(body)
    })
}

/// The ports of one request.
pub struct CloudflarePorts {
    env: Env,
    sql: D1Sql,
    credentials: D1Sql,
    kv: WorkersKv,
}

impl CloudflarePorts {
    pub fn new(env: Env) -> Self {
        Self {
            sql: D1Sql {
                binding: D1_BINDING,
                env: env.clone(),
                db: OnceCell::new(),
            },
            credentials: D1Sql {
                binding: CREDENTIALS_BINDING,
                env: env.clone(),
                db: OnceCell::new(),
            },
            kv: WorkersKv {
                env: env.clone(),
                store: OnceCell::new(),
            },
            env,
        }
    }
}

/// D1 through its binding, looked up on first use.
pub struct D1Sql {
    binding: &'static str,
    env: Env,
    db: OnceCell<Result<D1Database, String>>,
}

/// Workers KV through its binding, looked up on first use.
pub struct WorkersKv {
    env: Env,
    store: OnceCell<Result<KvStore, String>>,
}

impl D1Sql {
    fn db(&self) -> Result<&D1Database, PortError> {
        self.db
            .get_or_init(|| self.env.d1(self.binding).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| PortError::other(format!("D1 binding {}: {e}", self.binding)))
    }

    fn prepare(
        db: &D1Database,
        stmt: &Statement,
    ) -> Result<worker::D1PreparedStatement, PortError> {
        let params = stmt
            .params
            .iter()
            .map(to_js)
            .collect::<Result<Vec<_>, _>>()?;
        db.prepare(stmt.sql).bind(&params).map_err(d1_err)
    }
}

/// D1 runs each database's queries one at a time, so SQLite's busy refusal ("database is
/// locked") should never reach a Worker; if one does, nothing ran, and it is retried with the
/// shared back-off. D1's other transient errors ("Network connection lost", "storage caused
/// object to be reset", ...) leave a write's outcome unknown: D1 itself retries read-only
/// queries on them (developers.cloudflare.com/d1/best-practices/retry-queries), and a write is
/// not run twice here, since a batch that did commit must not commit again.
impl Sql for D1Sql {
    /// `raw()` returns each row as an array in the order the query selected the columns.
    async fn query(&self, stmt: Statement) -> Result<Vec<Row>, PortError> {
        let mut backoff = super::busy::Backoff::default();
        loop {
            match self.query_once(&stmt).await {
                Err(e) if super::busy::is_busy(&e.message) => wait(&mut backoff, e).await?,
                other => return other,
            }
        }
    }

    /// D1 runs a batch as one transaction: if any statement fails, none takes effect.
    async fn batch(&self, stmts: Vec<Statement>) -> Result<(), PortError> {
        if stmts.is_empty() {
            return Ok(());
        }
        let mut backoff = super::busy::Backoff::default();
        loop {
            match self.batch_once(&stmts).await {
                Err(e) if super::busy::is_busy(&e.message) => wait(&mut backoff, e).await?,
                other => return other,
            }
        }
    }
}

impl D1Sql {
    async fn query_once(&self, stmt: &Statement) -> Result<Vec<Row>, PortError> {
        let rows = Self::prepare(self.db()?, stmt)?
            .raw_js_value()
            .await
            .map_err(d1_err)?;
        rows.into_iter()
            .map(|row| {
                let row = row
                    .dyn_into::<Array>()
                    .map_err(|v| PortError::other(format!("D1 row is not an array: {v:?}")))?;
                row.iter()
                    .map(from_js)
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }

    async fn batch_once(&self, stmts: &[Statement]) -> Result<(), PortError> {
        let db = self.db()?;
        let prepared = stmts
            .iter()
            .map(|s| Self::prepare(db, s))
            .collect::<Result<Vec<_>, _>>()?;
        // A failing statement rejects the whole batch, so the results hold nothing more.
        db.batch(prepared).await.map(drop).map_err(d1_err)
    }
}

/// Sleeps the next back-off step (a JS timer), or hands back `e` once the budget is spent.
async fn wait(backoff: &mut super::busy::Backoff, e: PortError) -> Result<(), PortError> {
    let mut b = [0u8; 4];
    // No randomness only means no spread between waiters.
    let _ = getrandom::fill(&mut b);
    match backoff.next_wait(u32::from_le_bytes(b)) {
        Some(d) => {
            worker::Delay::from(d).await;
            Ok(())
        }
        None => Err(e),
    }
}

fn to_js(v: &Value) -> Result<JsValue, PortError> {
    match v {
        Value::Null => Ok(JsValue::null()),
        // Within ±(2^53 - 1), so the cast to f64 is exact.
        Value::Integer(n) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(n) => {
            Ok(JsValue::from_f64(*n as f64))
        }
        Value::Integer(n) => Err(PortError::other(format!(
            "integer {n} does not fit D1's 2^53"
        ))),
        Value::Text(s) => Ok(JsValue::from_str(s)),
    }
}

/// The schema holds only INTEGER and TEXT. D1 returns both INTEGER and REAL as JS numbers:
/// integral ones read as INTEGER, others as text, as the native and Spin hosts read REAL.
/// A BLOB reads as (lossy UTF-8) text, as there.
fn from_js(v: JsValue) -> Result<Value, PortError> {
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Text(s));
    }
    if let Some(f) = v.as_f64() {
        // Integral and within ±(2^53 - 1), so the cast is exact.
        return Ok(if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
            Value::Integer(f as i64)
        } else {
            Value::Text(f.to_string())
        });
    }
    if v.is_instance_of::<js_sys::ArrayBuffer>() || v.is_instance_of::<js_sys::Uint8Array>() {
        let bytes = js_sys::Uint8Array::new(&v).to_vec();
        return Ok(Value::Text(String::from_utf8_lossy(&bytes).into_owned()));
    }
    Err(PortError::other(format!(
        "D1 value of unexpected type: {v:?}"
    )))
}

/// D1 reports SQLite's own message ("D1_ERROR: UNIQUE constraint failed: ..."), in the error
/// or in its cause.
fn d1_err(e: worker::Error) -> PortError {
    let message = match &e {
        worker::Error::D1(d1) => {
            let error: &js_sys::Error = d1.as_ref();
            format!("{} ({})", String::from(error.message()), d1.cause())
        }
        other => other.to_string(),
    };
    PortError::from_sqlite_message(message)
}

impl WorkersKv {
    fn store(&self) -> Result<&KvStore, PortError> {
        self.store
            .get_or_init(|| self.env.kv(KV_BINDING).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| PortError::other(format!("KV binding {KV_BINDING}: {e}")))
    }
}

/// An isolate serves many requests, so the signing-key and JWKS cache reads are memoized in
/// it for a few seconds ([`super::memo`]): a warm token request then costs two KV reads (the
/// client's lock marker and record) instead of three.
impl Kv for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let memoizable = super::memo::memoizable(key);
        let now = unix_now();
        if memoizable && let Some(value) = super::memo::get(key, now) {
            return Ok(value);
        }
        let value = self.store()?.get(key).bytes().await.map_err(kv_err)?;
        if memoizable {
            super::memo::put(key, now, value.as_deref());
        }
        Ok(value)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), PortError> {
        super::memo::forget(key);
        self.store()?
            .put_bytes(key, value)
            .map_err(kv_err)?
            .execute()
            .await
            .map_err(kv_err)
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        super::memo::forget(key);
        self.store()?.delete(key).await.map_err(kv_err)
    }
}

fn kv_err(e: worker::KvError) -> PortError {
    PortError::other(format!("Workers KV: {e}"))
}

impl Clock for CloudflarePorts {
    /// Workers freeze `Date.now()` during synchronous execution (a timing side-channel
    /// defence); it still advances between requests and across I/O, which is all `now` needs.
    fn now(&self) -> UnixTime {
        unix_now()
    }
}

fn unix_now() -> UnixTime {
    i64::try_from(worker::Date::now().as_millis() / 1000).unwrap_or(i64::MAX)
}

impl Rng for CloudflarePorts {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        getrandom::fill(buf).map_err(|e| PortError::other(format!("getrandom: {e}")))
    }
}

/// Core names are lower snake case (`key_encryption_key`); Worker vars and secrets are upper
/// snake case (`KEY_ENCRYPTION_KEY`). A secret wins over a var of the same name.
impl Config for CloudflarePorts {
    fn var(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_uppercase();
        self.env
            .secret(&name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(&name).map(|v| v.to_string()))
            .ok()
    }
}

impl Ports for CloudflarePorts {
    type Sql = D1Sql;
    type Kv = WorkersKv;

    fn sql(&self) -> &D1Sql {
        &self.sql
    }

    fn credentials(&self) -> &D1Sql {
        &self.credentials
    }

    fn kv(&self) -> &WorkersKv {
        &self.kv
    }

    /// Signs with WebCrypto (`crypto.subtle`, native code in workerd) instead of the software
    /// signer: an RS256 signature costs ~13 ms of CPU in pure-Rust wasm (TOOLCHAIN.md), over the
    /// Workers free plan's CPU budget on its own.
    ///
    /// WebCrypto stays the signer here: it is native code, while the wasm signer (ring) costs
    /// ~0.6 ms per ES256 and ~14 ms per RS256 signature under wasmtime (`cargo xtask bench
    /// sign`; not measured inside workerd). The wasm signer is the fallback should WebCrypto
    /// refuse a key or fail.
    async fn sign(
        &self,
        key: &crate::jose::PrivateKey,
        signing_input: &[u8],
    ) -> Result<Vec<u8>, PortError> {
        match webcrypto::sign(key, signing_input).await {
            Ok(signature) => Ok(signature),
            Err(_) => crate::jose::software_sign(key, signing_input),
        }
    }

    /// The Workers Fetch API. Redirects are not followed: a mail API answers directly.
    async fn fetch(
        &self,
        request: crate::ports::OutboundRequest,
    ) -> Result<crate::ports::OutboundResponse, PortError> {
        let (parts, body) = request.into_parts();
        let uri = parts.uri.to_string();
        let failed = |e: worker::Error| PortError::other(format!("{} {uri}: {e}", parts.method));
        let headers = worker::Headers::new();
        for (name, value) in &parts.headers {
            let value = value
                .to_str()
                .map_err(|_| PortError::other(format!("header {name} is not text")))?;
            headers.append(name.as_str(), value).map_err(failed)?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::from(parts.method.as_str().to_owned()))
            .with_headers(headers)
            .with_redirect(worker::RequestRedirect::Manual)
            .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
        let req = worker::Request::new_with_init(&uri, &init).map_err(failed)?;
        let mut resp = worker::Fetch::Request(req).send().await.map_err(failed)?;
        let status = http::StatusCode::from_u16(resp.status_code())
            .map_err(|e| PortError::other(format!("{uri}: {e}")))?;
        let bytes = resp.bytes().await.map_err(failed)?;
        let mut out = http::Response::new(bytes);
        *out.status_mut() = status;
        Ok(out)
    }
}

/// WebCrypto signing. Imported keys are cached per isolate by `kid`: a kid is the RFC 7638
/// thumbprint of exactly one key, so a cached entry can never sign with stale material.
mod webcrypto {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use worker::js_sys::{self, Array, Object, Reflect, Uint8Array};
    use worker::wasm_bindgen::{JsCast, JsValue};
    use worker::wasm_bindgen_futures::JsFuture;

    use crate::jose::{Alg, PrivateKey};
    use crate::ports::PortError;

    thread_local! {
        static KEYS: RefCell<HashMap<String, JsValue>> = RefCell::default();
    }

    fn js_err(what: &str) -> impl Fn(JsValue) -> PortError + '_ {
        move |e| PortError::other(format!("WebCrypto {what}: {e:?}"))
    }

    fn object(pairs: &[(&str, JsValue)]) -> Result<Object, PortError> {
        let o = Object::new();
        for (k, v) in pairs {
            Reflect::set(&o, &JsValue::from_str(k), v).map_err(js_err("object"))?;
        }
        Ok(o)
    }

    fn subtle() -> Result<JsValue, PortError> {
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
            .map_err(js_err("crypto"))?;
        Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(js_err("subtle"))
    }

    async fn call(subtle: &JsValue, method: &str, args: &Array) -> Result<JsValue, PortError> {
        let f: js_sys::Function = Reflect::get(subtle, &JsValue::from_str(method))
            .map_err(js_err(method))?
            .dyn_into()
            .map_err(js_err(method))?;
        let promise: js_sys::Promise = f
            .apply(subtle, args)
            .map_err(js_err(method))?
            .dyn_into()
            .map_err(js_err(method))?;
        JsFuture::from(promise).await.map_err(js_err(method))
    }

    /// The algorithm objects for `importKey` and `sign` (WebCrypto §23, §20).
    fn algorithms(alg: Alg) -> Result<(Object, Object), PortError> {
        let sha256 = JsValue::from_str("SHA-256");
        Ok(match alg {
            Alg::ES256 => (
                object(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?,
                object(&[("name", "ECDSA".into()), ("hash", sha256)])?,
            ),
            Alg::RS256 => (
                object(&[("name", "RSASSA-PKCS1-v1_5".into()), ("hash", sha256)])?,
                object(&[("name", "RSASSA-PKCS1-v1_5".into())])?,
            ),
        })
    }

    async fn import(
        subtle: &JsValue,
        key: &PrivateKey,
        import_alg: &Object,
    ) -> Result<JsValue, PortError> {
        let usages = Array::of1(&JsValue::from_str("sign"));
        let args = match key.alg {
            // A P-256 key stored before issue 12 is the raw scalar: import it as a JWK with
            // its public point (derived once per isolate, the import is cached).
            Alg::ES256 if key.is_raw_scalar() => {
                let public = key.public_jwk()?;
                let jwk = object(&[
                    ("kty", "EC".into()),
                    ("crv", "P-256".into()),
                    ("x", public.x.unwrap_or_default().into()),
                    ("y", public.y.unwrap_or_default().into()),
                    ("d", crate::crypto::b64url(key.private_bytes()).into()),
                ])?;
                Array::of5(&"jwk".into(), &jwk, import_alg, &JsValue::FALSE, &usages)
            }
            // Every other key is PKCS#8 DER (a P-256 one carries its public key).
            Alg::ES256 | Alg::RS256 => {
                let der = Uint8Array::from(key.private_bytes());
                Array::of5(&"pkcs8".into(), &der, import_alg, &JsValue::FALSE, &usages)
            }
        };
        call(subtle, "importKey", &args).await
    }

    pub async fn sign(key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, PortError> {
        let subtle = subtle()?;
        let (import_alg, sign_alg) = algorithms(key.alg)?;
        let cached = KEYS.with(|k| k.borrow().get(&key.kid).cloned());
        let crypto_key = match cached {
            Some(k) => k,
            None => {
                let k = import(&subtle, key, &import_alg).await?;
                KEYS.with(|m| m.borrow_mut().insert(key.kid.clone(), k.clone()));
                k
            }
        };
        let args = Array::of3(&sign_alg, &crypto_key, &Uint8Array::from(input));
        let signature = call(&subtle, "sign", &args).await?;
        // ECDSA signatures come back as r || s (IEEE P1363), which is the JWS form
        // (RFC 7518 §3.4); RSASSA-PKCS1-v1_5 signatures are the JWS form as they are.
        Ok(Uint8Array::new(&signature).to_vec())
    }
}
