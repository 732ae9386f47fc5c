//! The state behind `fermyon:spin/key-value` and `fermyon:spin/sqlite`, laid out as `spin up`
//! lays out `.spin/`: `sqlite_key_value.db` holds every KV store in one table
//! `spin_key_value(store, key, value)`, `sqlite_db.db` is the `default` SQLite database.
//!
//! Every database runs in WAL mode with `synchronous=NORMAL`: with the default rollback journal
//! each commit is an fsync and a KV+SQLite route is fsync-bound at a few hundred requests per
//! second (TOOLCHAIN.md), which would make any benchmark measure the disk. Connections are
//! pooled per database; the blocking SQLite calls run on tokio's blocking pool.
//!
//! `spin up` sets neither pragma (issue 12, item 3). With `EDGEID_SPIN_HOST_SQLITE=spin` in
//! the environment the host leaves both alone too, so a database keeps whatever journal mode
//! its file records (the rollback journal, unless a migration switched the file to WAL, which
//! persists) and `synchronous` stays at SQLite's default `FULL`: what a real `spin up` gets.
//!
//! Lock waits are Spin's (issue 9, item 10): a `sqlite_databases` connection has no busy
//! timeout, so a write while another connection holds the write lock fails at once with
//! "database is locked" — the guest has to cope, as it must under `spin up`. (rusqlite waits
//! up to 5 s by default; that is switched off here.) The key-value file keeps a busy timeout:
//! Spin serves each KV store through one connection behind a mutex, so KV calls queue there
//! instead of failing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// How long a KV writer waits for another's lock before reporting `database is locked`.
const KV_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per database; more are opened under load and closed afterwards.
const MAX_IDLE: usize = 16;

/// One SQLite file and its idle connections.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    /// Zero for `sqlite_databases` (Spin's behaviour), [`KV_BUSY_TIMEOUT`] for the KV file.
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl Db {
    /// Opens (creating if missing) a `sqlite_databases` file — no busy timeout, as under Spin —
    /// and applies the connection settings once, so that a bad path fails at start rather than
    /// on the first request.
    pub fn open(path: &Path) -> anyhow::Result<Arc<Db>> {
        Self::open_with(path, Duration::ZERO)
    }

    fn open_with(path: &Path, busy_timeout: Duration) -> anyhow::Result<Arc<Db>> {
        let conn =
            connect(path, busy_timeout).with_context(|| format!("opening {}", path.display()))?;
        Ok(Arc::new(Db {
            path: path.to_owned(),
            busy_timeout,
            idle: Mutex::new(vec![conn]),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection for exclusive use; give it back with [`Db::give`].
    pub fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => connect(&self.path, self.busy_timeout),
        }
    }

    /// Returns a connection to the pool. A guest that trapped or forgot `COMMIT` leaves its
    /// transaction open: roll it back here so the next borrower starts clean and the write
    /// lock is released.
    pub fn give(&self, conn: Connection) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return; // Dropping the connection closes it and releases its locks.
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    /// Runs `f` on a pooled connection on the blocking thread pool.
    pub async fn run<R, F>(self: &Arc<Self>, f: F) -> anyhow::Result<R>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = db.take()?;
            let out = f(&conn);
            db.give(conn);
            out
        })
        .await
        .context("database task failed")?
        .map_err(Into::into)
    }

    /// Runs a script (`--sqlite @file.sql`) as one batch.
    pub fn execute_script(&self, sql: &str) -> rusqlite::Result<()> {
        let conn = self.take()?;
        let out = conn.execute_batch(sql);
        self.give(conn);
        out
    }
}

fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Zero removes SQLite's busy handler: BUSY is reported at once.
    conn.busy_timeout(busy_timeout)?;
    if spin_defaults() {
        return Ok(conn);
    }
    // `journal_mode` answers with a row, so it is a query, not an execute.
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
    Ok(conn)
}

/// `EDGEID_SPIN_HOST_SQLITE=spin`: SQLite as `spin up` opens it (see the module docs).
fn spin_defaults() -> bool {
    static SPIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| std::env::var("EDGEID_SPIN_HOST_SQLITE").is_ok_and(|v| v == "spin"))
}

/// The KV file: one table for all stores, Spin's schema.
pub fn open_key_value(path: &Path) -> anyhow::Result<Arc<Db>> {
    let db = Db::open_with(path, KV_BUSY_TIMEOUT)?;
    let conn = db.take()?;
    let created = conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS spin_key_value (
            store TEXT NOT NULL,
            key   TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (store, key)
        );",
    );
    db.give(conn);
    created.with_context(|| format!("creating spin_key_value in {}", path.display()))?;
    Ok(db)
}
