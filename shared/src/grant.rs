//! Grants, authorization codes and refresh tokens: the single-use records (DESIGN.md, "Single
//! use is a storage contract").
//!
//! A grant is one authorization by one user to one client; every code, refresh token and
//! access token (`gid` claim) descends from it, so revoking the grant revokes the family.
//! Redeeming a code and rotating a refresh token are each ONE conditional `UPDATE ...
//! RETURNING`: of N concurrent attempts exactly one gets a row back.

use crate::crypto::{random_token, sha256_hex};
use crate::ports::{PortError, Ports, Row, Sql, Statement, UnixTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub scope: String,
}

/// What an authorization code carries to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub grant_id: String,
    pub client_id: String,
    /// The authorization request's `redirect_uri` parameter, `None` when it had none (RFC 6749
    /// §4.1.3: the token request must then repeat it). Stored as `''` for `None`: the column
    /// is NOT NULL and no redirect URI is empty.
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
}

/// A refresh token's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
}

/// The outcome of a single-use redemption.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// This call won; the record is now used.
    Won(T),
    /// The record exists but was already used: a replay. The caller revokes the grant
    /// (RFC 6749 §4.1.2 for codes, RFC 9700 §4.14.2 for refresh tokens).
    Replayed { grant_id: String },
    /// Unknown or expired.
    Invalid,
}

fn amr_json(amr: &[String]) -> String {
    serde_json::to_string(amr).unwrap_or_else(|_| "[]".to_owned())
}

fn amr_parse(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The statement creating a grant (batched with its first code or token).
pub fn insert_grant(g: &Grant, now: UnixTime) -> Statement {
    Statement::new(
        "INSERT INTO grants (id, client_id, user_id, sid, scope, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            g.id.as_str().into(),
            g.client_id.as_str().into(),
            g.user_id.as_str().into(),
            g.sid.as_str().into(),
            g.scope.as_str().into(),
            now.into(),
        ],
    )
}

/// A new code for `c`; returns the code and the statement that stores its digest.
pub fn new_code<P: Ports>(
    ports: &P,
    c: &Code,
    now: UnixTime,
    ttl: i64,
) -> Result<(String, Statement), PortError> {
    let code = random_token(ports, 32)?;
    let stmt = Statement::new(
        "INSERT INTO authorization_codes (code_sha256, grant_id, client_id, redirect_uri, \
         code_challenge, nonce, auth_time, amr, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            sha256_hex(code.as_bytes()).into(),
            c.grant_id.as_str().into(),
            c.client_id.as_str().into(),
            c.redirect_uri.as_deref().unwrap_or("").into(),
            c.code_challenge.clone().into(),
            c.nonce.clone().into(),
            c.auth_time.into(),
            amr_json(&c.amr).into(),
            now.into(),
            (now + ttl).into(),
        ],
    );
    Ok((code, stmt))
}

/// RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once."
/// RFC 6749 §4.1.3: the code must have been issued to the authenticated client, so another
/// client's attempt neither uses it up nor counts as a replay.
///
/// The code's grant must still stand (RFC 6749 §5.2 `invalid_grant`: the grant "is invalid,
/// expired, revoked"): a code issued before its grant was revoked — the user revoked the app,
/// changed their password, was disabled — redeems to nothing. The join is inside the one
/// conditional UPDATE, so a revocation that commits before the redemption always wins.
pub async fn redeem_code(
    sql: &impl Sql,
    code: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<Redeemed<Code>, PortError> {
    let digest = sha256_hex(code.as_bytes());
    let rows = sql
        .query(Statement::new(
            "UPDATE authorization_codes SET used_at = ? \
             WHERE code_sha256 = ? AND client_id = ? AND used_at IS NULL AND expires_at > ? \
             AND grant_id IN (SELECT id FROM grants WHERE revoked_at IS NULL) \
             RETURNING grant_id, client_id, redirect_uri, code_challenge, nonce, auth_time, amr",
            vec![
                now.into(),
                digest.as_str().into(),
                client_id.into(),
                now.into(),
            ],
        ))
        .await?;
    if let Some(r) = rows.first() {
        return Ok(Redeemed::Won(Code {
            grant_id: r.text(0)?.to_owned(),
            client_id: r.text(1)?.to_owned(),
            redirect_uri: Some(r.text(2)?)
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            code_challenge: r.opt_text(3)?.map(str::to_owned),
            nonce: r.opt_text(4)?.map(str::to_owned),
            auth_time: r.int(5)?,
            amr: amr_parse(r.text(6)?),
        }));
    }
    replayed(
        sql,
        "SELECT grant_id FROM authorization_codes \
         WHERE code_sha256 = ? AND client_id = ? AND used_at IS NOT NULL",
        &digest,
        client_id,
    )
    .await
}

async fn replayed<T>(
    sql: &impl Sql,
    q: &'static str,
    digest: &str,
    client_id: &str,
) -> Result<Redeemed<T>, PortError> {
    let rows = sql
        .query(Statement::new(q, vec![digest.into(), client_id.into()]))
        .await?;
    Ok(match rows.first() {
        Some(r) => Redeemed::Replayed {
            grant_id: r.text(0)?.to_owned(),
        },
        None => Redeemed::Invalid,
    })
}

/// A new refresh token; returns the token and the statement that stores its digest.
pub fn new_refresh<P: Ports>(
    ports: &P,
    r: &Refresh,
    now: UnixTime,
    ttl: i64,
) -> Result<(String, Statement), PortError> {
    let token = random_token(ports, 32)?;
    let stmt = Statement::new(
        "INSERT INTO refresh_tokens (token_sha256, grant_id, client_id, scope, auth_time, amr, \
         created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            sha256_hex(token.as_bytes()).into(),
            r.grant_id.as_str().into(),
            r.client_id.as_str().into(),
            r.scope.as_str().into(),
            r.auth_time.into(),
            amr_json(&r.amr).into(),
            now.into(),
            (now + ttl).into(),
        ],
    );
    Ok((token, stmt))
}

/// RFC 6749 §6 with rotation (RFC 9700 §4.14.2): the presented token is used up by this call;
/// a rotated token presented again is a replay.
pub async fn rotate_refresh(
    sql: &impl Sql,
    token: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<Redeemed<Refresh>, PortError> {
    let digest = sha256_hex(token.as_bytes());
    let rows = sql
        .query(Statement::new(
            "UPDATE refresh_tokens SET used_at = ? \
             WHERE token_sha256 = ? AND client_id = ? AND used_at IS NULL AND expires_at > ? \
             AND grant_id IN (SELECT id FROM grants WHERE revoked_at IS NULL) \
             RETURNING grant_id, client_id, scope, auth_time, amr",
            vec![
                now.into(),
                digest.as_str().into(),
                client_id.into(),
                now.into(),
            ],
        ))
        .await?;
    if let Some(r) = rows.first() {
        return Ok(Redeemed::Won(refresh_from_row(r)?));
    }
    replayed(
        sql,
        "SELECT grant_id FROM refresh_tokens \
         WHERE token_sha256 = ? AND client_id = ? AND used_at IS NOT NULL",
        &digest,
        client_id,
    )
    .await
}

fn refresh_from_row(r: &Row) -> Result<Refresh, PortError> {
    Ok(Refresh {
        grant_id: r.text(0)?.to_owned(),
        client_id: r.text(1)?.to_owned(),
        scope: r.text(2)?.to_owned(),
        auth_time: r.int(3)?,
        amr: amr_parse(r.text(4)?),
    })
}

/// A live refresh token's record, without using it (introspection, revocation).
pub async fn peek_refresh(
    sql: &impl Sql,
    token: &str,
    now: UnixTime,
) -> Result<Option<(Refresh, UnixTime, UnixTime)>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT r.grant_id, r.client_id, r.scope, r.auth_time, r.amr, r.created_at, r.expires_at \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
             WHERE r.token_sha256 = ? AND r.used_at IS NULL AND r.expires_at > ? \
             AND g.revoked_at IS NULL",
            vec![sha256_hex(token.as_bytes()).into(), now.into()],
        ))
        .await?;
    rows.first()
        .map(|r| Ok((refresh_from_row(r)?, r.int(5)?, r.int(6)?)))
        .transpose()
}

/// The grant behind a refresh token, used or not (revocation: RFC 7009 §2.1 revokes the
/// whole family whichever member is presented).
pub async fn refresh_grant(
    sql: &impl Sql,
    token: &str,
) -> Result<Option<(String, String)>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT grant_id, client_id FROM refresh_tokens WHERE token_sha256 = ?",
            vec![sha256_hex(token.as_bytes()).into()],
        ))
        .await?;
    rows.first()
        .map(|r| Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned())))
        .transpose()
}

pub async fn load_grant(sql: &impl Sql, id: &str) -> Result<Option<(Grant, bool)>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT id, client_id, user_id, sid, scope, revoked_at FROM grants WHERE id = ?",
            vec![id.into()],
        ))
        .await?;
    rows.first()
        .map(|r| {
            Ok((
                Grant {
                    id: r.text(0)?.to_owned(),
                    client_id: r.text(1)?.to_owned(),
                    user_id: r.text(2)?.to_owned(),
                    sid: r.text(3)?.to_owned(),
                    scope: r.text(4)?.to_owned(),
                },
                r.opt_int(5)?.is_some(),
            ))
        })
        .transpose()
}

/// Revokes a grant: its refresh tokens stop rotating and its access tokens stop being
/// accepted by userinfo and introspection. Idempotent.
pub async fn revoke_grant(sql: &impl Sql, grant_id: &str, now: UnixTime) -> Result<(), PortError> {
    sql.query(Statement::new(
        "UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        vec![now.into(), grant_id.into()],
    ))
    .await?;
    Ok(())
}

/// Revokes one access token by `jti` until it would have expired anyway (RFC 7009 §2).
pub async fn revoke_access_token(
    sql: &impl Sql,
    jti: &str,
    exp: UnixTime,
) -> Result<(), PortError> {
    sql.query(Statement::new(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
        vec![jti.into(), exp.into()],
    ))
    .await?;
    Ok(())
}

pub async fn access_token_revoked(sql: &impl Sql, jti: &str) -> Result<bool, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = ?",
            vec![jti.into()],
        ))
        .await?;
    Ok(!rows.is_empty())
}

/// A new grant id.
pub fn new_grant_id(ports: &impl Ports) -> Result<String, PortError> {
    random_token(ports, 16)
}
