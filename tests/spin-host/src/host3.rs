//! The Spin 3.x interfaces a WASIp3 component (spin-sdk 7) imports —
//! `spin:key-value/key-value@3.0.0`, `spin:sqlite/sqlite@3.1.0` and
//! `spin:variables/variables@3.0.0` — on the same stores, grants and resource types as the
//! 2.0.0 ones in [`crate::host`], so both builds of a component see the same data.
//!
//! The WIT `async func`s are implemented with an [`Accessor`] (wasmtime's concurrent host
//! calls): the store is touched only inside `with`, never across an `await`, so the other
//! requests an instance serves meanwhile (up to 16, as under Spin) go on while SQLite works on
//! the blocking pool. Row sets and key lists are handed over as host-produced streams, the
//! way Spin 4.1's `factor-sqlite` and `factor-key-value` do.

use std::sync::Arc;

use rusqlite::types::ValueRef;
use wasmtime::component::{Accessor, FutureReader, HasData, Resource, StreamReader};

use crate::host::Ctx;
pub use crate::host::{KvStore, SqlConn};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "edgeid:spin-host/spin-imports-p3",
    imports: { default: async | trappable },
    with: {
        "spin:key-value/key-value.store": KvStore,
        "spin:sqlite/sqlite.connection": SqlConn,
    },
});

pub use spin::key_value::key_value;
pub use spin::sqlite::sqlite;
pub use spin::variables::variables;

/// The [`HasData`] the 3.x interfaces are linked with: their async functions reach the
/// request's [`Ctx`] through the accessor.
pub struct Spin3;

impl HasData for Spin3 {
    type Data<'a> = &'a mut Ctx;
}

type Trappable<T> = wasmtime::Result<T>;

/// The label of an open store, or the trap a stale handle deserves.
fn kv_label<T>(acc: &Accessor<T, Spin3>, store: &Resource<KvStore>) -> Trappable<(String, Ctx2)> {
    acc.with(|mut a| {
        let ctx = a.get();
        let label = ctx.table.get(store)?.label().to_owned();
        Ok((label, Ctx2::of(ctx)))
    })
}

/// What a call needs from the request's context after leaving the accessor.
struct Ctx2 {
    stores: Arc<crate::host::Stores>,
}

impl Ctx2 {
    fn of(ctx: &Ctx) -> Ctx2 {
        Ctx2 {
            stores: Arc::clone(&ctx.stores),
        }
    }
}

fn kv_error(e: anyhow::Error) -> key_value::Error {
    key_value::Error::Other(format!("{e:#}"))
}

impl key_value::Host for Ctx {}

impl key_value::HostStore for Ctx {
    async fn drop(&mut self, store: Resource<KvStore>) -> Trappable<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl<T> key_value::HostStoreWithStore<T> for Spin3 {
    async fn open(
        acc: &Accessor<T, Self>,
        label: String,
    ) -> Trappable<Result<Resource<KvStore>, key_value::Error>> {
        acc.with(|mut a| {
            let ctx = a.get();
            if ctx.grants.key_value(&label).is_err() {
                return Ok(Err(key_value::Error::AccessDenied));
            }
            Ok(Ok(ctx.table.push(KvStore::new(label))?))
        })
    }

    async fn get(
        acc: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
    ) -> Trappable<Result<Option<Vec<u8>>, key_value::Error>> {
        let (label, ctx) = kv_label(acc, &store)?;
        let out = ctx
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
        acc: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Trappable<Result<(), key_value::Error>> {
        let (label, ctx) = kv_label(acc, &store)?;
        let out = ctx
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
        acc: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
    ) -> Trappable<Result<(), key_value::Error>> {
        let (label, ctx) = kv_label(acc, &store)?;
        let out = ctx
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
        acc: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
    ) -> Trappable<Result<bool, key_value::Error>> {
        let (label, ctx) = kv_label(acc, &store)?;
        let out = ctx
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
        acc: &Accessor<T, Self>,
        store: Resource<KvStore>,
    ) -> Trappable<(
        StreamReader<String>,
        FutureReader<Result<(), key_value::Error>>,
    )> {
        let (label, ctx) = kv_label(acc, &store)?;
        let out = ctx
            .stores
            .key_value
            .run(move |c| {
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                    .query_map([label], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await;
        let (keys, result) = match out {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(kv_error(e))),
        };
        acc.with(|mut a| {
            let keys = StreamReader::new(&mut a, keys)?;
            let result = FutureReader::new(&mut a, async move {
                wasmtime::Result::<Result<(), key_value::Error>>::Ok(result)
            })?;
            Ok((keys, result))
        })
    }
}

fn v2_to_v3(e: crate::host::sqlite::Error) -> sqlite::Error {
    use crate::host::sqlite::Error as E2;
    match e {
        E2::NoSuchDatabase => sqlite::Error::NoSuchDatabase,
        E2::AccessDenied => sqlite::Error::AccessDenied,
        E2::InvalidConnection => sqlite::Error::InvalidConnection,
        E2::DatabaseFull => sqlite::Error::DatabaseFull,
        E2::Io(m) => sqlite::Error::Io(m),
    }
}

/// Opens a pooled connection for `database` if the component may (the 2.0.0 rules).
async fn open_conn(
    ctx: Ctx2,
    grants: Arc<crate::host::Grants>,
    database: String,
) -> Result<SqlConn, sqlite::Error> {
    let db = grants
        .sqlite(&database, &ctx.stores)
        .map(Arc::clone)
        .map_err(v2_to_v3)?;
    let pool = Arc::clone(&db);
    match tokio::task::spawn_blocking(move || pool.take()).await {
        Ok(Ok(conn)) => Ok(SqlConn::new(db, conn)),
        Ok(Err(e)) => Err(sqlite::Error::Io(e.to_string())),
        Err(e) => Err(sqlite::Error::Io(e.to_string())),
    }
}

/// Runs one statement on the connection behind `connection`, off the store: the connection
/// is taken out of its resource for the call and put back afterwards.
async fn run_statement<T>(
    acc: &Accessor<T, Spin3>,
    connection: &Resource<SqlConn>,
    statement: String,
    parameters: Vec<sqlite::Value>,
) -> Trappable<Result<(Vec<String>, Vec<sqlite::RowResult>), sqlite::Error>> {
    let Some(conn) =
        acc.with(|mut a| -> Trappable<_> { Ok(a.get().table.get_mut(connection)?.take_conn()) })?
    else {
        // Another statement of the same connection is running (the guest issued two at once).
        return Ok(Err(sqlite::Error::InvalidConnection));
    };
    let joined = tokio::task::spawn_blocking(move || {
        let out = execute(&conn, &statement, parameters);
        (conn, out)
    })
    .await;
    match joined {
        Ok((conn, out)) => {
            acc.with(|mut a| -> Trappable<()> {
                a.get().table.get_mut(connection)?.put_conn(conn);
                Ok(())
            })?;
            Ok(out.map_err(|e| sqlite::Error::Io(e.to_string())))
        }
        // The statement panicked inside rusqlite; the connection is gone with it.
        Err(e) => Ok(Err(sqlite::Error::Io(e.to_string()))),
    }
}

impl sqlite::Host for Ctx {}

impl sqlite::HostConnection for Ctx {
    async fn open(
        &mut self,
        database: String,
    ) -> Trappable<Result<Resource<SqlConn>, sqlite::Error>> {
        let ctx = Ctx2::of(self);
        match open_conn(ctx, Arc::clone(&self.grants), database).await {
            Ok(conn) => Ok(Ok(self.table.push(conn)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<SqlConn>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Trappable<Result<sqlite::QueryResult, sqlite::Error>> {
        let Some(conn) = self.table.get_mut(&connection)?.take_conn() else {
            return Ok(Err(sqlite::Error::InvalidConnection));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let out = execute(&conn, &statement, parameters);
            (conn, out)
        })
        .await;
        match joined {
            Ok((conn, out)) => {
                self.table.get_mut(&connection)?.put_conn(conn);
                Ok(out
                    .map(|(columns, rows)| sqlite::QueryResult { columns, rows })
                    .map_err(|e| sqlite::Error::Io(e.to_string())))
            }
            Err(e) => Ok(Err(sqlite::Error::Io(e.to_string()))),
        }
    }

    async fn last_insert_rowid(&mut self, connection: Resource<SqlConn>) -> Trappable<i64> {
        Ok(self
            .table
            .get(&connection)?
            .conn_ref()
            .map_or(0, rusqlite::Connection::last_insert_rowid))
    }

    async fn changes(&mut self, connection: Resource<SqlConn>) -> Trappable<u64> {
        Ok(self
            .table
            .get(&connection)?
            .conn_ref()
            .map_or(0, rusqlite::Connection::changes))
    }

    async fn drop(&mut self, connection: Resource<SqlConn>) -> Trappable<()> {
        // `SqlConn`'s `Drop` hands the connection back to the pool.
        self.table.delete(connection)?;
        Ok(())
    }
}

impl<T> sqlite::HostConnectionWithStore<T> for Spin3 {
    async fn open_async(
        acc: &Accessor<T, Self>,
        database: String,
    ) -> Trappable<Result<Resource<SqlConn>, sqlite::Error>> {
        let (ctx, grants) = acc.with(|mut a| {
            let c = a.get();
            (Ctx2::of(c), Arc::clone(&c.grants))
        });
        match open_conn(ctx, grants, database).await {
            Ok(conn) => acc.with(|mut a| Ok(Ok(a.get().table.push(conn)?))),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Spin buffers the rows on the host too (`factor-sqlite`'s `query_async` reads them all
    /// before the stream starts), so the whole result is read here, then streamed.
    async fn execute_async(
        acc: &Accessor<T, Self>,
        connection: Resource<SqlConn>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Trappable<
        Result<
            (
                Vec<String>,
                StreamReader<sqlite::RowResult>,
                FutureReader<Result<(), sqlite::Error>>,
            ),
            sqlite::Error,
        >,
    > {
        match run_statement(acc, &connection, statement, parameters).await? {
            Err(e) => Ok(Err(e)),
            Ok((columns, rows)) => acc.with(|mut a| {
                let rows = StreamReader::new(&mut a, rows)?;
                let done = FutureReader::new(&mut a, async {
                    wasmtime::Result::<Result<(), sqlite::Error>>::Ok(Ok(()))
                })?;
                Ok(Ok((columns, rows, done)))
            }),
        }
    }

    async fn last_insert_rowid_async(
        acc: &Accessor<T, Self>,
        connection: Resource<SqlConn>,
    ) -> Trappable<i64> {
        acc.with(|mut a| {
            Ok(a.get()
                .table
                .get(&connection)?
                .conn_ref()
                .map_or(0, rusqlite::Connection::last_insert_rowid))
        })
    }

    async fn changes_async(
        acc: &Accessor<T, Self>,
        connection: Resource<SqlConn>,
    ) -> Trappable<u64> {
        acc.with(|mut a| {
            Ok(a.get()
                .table
                .get(&connection)?
                .conn_ref()
                .map_or(0, rusqlite::Connection::changes))
        })
    }
}

/// Runs one statement and collects every row, as [`crate::host`] does for 2.0.0.
fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> rusqlite::Result<(Vec<String>, Vec<sqlite::RowResult>)> {
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
    Ok((columns, out))
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

impl variables::Host for Ctx {}

impl<T> variables::HostWithStore<T> for Spin3 {
    async fn get(
        acc: &Accessor<T, Self>,
        name: String,
    ) -> Trappable<Result<String, variables::Error>> {
        use crate::host::variables::Error as E2;
        let out = acc.with(|mut a| a.get().grants.variable(&name));
        Ok(out.map_err(|e| match e {
            E2::InvalidName(m) => variables::Error::InvalidName(m),
            E2::Undefined(m) => variables::Error::Undefined(m),
            E2::Provider(m) => variables::Error::Provider(m),
            E2::Other(m) => variables::Error::Other(m),
        }))
    }
}
