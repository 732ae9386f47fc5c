//! The per-request store data and the `fermyon:spin` 2.0.0 host implementations: key-value,
//! sqlite and variables, the three Spin interfaces the edgeid components import (`wit/`).
//!
//! Grants are checked the way Spin checks them: a label the component did not declare is
//! `access-denied` whether or not a store by that name exists, and a variable the component
//! did not map is `undefined`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::store::Db;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "edgeid:spin-host/spin-imports",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": KvStore,
        "fermyon:spin/sqlite.connection": SqlConn,
    },
});

pub use fermyon::spin::{key_value, sqlite, variables};

/// The databases every component shares, opened once at start.
#[derive(Debug)]
pub struct Stores {
    /// `sqlite_key_value.db`: every KV store, keyed by label in the `store` column.
    pub key_value: Arc<Db>,
    /// SQLite databases by label: `default` is `sqlite_db.db` unless the runtime config moves
    /// it; any other declared label is the file the runtime config gives it.
    pub sqlite: BTreeMap<String, Arc<Db>>,
}

/// What one component may touch, resolved at start.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub component: String,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    /// The component's variables, already expanded from their templates.
    pub variables: BTreeMap<String, String>,
}

impl Grants {
    /// May the component open KV store `label`? Spin's order: an undeclared label is
    /// `access-denied` whether or not it exists. (A declared label always exists: labels
    /// other than `default` are refused at start, as Spin does without a runtime config.)
    pub fn key_value(&self, label: &str) -> Result<(), key_value::Error> {
        if self.key_value_stores.iter().any(|l| l == label) {
            Ok(())
        } else {
            Err(key_value::Error::AccessDenied)
        }
    }

    /// The database behind SQLite label `database`, if the component may open it.
    pub fn sqlite<'s>(
        &self,
        database: &str,
        stores: &'s Stores,
    ) -> Result<&'s Arc<Db>, sqlite::Error> {
        if !self.sqlite_databases.iter().any(|l| l == database) {
            return Err(sqlite::Error::AccessDenied);
        }
        stores
            .sqlite
            .get(database)
            .ok_or(sqlite::Error::NoSuchDatabase)
    }

    /// The value of the component's variable `name`.
    pub fn variable(&self, name: &str) -> Result<String, variables::Error> {
        if crate::manifest::check_variable_name(name).is_err() {
            return Err(variables::Error::InvalidName(name.to_owned()));
        }
        self.variables
            .get(name)
            .cloned()
            .ok_or_else(|| variables::Error::Undefined(format!("no variable for {name:?}")))
    }
}

/// An open `fermyon:spin/key-value.store`: the label is all a store needs, since every store
/// lives in the same table.
#[derive(Debug)]
pub struct KvStore {
    label: String,
}

/// An open `fermyon:spin/sqlite.connection`. It owns one pooled connection for its whole life,
/// so `BEGIN` … `COMMIT` issued through it stay on one SQLite connection.
#[derive(Debug)]
pub struct SqlConn {
    db: Arc<Db>,
    /// `None` only while a statement runs on the blocking pool.
    conn: Option<Connection>,
}

impl KvStore {
    pub(crate) fn new(label: String) -> KvStore {
        KvStore { label }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }
}

impl SqlConn {
    pub(crate) fn new(db: Arc<Db>, conn: Connection) -> SqlConn {
        SqlConn {
            db,
            conn: Some(conn),
        }
    }

    /// The connection, for one statement; `None` while another statement holds it.
    pub(crate) fn take_conn(&mut self) -> Option<Connection> {
        self.conn.take()
    }

    pub(crate) fn put_conn(&mut self, conn: Connection) {
        self.conn = Some(conn);
    }

    pub(crate) fn conn_ref(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }
}

impl Drop for SqlConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.db.give(conn);
        }
    }
}

/// Refuses every outgoing HTTP request: no edgeid component declares
/// `allowed_outbound_hosts`, and Spin denies outbound traffic that is not allowed.
#[derive(Debug, Default)]
pub struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// The data of one request's `Store`.
pub struct Ctx {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: DenyOutbound,
    pub grants: Arc<Grants>,
    pub stores: Arc<Stores>,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

type Trappable<T> = wasmtime::Result<T>;

impl key_value::Host for Ctx {}

impl key_value::HostStore for Ctx {
    async fn open(
        &mut self,
        label: String,
    ) -> Trappable<Result<Resource<KvStore>, key_value::Error>> {
        if let Err(e) = self.grants.key_value(&label) {
            return Ok(Err(e));
        }
        Ok(Ok(self.table.push(KvStore { label })?))
    }

    async fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Trappable<Result<Option<Vec<u8>>, key_value::Error>> {
        let label = self.table.get(&store)?.label.clone();
        let out = self
            .stores
            .key_value
            .run(move |c| {
                use rusqlite::OptionalExtension as _;
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .query_row((label, key), |row| row.get::<_, Vec<u8>>(0))
                    .optional()
            })
            .await;
        Ok(out.map_err(kv_error))
    }

    async fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Trappable<Result<(), key_value::Error>> {
        let label = self.table.get(&store)?.label.clone();
        let out = self
            .stores
            .key_value
            .run(move |c| {
                c.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute((label, key, value))
                .map(drop)
            })
            .await;
        Ok(out.map_err(kv_error))
    }

    async fn delete(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Trappable<Result<(), key_value::Error>> {
        let label = self.table.get(&store)?.label.clone();
        let out = self
            .stores
            .key_value
            .run(move |c| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute((label, key))
                    .map(drop)
            })
            .await;
        Ok(out.map_err(kv_error))
    }

    async fn exists(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Trappable<Result<bool, key_value::Error>> {
        let label = self.table.get(&store)?.label.clone();
        let out = self
            .stores
            .key_value
            .run(move |c| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                )?
                .query_row((label, key), |row| row.get::<_, bool>(0))
            })
            .await;
        Ok(out.map_err(kv_error))
    }

    async fn get_keys(
        &mut self,
        store: Resource<KvStore>,
    ) -> Trappable<Result<Vec<String>, key_value::Error>> {
        let label = self.table.get(&store)?.label.clone();
        let out = self
            .stores
            .key_value
            .run(move |c| {
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                    .query_map([label], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await;
        Ok(out.map_err(kv_error))
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> Trappable<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

fn kv_error(e: anyhow::Error) -> key_value::Error {
    key_value::Error::Other(format!("{e:#}"))
}

impl sqlite::Host for Ctx {}

impl sqlite::HostConnection for Ctx {
    async fn open(
        &mut self,
        database: String,
    ) -> Trappable<Result<Resource<SqlConn>, sqlite::Error>> {
        let db = match self.grants.sqlite(&database, &self.stores) {
            Ok(db) => Arc::clone(db),
            Err(e) => return Ok(Err(e)),
        };
        let pool = Arc::clone(&db);
        let conn = tokio::task::spawn_blocking(move || pool.take()).await;
        match conn {
            Ok(Ok(conn)) => Ok(Ok(self.table.push(SqlConn {
                db,
                conn: Some(conn),
            })?)),
            Ok(Err(e)) => Ok(Err(sqlite::Error::Io(e.to_string()))),
            Err(e) => Ok(Err(sqlite::Error::Io(e.to_string()))),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<SqlConn>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Trappable<Result<sqlite::QueryResult, sqlite::Error>> {
        let Some(conn) = self.table.get_mut(&connection)?.conn.take() else {
            return Ok(Err(sqlite::Error::InvalidConnection));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let out = execute(&conn, &statement, parameters);
            (conn, out)
        })
        .await;
        match joined {
            Ok((conn, out)) => {
                self.table.get_mut(&connection)?.conn = Some(conn);
                Ok(out.map_err(|e| sqlite::Error::Io(e.to_string())))
            }
            // The statement panicked inside rusqlite; the connection is gone with it, so
            // this resource can do nothing more.
            Err(e) => Ok(Err(sqlite::Error::Io(e.to_string()))),
        }
    }

    async fn drop(&mut self, connection: Resource<SqlConn>) -> Trappable<()> {
        // `SqlConn`'s `Drop` hands the connection back to the pool.
        self.table.delete(connection)?;
        Ok(())
    }
}

/// Runs one statement with positional parameters and collects every row, as Spin's SQLite
/// host does (`query-result` carries all rows at once).
fn execute(
    conn: &Connection,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> rusqlite::Result<sqlite::QueryResult> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let params: Vec<rusqlite::types::Value> = parameters.into_iter().map(to_sql).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(from_sql(row.get_ref(i)?));
        }
        out.push(sqlite::RowResult { values });
    }
    Ok(sqlite::QueryResult { columns, rows: out })
}

fn to_sql(v: sqlite::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        sqlite::Value::Integer(i) => V::Integer(i),
        sqlite::Value::Real(f) => V::Real(f),
        sqlite::Value::Text(s) => V::Text(s),
        sqlite::Value::Blob(b) => V::Blob(b),
        sqlite::Value::Null => V::Null,
    }
}

fn from_sql(v: ValueRef<'_>) -> sqlite::Value {
    match v {
        ValueRef::Null => sqlite::Value::Null,
        ValueRef::Integer(i) => sqlite::Value::Integer(i),
        ValueRef::Real(f) => sqlite::Value::Real(f),
        ValueRef::Text(t) => sqlite::Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => sqlite::Value::Blob(b.to_vec()),
    }
}

impl variables::Host for Ctx {
    async fn get(&mut self, name: String) -> Trappable<Result<String, variables::Error>> {
        Ok(self.grants.variable(&name))
    }
}
