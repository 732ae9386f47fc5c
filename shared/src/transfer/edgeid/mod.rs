//! edgeid's own export and import: the state a deployment needs to move to another host, as
//! one versioned JSON document (`"format": "edgeid-export", "version": 1`) made of tables.
//!
//! - `GET /admin/export` answers the document's head (format, version, issuer, time, the
//!   tables in import order); `GET /admin/export?table=T&after=N&limit=L` one page of a table
//!   (keyset paging by `rowid`, at most 500 rows, so no host's response limit is reached).
//!   Secrets (password hashes, sealed TOTP secrets and signing keys, the digests of client
//!   secrets, recovery codes, refresh and session tokens) are served only with
//!   `include_secrets=true`: without it their columns are left out and the tables that hold
//!   nothing else are refused. The admin bearer token is the only way in (as for all of
//!   `/admin`).
//! - `POST /admin/import/edgeid` writes one page of one table (`{"table", "rows"}`), as one
//!   batch: created, updated (the row differs) or unchanged, so a second run changes nothing.
//!
//! Sealed values (signing keys, TOTP secrets) move as they are: they open only under the
//! same key-encryption key. The import opens each of them with the target's KEK before
//! writing anything and refuses the rows it cannot open ("different key_encryption_key"), so
//! a target with another KEK never ends up with keys it cannot use; set the source's KEK on
//! the target (or move without those tables: then tokens signed before the move no longer
//! verify and TOTP users enrol again). Imported signing keys keep their `kid` and state; the
//! target's own keys of the same algorithm are retired (still published until their tokens
//! expire), so tokens issued before the move verify against the new host's JWKS and the new
//! host signs with the key relying parties already know.

use std::collections::{BTreeMap, HashMap, HashSet};

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{Item, Outcome, Report, existing_users};
use crate::admin::AdminError;
use crate::config::{Settings, kek};
use crate::ports::{PortError, Ports, Row, Sql, Statement, Value};
use crate::{Request, Response, audit, keys, web};

pub const FORMAT: &str = "edgeid-export";
pub const VERSION: i64 = 1;
/// Rows per export page and at most per import request.
pub const MAX_PAGE: i64 = 500;

mod tables;

use tables::{Db, TABLES, Table, Ty, table_index, table_sql};
fn db<'p, P: Ports>(ports: &'p P, t: &Table) -> &'p P::Sql {
    match t.db {
        Db::Main => ports.sql(),
        Db::Credentials => ports.credentials(),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(n) => Json::from(*n),
        Value::Text(s) => Json::from(s.as_str()),
    }
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /admin/export[?table=T&after=N&limit=L&include_secrets=true]`.
pub async fn export<P: Ports>(ports: &P, req: &Request) -> Result<Response, AdminError> {
    let with_secrets = query_param(req, "include_secrets").as_deref() == Some("true");
    let Some(name) = query_param(req, "table") else {
        let settings = Settings::load(ports)?;
        let tables: Vec<&str> = TABLES
            .iter()
            .filter(|t| with_secrets || !t.secret_only)
            .map(|t| t.name)
            .collect();
        return Ok(web::json(
            StatusCode::OK,
            &serde_json::json!({
                "format": FORMAT, "version": VERSION, "issuer": settings.issuer.as_str(),
                "exported_at": ports.now(), "include_secrets": with_secrets, "tables": tables,
            }),
        ));
    };
    let index = table_index(&name)
        .ok_or_else(|| AdminError::InvalidRequest(format!("no table {}", web::printable(&name))))?;
    let t = &TABLES[index];
    if t.secret_only && !with_secrets {
        return Err(AdminError::InvalidRequest(format!(
            "the table {} holds secrets only: ask for it with include_secrets=true",
            t.name
        )));
    }
    let after = match query_param(req, "after").filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => a
            .parse::<i64>()
            .map_err(|_| AdminError::InvalidRequest("after must be a row number".into()))?,
    };
    let limit = match query_param(req, "limit") {
        None => MAX_PAGE,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| AdminError::InvalidRequest(format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    if t.db == Db::Credentials {
        crate::user::ensure_credentials_schema(ports.credentials()).await?;
    }
    let sqls = table_sql(index);
    let sql: &'static str = if with_secrets {
        &sqls.page_all
    } else {
        &sqls.page_public
    };
    let rows = db(ports, t)
        .query(Statement::new(sql, vec![after.into(), limit.into()]))
        .await?;
    let names = t.names(with_secrets);
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in &rows {
        last = Some(r.int(0)?);
        let obj: Map<String, Json> = names
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    (*c).to_owned(),
                    to_json(r.0.get(i + 1).unwrap_or(&Value::Null)),
                )
            })
            .collect();
        out.push(Json::Object(obj));
    }
    let next = if rows.len() as i64 == limit {
        last
    } else {
        None
    };
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "table": t.name, "rows": out, "next": next }),
    ))
}

/// The body of `POST /admin/import/edgeid`: one page of one table of an export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeidImport {
    pub format: String,
    pub version: i64,
    #[serde(default)]
    pub dry_run: bool,
    pub table: String,
    pub rows: Vec<Map<String, Json>>,
}

/// A row of the document, checked against its table: the values in column order (`None`
/// for a secret column the export left out).
fn parse_row(t: &Table, row: &Map<String, Json>) -> Result<Vec<Option<Value>>, String> {
    if let Some(k) = row.keys().find(|k| !t.has(k)) {
        return Err(format!("unknown column {}", web::printable(k)));
    }
    t.cols()
        .map(|c| {
            let v = row.get(c.name);
            let bad = || format!("column {} must be {:?}", c.name, c.ty);
            Ok(Some(match (c.ty, v) {
                (_, None) if c.secret => return Ok(None),
                (Ty::OptInt | Ty::OptText, None | Some(Json::Null)) => Value::Null,
                (Ty::Int | Ty::OptInt, Some(Json::Number(n))) => {
                    Value::Integer(n.as_i64().ok_or_else(bad)?)
                }
                (Ty::Int | Ty::OptInt, Some(Json::Bool(b))) => Value::Integer(i64::from(*b)),
                (Ty::Text | Ty::OptText, Some(Json::String(s))) => Value::Text(s.clone()),
                _ => return Err(bad()),
            }))
        })
        .collect()
}

fn text_at(values: &[Option<Value>], i: usize) -> &str {
    match values.get(i) {
        Some(Some(Value::Text(s))) => s,
        _ => "",
    }
}

fn column(t: &Table, name: &str) -> Option<usize> {
    t.cols().position(|c| c.name == name)
}

/// The report id of a row: its primary key, digests shortened.
fn row_id(t: &Table, values: &[Option<Value>]) -> String {
    t.cols()
        .take(t.pk)
        .enumerate()
        .map(|(i, c)| {
            let s = text_at(values, i);
            if c.name.ends_with("sha256") {
                format!("{}…", s.chars().take(8).collect::<String>())
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `POST /admin/import/edgeid`.
pub async fn import<P: Ports>(ports: &P, body: EdgeidImport) -> Result<Response, AdminError> {
    if body.format != FORMAT || body.version != VERSION {
        return Err(AdminError::InvalidRequest(format!(
            "not an {FORMAT} document of version {VERSION}"
        )));
    }
    let index = table_index(&body.table).ok_or_else(|| {
        AdminError::InvalidRequest(format!("no table {}", web::printable(&body.table)))
    })?;
    if body.rows.len() as i64 > MAX_PAGE {
        return Err(AdminError::InvalidRequest(format!(
            "at most {MAX_PAGE} rows per request"
        )));
    }
    let t = &TABLES[index];
    let now = ports.now();
    let store = db(ports, t);
    if t.db == Db::Credentials {
        crate::user::ensure_credentials_schema(ports.credentials()).await?;
    }
    let mut report = Report::new(body.dry_run);
    let mut rows: Vec<(String, Vec<Option<Value>>)> = Vec::new();
    let mut seen = HashSet::new();
    for raw in &body.rows {
        match parse_row(t, raw) {
            Ok(values) => {
                let id = row_id(t, &values);
                if seen.insert(id.clone()) {
                    rows.push((id, values));
                } else {
                    report.push(Item::refused(t.name, id, "the row appears twice"));
                }
            }
            Err(reason) => report.push(Item::refused(t.name, "(row)", reason)),
        }
    }
    let refusals = check(ports, t, &rows).await?;
    rows.retain(|(id, _)| match refusals.get(id) {
        Some(reason) => {
            report.push(Item::refused(t.name, id.clone(), reason.clone()));
            false
        }
        None => true,
    });

    // What is there already, in one query.
    let sqls = table_sql(index);
    let keys: Vec<Vec<&str>> = rows
        .iter()
        .map(|(_, v)| (0..t.pk).map(|i| text_at(v, i)).collect())
        .collect();
    let keys = serde_json::to_string(&keys).map_err(|e| PortError::other(e.to_string()))?;
    let existing: HashMap<String, Row> = if rows.is_empty() {
        HashMap::new()
    } else {
        store
            .query(Statement::new(&sqls.existing, vec![keys.into()]))
            .await?
            .into_iter()
            .map(|r| {
                let values: Vec<Option<Value>> = r.0.iter().cloned().map(Some).collect();
                (row_id(t, &values), r)
            })
            .collect()
    };

    // A new row needs its secret columns that may not be NULL.
    rows.retain(|(id, values)| {
        if existing.contains_key(id) {
            return true;
        }
        let missing = t
            .cols()
            .zip(values)
            .find(|(c, v)| v.is_none() && c.secret && matches!(c.ty, Ty::Text | Ty::Int));
        match missing {
            Some((c, _)) => {
                report.push(Item::refused(
                    t.name,
                    id.clone(),
                    format!(
                        "{} is missing: the export was made without include_secrets",
                        c.name
                    ),
                ));
                false
            }
            None => true,
        }
    });

    let mut batch = Vec::new();
    if t.name == "signing_keys" {
        batch.extend(retire_replaced_keys(ports, &rows, &mut report).await?);
    }
    for (id, values) in rows {
        let outcome = match existing.get(&id) {
            None => Outcome::Created,
            Some(old) => {
                let same = t
                    .cols()
                    .zip(values.iter().zip(&old.0))
                    .all(|(c, (new, old))| {
                        match new {
                            None => true,
                            // A mark the target has already set stays as it is.
                            Some(_) if c.sticky && *old != Value::Null && c.ty != Ty::Int => true,
                            Some(Value::Integer(n)) if c.sticky && c.ty == Ty::Int => {
                                matches!(old, Value::Integer(o) if o >= n)
                            }
                            Some(n) => n == old,
                        }
                    });
                if same {
                    report.push(Item::new(t.name, id, Outcome::Unchanged));
                    continue;
                }
                Outcome::Updated
            }
        };
        let params = values
            .into_iter()
            .map(|v| v.unwrap_or(Value::Null))
            .collect();
        batch.push(Statement::new(&sqls.upsert, params));
        report.push(Item::new(t.name, id, outcome));
    }
    if !body.dry_run && !batch.is_empty() {
        store.batch(batch).await?;
        if t.name == "signing_keys" {
            crate::cache::invalidate(ports.kv(), keys::JWKS_CACHE_KEY).await;
        }
        if t.name == "clients" {
            for item in report
                .results
                .iter()
                .filter(|i| i.outcome == Outcome::Updated)
            {
                crate::client::invalidate_cached(ports.kv(), &item.id).await;
            }
        }
        audit::record(
            ports.sql(),
            now,
            "import.edgeid",
            "",
            serde_json::json!({ "table": t.name, "created": report.created,
                                "updated": report.updated, "refused": report.refused }),
        )
        .await;
    }
    Ok(web::json(StatusCode::OK, &report))
}

/// Rows the target cannot take, by row id, with the reason.
async fn check<P: Ports>(
    ports: &P,
    t: &Table,
    rows: &[(String, Vec<Option<Value>>)],
) -> Result<BTreeMap<String, String>, AdminError> {
    let mut refused = BTreeMap::new();
    // Rows about a user need the user (a separate database cannot hold a foreign key).
    if let Some(ui) = column(t, "user_id") {
        let ids: Vec<&str> = rows.iter().map(|(_, v)| text_at(v, ui)).collect();
        let present = existing_users(ports.sql(), &ids).await?;
        for (id, v) in rows {
            if !present.contains(text_at(v, ui)) {
                refused.insert(
                    id.clone(),
                    "no such user: import the users table first".to_owned(),
                );
            }
        }
    }
    match t.name {
        "signing_keys" | "totp_credentials" => {
            let kek = kek(ports)?;
            type Context = fn(&[Option<Value>]) -> String;
            let (sealed_col, context): (usize, Context) = if t.name == "signing_keys" {
                (4, |v| text_at(v, 0).to_owned())
            } else {
                (1, |v| crate::totp::seal_context(text_at(v, 0)))
            };
            for (id, v) in rows {
                if let Some(Some(Value::Text(sealed))) = v.get(sealed_col)
                    && kek.open(&context(v), sealed).is_err()
                {
                    refused.insert(
                        id.clone(),
                        "the sealed secret does not open under this host's key_encryption_key: \
                         the source used a different one. Set the source's \
                         key_encryption_key on this host and import again"
                            .to_owned(),
                    );
                }
            }
        }
        "users" => {
            // An email or username another user (another id) holds: the unique indexes
            // would fail the whole batch.
            let names: Vec<&str> = rows
                .iter()
                .flat_map(|(_, v)| [text_at(v, 1), text_at(v, 2)])
                .collect();
            let list =
                serde_json::to_string(&names).map_err(|e| PortError::other(e.to_string()))?;
            let holders = ports
                .sql()
                .query(Statement::new(
                    "SELECT u.id, lower(u.email), lower(u.username) FROM users u \
                     WHERE u.email COLLATE NOCASE IN (SELECT value FROM json_each(?1)) \
                        OR u.username COLLATE NOCASE IN (SELECT value FROM json_each(?1))",
                    vec![list.into()],
                ))
                .await?;
            let mut holder: HashMap<String, String> = HashMap::new();
            for r in &holders {
                holder.insert(r.text(1)?.to_owned(), r.text(0)?.to_owned());
                holder.insert(r.text(2)?.to_owned(), r.text(0)?.to_owned());
            }
            let keys: Vec<String> = rows
                .iter()
                .map(|(_, v)| crate::client::principal_key(text_at(v, 0)))
                .collect();
            let clients = principal_clash(ports.sql(), &keys, false).await?;
            for (id, v) in rows {
                for field in [text_at(v, 1), text_at(v, 2)] {
                    if holder
                        .get(&field.to_lowercase())
                        .is_some_and(|other| other != text_at(v, 0))
                    {
                        refused.insert(
                            id.clone(),
                            "another user of this host has this email or username".to_owned(),
                        );
                    }
                }
                if clients.contains(&crate::client::principal_key(text_at(v, 0))) {
                    refused.insert(
                        id.clone(),
                        "the user id is the client_id of a client of this host".to_owned(),
                    );
                }
            }
        }
        "clients" => {
            let keys: Vec<String> = rows
                .iter()
                .map(|(_, v)| crate::client::principal_key(text_at(v, 0)))
                .collect();
            let users = principal_clash(ports.sql(), &keys, true).await?;
            for (id, v) in rows {
                if users.contains(&crate::client::principal_key(text_at(v, 0))) {
                    refused.insert(
                        id.clone(),
                        "the client_id is the id (sub) of a user of this host".to_owned(),
                    );
                }
            }
        }
        _ => {}
    }
    Ok(refused)
}

/// The principal keys ([`crate::client::principal_key`]) among `keys` that a user
/// (`users = true`) or a client holds.
async fn principal_clash(
    sql: &impl Sql,
    keys: &[String],
    users: bool,
) -> Result<HashSet<String>, AdminError> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let list = serde_json::to_string(keys).map_err(|e| PortError::other(e.to_string()))?;
    let q = if users {
        "SELECT replace(replace(lower(id), 'urn:uuid:', ''), '-', '') FROM users \
         WHERE replace(replace(lower(id), 'urn:uuid:', ''), '-', '') \
         IN (SELECT value FROM json_each(?))"
    } else {
        "SELECT replace(replace(lower(client_id), 'urn:uuid:', ''), '-', '') FROM clients \
         WHERE replace(replace(lower(client_id), 'urn:uuid:', ''), '-', '') \
         IN (SELECT value FROM json_each(?))"
    };
    let rows = sql.query(Statement::new(q, vec![list.into()])).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.text(0).ok().map(str::to_owned))
        .collect())
}

/// Retires the target's own `current`/`next` keys of every algorithm the import brings a
/// `current` or `next` key for (published until their tokens expire), so the imported ones
/// can take their places under the one-current/one-next indexes.
async fn retire_replaced_keys<P: Ports>(
    ports: &P,
    rows: &[(String, Vec<Option<Value>>)],
    report: &mut Report,
) -> Result<Vec<Statement>, AdminError> {
    let settings = Settings::load(ports)?;
    let now = ports.now();
    let incoming: HashSet<&str> = rows.iter().map(|(_, v)| text_at(v, 0)).collect();
    let algs: HashSet<&str> = rows
        .iter()
        .filter(|(_, v)| matches!(text_at(v, 2), "current" | "next"))
        .map(|(_, v)| text_at(v, 1))
        .collect();
    let mut out = Vec::new();
    for k in keys::list(ports.sql()).await? {
        if k.state != "retired"
            && algs.contains(k.alg.as_str())
            && !incoming.contains(k.kid.as_str())
        {
            out.push(Statement::new(
                "UPDATE signing_keys SET state = 'retired', retired_at = ?, expires_at = ? \
                 WHERE kid = ?",
                vec![
                    now.into(),
                    (now + settings.longest_token_ttl()).into(),
                    k.kid.as_str().into(),
                ],
            ));
            let mut item = Item::new("signing_keys", &k.kid, Outcome::Updated);
            item.notes.push(format!(
                "this host's own {} key, retired: published until its tokens expire",
                k.state
            ));
            report.push(item);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_every_table_has_its_sql_and_a_known_column_list() {
        for (i, t) in TABLES.iter().enumerate() {
            let s = table_sql(i);
            assert!(s.upsert.contains(&format!("INSERT INTO {} (", t.name)));
            assert!(s.existing.contains("json_each"));
            assert!(t.pk >= 1 && t.pk < t.columns.len(), "{}", t.name);
            if t.secret_only {
                assert!(t.cols().any(|c| c.secret), "{}", t.name);
            }
            assert!(!s.page_public.contains('!'));
        }
        assert!(table_sql(0).page_all.starts_with("SELECT rowid, id, email"));
        let keys = table_index("signing_keys").unwrap();
        assert!(!table_sql(keys).page_public.contains("private_sealed"));
        assert!(table_sql(keys).upsert.contains(
            "private_sealed = COALESCE(excluded.private_sealed, signing_keys.private_sealed)"
        ));
    }

    #[test]
    fn issue10_rows_are_checked_against_their_table() {
        let t = &TABLES[table_index("consents").unwrap()];
        let ok: Map<String, Json> = serde_json::from_value(serde_json::json!(
            {"user_id": "u", "client_id": "c", "scope": "openid", "granted_at": 5}))
        .unwrap();
        assert_eq!(parse_row(t, &ok).unwrap().len(), 4);
        for bad in [
            serde_json::json!({"user_id": "u", "client_id": "c", "scope": "openid", "granted_at": "5"}),
            serde_json::json!({"user_id": "u", "client_id": "c", "scope": "openid"}),
            serde_json::json!({"user_id": "u", "client_id": "c", "scope": "o", "granted_at": 5, "x": 1}),
        ] {
            let m: Map<String, Json> = serde_json::from_value(bad.clone()).unwrap();
            assert!(parse_row(t, &m).is_err(), "{bad}");
        }
    }
}
