//! The native host's ports: SQLite files through rusqlite, the OS clock and random source.
//!
//! One [`NativeSql`] / [`NativeKv`] per thread (rusqlite connections are not `Sync`); WAL mode
//! lets the threads read concurrently while SQLite serializes writers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use crate::jose::{PrivateKey, Signer};
use rusqlite::types::ValueRef;

use crate::ports::{
    Clock, Config, Kv, PortError, Ports, Rng, Row, Sql, Statement, UnixTime, Value,
};

fn port_err(e: rusqlite::Error) -> PortError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => PortError::conflict(e),
        _ => PortError::other(e),
    }
}

/// Opens a SQLite file with the settings the native host relies on.
pub fn open_connection(path: &Path) -> Result<rusqlite::Connection, PortError> {
    let conn = rusqlite::Connection::open(path).map_err(port_err)?;
    configure(&conn)?;
    Ok(conn)
}

fn configure(conn: &rusqlite::Connection) -> Result<(), PortError> {
    // WAL + synchronous=NORMAL: durable across process crashes, one fsync per checkpoint
    // instead of per commit. busy_timeout lets concurrent writers queue instead of failing.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(port_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(port_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The main SQL database.
pub struct NativeSql {
    conn: RefCell<rusqlite::Connection>,
}

impl NativeSql {
    pub fn new(conn: rusqlite::Connection) -> Self {
        Self {
            conn: RefCell::new(conn),
        }
    }

    pub fn open(path: &Path) -> Result<Self, PortError> {
        Ok(Self::new(open_connection(path)?))
    }

    pub fn in_memory() -> Result<Self, PortError> {
        let conn = rusqlite::Connection::open_in_memory().map_err(port_err)?;
        Ok(Self::new(conn))
    }

    /// Applies every migration of the main database (idempotent).
    pub fn migrate(&self) -> Result<(), PortError> {
        self.apply(crate::schema::MIGRATIONS)
    }

    /// Applies every migration of the credentials database (idempotent).
    pub fn migrate_credentials(&self) -> Result<(), PortError> {
        self.apply(crate::schema::CREDENTIALS_MIGRATIONS)
    }

    fn apply(&self, migrations: &[(&str, &str)]) -> Result<(), PortError> {
        let conn = self.conn.borrow();
        for (name, sql) in migrations {
            conn.execute_batch(sql)
                .map_err(|e| PortError::other(format!("{name}: {e}")))?;
        }
        Ok(())
    }

    fn run(conn: &rusqlite::Connection, stmt: &Statement) -> Result<Vec<Row>, PortError> {
        let mut prepared = conn.prepare_cached(stmt.sql).map_err(port_err)?;
        let params = rusqlite::params_from_iter(stmt.params.iter().map(|v| match v {
            Value::Null => rusqlite::types::Value::Null,
            Value::Integer(n) => rusqlite::types::Value::Integer(*n),
            Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        }));
        let columns = prepared.column_count();
        let mut rows = prepared.query(params).map_err(port_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(port_err)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(port_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Integer(n),
                    ValueRef::Real(f) => Value::Text(f.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

impl Sql for NativeSql {
    async fn query(&self, stmt: Statement) -> Result<Vec<Row>, PortError> {
        Self::run(&self.conn.borrow(), &stmt)
    }

    async fn batch(&self, stmts: Vec<Statement>) -> Result<(), PortError> {
        let mut conn = self.conn.borrow_mut();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(port_err)?;
        for stmt in &stmts {
            Self::run(&tx, stmt)?;
        }
        tx.commit().map_err(port_err)
    }
}

/// The KV store: a table in its own SQLite file (`kv.db`), same semantics as Spin KV.
pub struct NativeKv {
    conn: rusqlite::Connection,
}

impl NativeKv {
    pub fn new(conn: rusqlite::Connection) -> Result<Self, PortError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)",
        )
        .map_err(port_err)?;
        Ok(Self { conn })
    }

    pub fn open(path: &Path) -> Result<Self, PortError> {
        Self::new(open_connection(path)?)
    }

    pub fn in_memory() -> Result<Self, PortError> {
        Self::new(rusqlite::Connection::open_in_memory().map_err(port_err)?)
    }
}

impl Kv for NativeKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?")
            .map_err(port_err)?;
        let mut rows = stmt.query([key]).map_err(port_err)?;
        match rows.next().map_err(port_err)? {
            Some(row) => Ok(Some(row.get::<_, Vec<u8>>(0).map_err(port_err)?)),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), PortError> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .map_err(port_err)?;
        stmt.execute(rusqlite::params![key, value])
            .map_err(port_err)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM kv WHERE key = ?")
            .map_err(port_err)?;
        stmt.execute([key]).map_err(port_err)?;
        Ok(())
    }
}

/// Variables from the command line and environment, shared by all threads.
#[derive(Debug, Clone, Default)]
pub struct NativeConfig(pub Arc<HashMap<String, String>>);

impl Config for NativeConfig {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// The native host's ports for one thread.
pub struct NativePorts {
    pub sql: NativeSql,
    pub credentials: NativeSql,
    pub kv: NativeKv,
    pub config: NativeConfig,
    /// Keys loaded into ring, cached per thread by `kid`: a kid names exactly one key (RFC 7638
    /// thumbprint), so a cached entry can never sign with stale material.
    signers: RefCell<HashMap<String, Rc<Signer>>>,
}

impl NativePorts {
    /// Opens `data_dir/edgeid.db`, `data_dir/credentials.db` and `data_dir/kv.db`.
    pub fn open(data_dir: &Path, config: NativeConfig) -> Result<Self, PortError> {
        Ok(Self {
            sql: NativeSql::open(&data_dir.join("edgeid.db"))?,
            credentials: NativeSql::open(&data_dir.join("credentials.db"))?,
            kv: NativeKv::open(&data_dir.join("kv.db"))?,
            config,
            signers: RefCell::default(),
        })
    }
}

impl Clock for NativePorts {
    fn now(&self) -> UnixTime {
        system_now()
    }
}

pub fn system_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Rng for NativePorts {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        getrandom::fill(buf).map_err(PortError::other)
    }
}

impl Config for NativePorts {
    fn var(&self, name: &str) -> Option<String> {
        self.config.var(name)
    }
}

impl Ports for NativePorts {
    type Sql = NativeSql;
    type Kv = NativeKv;

    fn sql(&self) -> &NativeSql {
        &self.sql
    }

    fn credentials(&self) -> &NativeSql {
        &self.credentials
    }

    fn kv(&self) -> &NativeKv {
        &self.kv
    }

    async fn sign(&self, key: &PrivateKey, signing_input: &[u8]) -> Result<Vec<u8>, PortError> {
        let cached = self.signers.borrow().get(&key.kid).cloned();
        let signer = match cached {
            Some(s) => s,
            None => {
                let s = Rc::new(Signer::load(key)?);
                let mut signers = self.signers.borrow_mut();
                // Keys rotate rarely; a bounded map keeps a long-running thread from growing.
                if signers.len() >= 16 {
                    signers.clear();
                }
                signers.insert(key.kid.clone(), s.clone());
                s
            }
        };
        signer.sign(signing_input)
    }

    /// ureq (blocking) on a thread of its own, so the request does not stall the other
    /// connections of this thread's single-threaded runtime; mail is rare and throttled.
    async fn fetch(
        &self,
        request: crate::ports::OutboundRequest,
    ) -> Result<crate::ports::OutboundResponse, PortError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        std::thread::Builder::new()
            .name("edgeid-fetch".into())
            .spawn(move || {
                let _ = tx.send(blocking_fetch(request));
            })
            .map_err(|e| PortError::other(format!("outbound HTTP thread: {e}")))?;
        rx.await
            .map_err(|_| PortError::other("outbound HTTP thread ended without an answer"))?
    }
}

/// Limits of one outbound request: whole exchange and answer size.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
const FETCH_MAX_BODY: u64 = 64 * 1024;

fn blocking_fetch(
    request: crate::ports::OutboundRequest,
) -> Result<crate::ports::OutboundResponse, PortError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let uri = request.uri().clone();
    let mut response = agent
        .run(request)
        .map_err(|e| PortError::other(format!("POST {uri}: {e}")))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(FETCH_MAX_BODY)
        .read_to_vec()
        .map_err(|e| PortError::other(format!("reading the answer of {uri}: {e}")))?;
    let (parts, _) = response.into_parts();
    Ok(crate::ports::OutboundResponse::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{Alg, KeyMaterial};
    use crate::testing::SeededRng;

    fn ports() -> NativePorts {
        NativePorts {
            sql: NativeSql::in_memory().unwrap(),
            credentials: NativeSql::in_memory().unwrap(),
            kv: NativeKv::in_memory().unwrap(),
            config: NativeConfig::default(),
            signers: RefCell::default(),
        }
    }

    #[test]
    fn ring_es256_signatures_verify_with_the_published_key() {
        use p256::ecdsa::signature::Verifier as _;
        let (key, _) = PrivateKey::generate(Alg::ES256, &SeededRng::new(9)).unwrap();
        let p = ports();
        for _ in 0..2 {
            let sig = futures_executor::block_on(p.sign(&key, b"input")).unwrap();
            let KeyMaterial::Es256(k) = key.parse().unwrap() else {
                panic!("ES256")
            };
            let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
            k.verifying_key().verify(b"input", &sig).unwrap();
        }
    }

    #[test]
    fn ring_rs256_signature_equals_the_rsa_crates() {
        // RSASSA-PKCS1-v1_5 is deterministic: ring (cached per thread) and an independent
        // implementation must produce the same bytes.
        use sha2::Digest as _;
        let (key, _) = PrivateKey::generate(Alg::RS256, &SeededRng::new(10)).unwrap();
        let native = futures_executor::block_on(ports().sign(&key, b"input")).unwrap();
        let KeyMaterial::Rs256(k) = key.parse().unwrap() else {
            panic!("RS256")
        };
        let digest = sha2::Sha256::digest(b"input");
        let expected = k
            .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
            .unwrap();
        assert_eq!(native, expected);
    }
}
