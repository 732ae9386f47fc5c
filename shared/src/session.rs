//! Browser sessions at the provider (OIDC Core §3.1.2.3: the End-User stays authenticated
//! between authorization requests) and the cookie that binds a pending request to a browser.
//!
//! The session cookie carries a random token; only its SHA-256 digest is stored, so a read of
//! the database yields no usable cookie. `sid` is the public session id put in ID tokens.

use crate::crypto::{random_token, sha256_hex};
use crate::ports::{PortError, Ports, Sql, Statement, UnixTime};
use crate::{Request, web};

/// `HttpOnly`, `SameSite=Lax`, host-only; `Secure` except on plain-http loopback.
pub const SESSION_COOKIE: &str = "edgeid_session";
/// Binds the sealed pending authorization request to the browser that started it.
pub const FLOW_COOKIE: &str = "edgeid_flow";

/// What counts as a recent authentication (OIDC Core §3.1.2.1 `max_age` in spirit): a password
/// change without the current password, removing a second factor, and the console's
/// destructive actions need a sign-in at most this old.
pub const RECENT_AUTHENTICATION: i64 = 5 * 60;

/// Authentication methods (RFC 8176 §2) recorded per session.
pub const AMR_PASSWORD: &str = "pwd";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_sha256: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub expires_at: UnixTime,
}

/// The live session named by the request's cookie, if any: not ended, not expired, and its
/// user still present and enabled.
pub async fn current(
    sql: &impl Sql,
    req: &Request,
    now: UnixTime,
) -> Result<Option<Session>, PortError> {
    let Some(token) = web::cookie(req, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    load(sql, &sha256_hex(token.as_bytes()), now).await
}

async fn load(
    sql: &impl Sql,
    token_sha256: &str,
    now: UnixTime,
) -> Result<Option<Session>, PortError> {
    const Q: &str = "SELECT s.token_sha256, s.sid, s.user_id, s.auth_time, s.amr, s.expires_at \
        FROM sessions s JOIN users u ON u.id = s.user_id \
        WHERE s.token_sha256 = ? AND s.ended_at IS NULL AND s.expires_at > ? AND u.disabled = 0";
    live(sql, Q, token_sha256, now).await
}

/// The live session whose public id is `sid`, on the same terms as [`current`]. The console
/// rests on it (issue 11): logout, disabling the user and ending their sessions end the
/// console's sign-in at its next request.
pub async fn by_sid(
    sql: &impl Sql,
    sid: &str,
    now: UnixTime,
) -> Result<Option<Session>, PortError> {
    const Q: &str = "SELECT s.token_sha256, s.sid, s.user_id, s.auth_time, s.amr, s.expires_at \
        FROM sessions s JOIN users u ON u.id = s.user_id \
        WHERE s.sid = ? AND s.ended_at IS NULL AND s.expires_at > ? AND u.disabled = 0";
    live(sql, Q, sid, now).await
}

async fn live(
    sql: &impl Sql,
    q: &'static str,
    key: &str,
    now: UnixTime,
) -> Result<Option<Session>, PortError> {
    let rows = sql
        .query(Statement::new(q, vec![key.into(), now.into()]))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Session {
        token_sha256: row.text(0)?.to_owned(),
        sid: row.text(1)?.to_owned(),
        user_id: row.text(2)?.to_owned(),
        auth_time: row.int(3)?,
        amr: serde_json::from_str(row.text(4)?).unwrap_or_default(),
        expires_at: row.int(5)?,
    }))
}

/// Starts a session for `user_id` authenticated now; returns the cookie token and the session.
pub async fn create<P: Ports>(
    ports: &P,
    user_id: &str,
    amr: &[&str],
    now: UnixTime,
    ttl: i64,
) -> Result<(String, Session), PortError> {
    let token = random_token(ports, 32)?;
    let session = Session {
        token_sha256: sha256_hex(token.as_bytes()),
        sid: random_token(ports, 16)?,
        user_id: user_id.to_owned(),
        auth_time: now,
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        expires_at: now + ttl,
    };
    let amr_json = serde_json::to_string(&session.amr).map_err(PortError::other)?;
    ports
        .sql()
        .query(Statement::new(
            "INSERT INTO sessions (token_sha256, sid, user_id, auth_time, amr, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                session.token_sha256.as_str().into(),
                session.sid.as_str().into(),
                user_id.into(),
                now.into(),
                amr_json.into(),
                now.into(),
                session.expires_at.into(),
            ],
        ))
        .await?;
    Ok((token, session))
}

/// Adds an authentication method (RFC 8176) to a live session's `amr`: the session has just
/// proven it (enrolling TOTP checks a code of the new factor).
pub async fn add_method(sql: &impl Sql, token_sha256: &str, method: &str) -> Result<(), PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT amr FROM sessions WHERE token_sha256 = ?",
            vec![token_sha256.into()],
        ))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let mut amr: Vec<String> = serde_json::from_str(row.text(0)?).unwrap_or_default();
    if amr.iter().any(|m| m == method) {
        return Ok(());
    }
    amr.push(method.to_owned());
    let json = serde_json::to_string(&amr).map_err(PortError::other)?;
    sql.query(Statement::new(
        "UPDATE sessions SET amr = ? WHERE token_sha256 = ?",
        vec![json.into(), token_sha256.into()],
    ))
    .await?;
    Ok(())
}

/// Ends one session (logout). Idempotent.
pub async fn end(sql: &impl Sql, token_sha256: &str, now: UnixTime) -> Result<(), PortError> {
    sql.query(Statement::new(
        "UPDATE sessions SET ended_at = ? WHERE token_sha256 = ? AND ended_at IS NULL",
        vec![now.into(), token_sha256.into()],
    ))
    .await?;
    Ok(())
}

/// A live session of a user as the settings page and the console list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub session: Session,
    pub created_at: UnixTime,
}

/// The user's live sessions (not ended, not expired), newest first.
pub async fn list_live(
    sql: &impl Sql,
    user_id: &str,
    now: UnixTime,
) -> Result<Vec<Listed>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT token_sha256, sid, user_id, auth_time, amr, expires_at, created_at \
             FROM sessions WHERE user_id = ? AND ended_at IS NULL AND expires_at > ? \
             ORDER BY created_at DESC, sid",
            vec![user_id.into(), now.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Listed {
                session: Session {
                    token_sha256: r.text(0)?.to_owned(),
                    sid: r.text(1)?.to_owned(),
                    user_id: r.text(2)?.to_owned(),
                    auth_time: r.int(3)?,
                    amr: serde_json::from_str(r.text(4)?).unwrap_or_default(),
                    expires_at: r.int(5)?,
                },
                created_at: r.int(6)?,
            })
        })
        .collect()
}

/// Which of a user's sessions to end ([`end_for_user`]).
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// The one with this public id.
    Sid(&'a str),
    /// All but the one with this cookie digest (the settings page's "all other sessions").
    AllBut(&'a str),
    /// All of them (the console's "end all").
    All,
}

/// Ends sessions of `user_id` and records one `session.ended` event per session ended
/// (`by_sid`: the session that asked). Returns the `sid`s ended. The console's cookie rests on
/// the session, so an ended session also ends that browser's console sign-in.
pub async fn end_for_user(
    sql: &impl Sql,
    user_id: &str,
    which: Ending<'_>,
    by_sid: &str,
    now: UnixTime,
) -> Result<Vec<String>, PortError> {
    let stmt = match which {
        Ending::Sid(sid) => Statement::new(
            "UPDATE sessions SET ended_at = ? \
             WHERE sid = ? AND user_id = ? AND ended_at IS NULL RETURNING sid",
            vec![now.into(), sid.into(), user_id.into()],
        ),
        Ending::AllBut(token_sha256) => Statement::new(
            "UPDATE sessions SET ended_at = ? \
             WHERE user_id = ? AND token_sha256 <> ? AND ended_at IS NULL RETURNING sid",
            vec![now.into(), user_id.into(), token_sha256.into()],
        ),
        Ending::All => Statement::new(
            "UPDATE sessions SET ended_at = ? \
             WHERE user_id = ? AND ended_at IS NULL RETURNING sid",
            vec![now.into(), user_id.into()],
        ),
    };
    let ended = sql
        .query(stmt)
        .await?
        .iter()
        .map(|r| r.text(0).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    for sid in &ended {
        crate::audit::record(
            sql,
            now,
            "session.ended",
            user_id,
            serde_json::json!({ "sid": sid, "by_sid": by_sid }),
        )
        .await;
    }
    Ok(ended)
}

/// The `Set-Cookie` that installs a session.
pub fn cookie(token: &str, ttl: i64, secure: bool) -> http::HeaderValue {
    web::set_cookie(SESSION_COOKIE, token, Some(ttl), secure)
}

/// The `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> http::HeaderValue {
    web::set_cookie(SESSION_COOKIE, "", Some(0), secure)
}
