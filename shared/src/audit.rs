//! Security events, append-only in `audit_events`, readable through `GET /admin/audit`.
//! Recording never fails a user's request: a failure is logged.
//!
//! Kinds (the `subject` is the user's id unless said otherwise):
//! `login.success`, `login.failure` (subject empty when the named account does not exist),
//! `logout`, `user.created`, `user.updated` (which fields changed, not their values),
//! `user.disabled`, `user.enabled`, `user.deleted`, `password.set` (by an admin),
//! `role.granted`, `role.revoked`, `code.replay` and `refresh.reuse` (the grant's user; the
//! grant is revoked). Details never carry a secret: no password, token or code.
//! What an admin does in the console adds `"via": "console"` and `"by"` (the admin's id) to
//! the detail ([`crate::user::manage::Actor`]).

use serde::Serialize;

use crate::grant;
use crate::ports::{PortError, Row, Sql, Statement, UnixTime};

pub async fn record(
    sql: &impl Sql,
    now: UnixTime,
    kind: &'static str,
    subject: &str,
    detail: serde_json::Value,
) {
    let stmt = Statement::new(
        "INSERT INTO audit_events (at, kind, subject, detail) VALUES (?, ?, ?, ?)",
        vec![
            now.into(),
            kind.into(),
            subject.into(),
            detail.to_string().into(),
        ],
    );
    if let Err(e) = sql.query(stmt).await {
        crate::error::log_error(crate::ErrorCode::ServerError, &format!("audit {kind}: {e}"));
    }
}

/// Records a replayed authorization code (`code.replay`) or a reused refresh token
/// (`refresh.reuse`) against the user of the grant it belonged to. Only the grant's id and
/// the client go into the detail, never the presented token.
pub async fn record_replay(
    sql: &impl Sql,
    now: UnixTime,
    kind: &'static str,
    grant_id: &str,
    client_id: &str,
) {
    let subject = match grant::load_grant(sql, grant_id).await {
        Ok(Some((g, _))) => g.user_id,
        Ok(None) => String::new(),
        Err(e) => {
            crate::error::log_error(crate::ErrorCode::ServerError, &format!("audit {kind}: {e}"));
            String::new()
        }
    };
    record(
        sql,
        now,
        kind,
        &subject,
        serde_json::json!({ "client_id": client_id, "grant_id": grant_id }),
    )
    .await;
}

/// An event as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixTime,
    pub kind: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

/// What `GET /admin/audit` (and the console's audit page) asks for. The listing is newest
/// first, so `after` (the `next` of the previous page, 0 for the first page) keeps the events
/// with a smaller id, i.e. older ones; empty `kind`/`subject` match everything; `from` and
/// `to` (Unix seconds, 0 for unbounded) keep events with `from <= at < to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub after: i64,
    pub limit: i64,
    pub kind: String,
    pub subject: String,
    pub from: UnixTime,
    pub to: UnixTime,
}

fn from_row(row: &Row) -> Result<AuditEvent, PortError> {
    Ok(AuditEvent {
        id: row.int(0)?,
        at: row.int(1)?,
        kind: row.text(2)?.to_owned(),
        subject: row.text(3)?.to_owned(),
        // Every detail was written by `record` as JSON; anything else is shown as a string.
        detail: {
            let raw = row.text(4)?;
            serde_json::from_str(raw).unwrap_or_else(|_| raw.into())
        },
    })
}

/// One page of events, newest first (keyset paging on the autoincrement id, so events
/// written while paging never shift a page).
pub async fn list(sql: &impl Sql, q: &AuditQuery) -> Result<Vec<AuditEvent>, PortError> {
    const Q: &str = "SELECT id, at, kind, subject, detail FROM audit_events \
        WHERE (?1 = 0 OR id < ?1) AND (?2 = '' OR kind = ?2) AND (?3 = '' OR subject = ?3) \
        AND (?5 = 0 OR at >= ?5) AND (?6 = 0 OR at < ?6) \
        ORDER BY id DESC LIMIT ?4";
    let rows = sql
        .query(Statement::new(
            Q,
            vec![
                q.after.into(),
                q.kind.as_str().into(),
                q.subject.as_str().into(),
                q.limit.into(),
                q.from.into(),
                q.to.into(),
            ],
        ))
        .await?;
    rows.iter().map(from_row).collect()
}
