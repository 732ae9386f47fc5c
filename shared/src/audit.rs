//! Security events, append-only in `audit_events` (login success/failure, logout, code and
//! refresh-token replays). Recording never fails a user's request: a failure is logged.

use crate::ports::{Sql, Statement, UnixTime};

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
