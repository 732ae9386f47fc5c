//! Pruning expired state (DESIGN.md: "Everything that expires is pruned in bounded batches by a
//! scheduled job on each host"; issue 9, item 8).
//!
//! One pass deletes, table by table, what no flow can use any more, in batches of [`BATCH`]
//! rows (`DELETE ... WHERE rowid IN (SELECT rowid ... LIMIT n)`, one short autocommit statement
//! each, so a pass never holds the write lock for long), at most [`MAX_BATCHES`] batches per
//! table per pass. A pass that stopped at that cap says so ([`Summary::complete`]); the next
//! one carries on. The hosts schedule passes: the native binary on a timer, the Cloudflare
//! admin Worker on a Cron Trigger, Spin through `POST /admin/maintenance/prune` called by a
//! Kubernetes CronJob (`infra/k8s/maintenance.yaml`).
//!
//! What may go, and when (`grace` is [`GRACE`] or the longest token lifetime, whichever is
//! longer; every time is compared with the pass's `now`):
//!
//! | table | deleted when |
//! |---|---|
//! | `authorization_codes` | expired more than `grace` ago. Until its expiry a used code's row is what detects a replay (RFC 6749 §4.1.2); after it, a replay is refused as unknown anyway. |
//! | `refresh_tokens` | expired more than `grace` ago, or its grant was revoked more than [`GRACE`] ago or is gone (rotation requires a live grant, RFC 9700 §4.14.2). |
//! | `grants` | no refresh token row left, and revoked more than [`GRACE`] ago, or created more than code lifetime + `grace` ago (every access token it issued has expired: an access token whose grant is gone is refused, so a grant never goes while its tokens live). |
//! | `sessions` | expired or ended more than [`GRACE`] ago. |
//! | `revoked_access_tokens` | the access token expired more than [`GRACE`] ago (RFC 7009 §2: kept until it would have expired). |
//! | `throttle` | its count has restarted (last attempt older than [`THROTTLE_IDLE`]) and its lock ended more than [`GRACE`] ago. |
//! | `login_locks` (no longer written) | the lock ended more than [`GRACE`] ago. |
//! | `audit_events` | older than the retention (`audit_retention_days`, default 90). |
//! | `signing_keys` | retired and past `expires_at` (the rule key rotation applies). |
//! | `recovery_tokens` (credentials DB) | expired or used more than [`GRACE`] ago. |
//!
//! KV keys (caches, throttle counters) are not listed here: Spin KV and Workers KV cannot be
//! enumerated portably, and every KV value that expires carries its expiry inside
//! ([`crate::cache`]), so a stale one is ignored when read.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::OAuthError;
use crate::config::{CODE_TTL, Settings};
use crate::ports::{Config, PortError, Ports, Sql, Statement, UnixTime, Value};

/// Variable names (every host maps them as it maps the others, e.g. `AUDIT_RETENTION_DAYS` on
/// Workers).
pub mod var {
    /// Days audit events are kept (default 90).
    pub const AUDIT_RETENTION_DAYS: &str = "audit_retention_days";
}

pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 90;
/// The longest audit retention accepted: 100 years.
const MAX_AUDIT_RETENTION_DAYS: i64 = 36_500;
/// How long a dead record stays after it stopped mattering: a late replay of a code or refresh
/// token still finds its row (and is audited), and an operator looking into an incident still
/// finds yesterday's sessions.
pub const GRACE: i64 = 86_400;
/// A throttle count idle this long has restarted whatever its kind: longer than every
/// `forget_after` of [`crate::throttle`] (the longest, `FORGET_AFTER`, is a day) by [`GRACE`].
pub const THROTTLE_IDLE: i64 = 2 * 86_400;
/// Rows per DELETE statement.
pub const BATCH: i64 = 500;
/// Batches per table per pass: a pass deletes at most `BATCH * MAX_BATCHES` rows per table.
pub const MAX_BATCHES: u32 = 20;

/// The cut-off times of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub now: UnixTime,
    /// [`GRACE`], or the longest access/ID token lifetime when that is longer: nothing whose
    /// tokens may still be live goes.
    pub grace: i64,
    pub audit_retention_days: i64,
}

impl Policy {
    /// Reads the token lifetimes and `audit_retention_days`. A retention that is not a whole
    /// number of days in 1..=36500 is an error, not a default: pruning must never delete more
    /// than the operator asked to keep.
    pub fn load(config: &impl Config, now: UnixTime) -> Result<Policy, OAuthError> {
        let settings = Settings::load(config)?;
        Ok(Policy {
            now,
            grace: GRACE.max(settings.longest_token_ttl()),
            audit_retention_days: audit_retention_days(config)?,
        })
    }

    fn dead_since(&self) -> UnixTime {
        self.now - GRACE
    }

    fn expired_since(&self) -> UnixTime {
        self.now - self.grace
    }

    fn audit_cutoff(&self) -> UnixTime {
        self.now - self.audit_retention_days * 86_400
    }
}

/// `audit_retention_days`, validated (see [`Policy::load`]).
pub fn audit_retention_days(config: &impl Config) -> Result<i64, OAuthError> {
    match config.var(var::AUDIT_RETENTION_DAYS) {
        None => Ok(DEFAULT_AUDIT_RETENTION_DAYS),
        Some(v) if v.trim().is_empty() => Ok(DEFAULT_AUDIT_RETENTION_DAYS),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(days) if (1..=MAX_AUDIT_RETENTION_DAYS).contains(&days) => Ok(days),
            _ => Err(OAuthError::server(format!(
                "variable '{}' must be a number of days from 1 to {MAX_AUDIT_RETENTION_DAYS}, got {v:?}",
                var::AUDIT_RETENTION_DAYS
            ))),
        },
    }
}

/// Which database a rule prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Main,
    Credentials,
}

/// One table's rule: a DELETE of at most `LIMIT ?` rows with `RETURNING 1` (Spin's SQLite
/// interface reports no changed-row count, so the returned rows are the count). The last
/// parameter is always the batch size.
struct Rule {
    table: &'static str,
    db: Db,
    sql: &'static str,
    cutoffs: fn(&Policy) -> Vec<UnixTime>,
}

/// Every rule in pass order: refresh tokens before the grants they keep alive.
const RULES: &[Rule] = &[
    Rule {
        table: "authorization_codes",
        db: Db::Main,
        sql: "DELETE FROM authorization_codes WHERE rowid IN (SELECT rowid FROM authorization_codes \
              WHERE expires_at < ?1 LIMIT ?2) RETURNING 1",
        cutoffs: |p| vec![p.expired_since()],
    },
    Rule {
        table: "refresh_tokens",
        db: Db::Main,
        sql: "DELETE FROM refresh_tokens WHERE rowid IN (SELECT r.rowid FROM refresh_tokens r \
              WHERE r.expires_at < ?1 OR NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = r.grant_id \
              AND (g.revoked_at IS NULL OR g.revoked_at >= ?2)) LIMIT ?3) RETURNING 1",
        cutoffs: |p| vec![p.expired_since(), p.dead_since()],
    },
    Rule {
        table: "grants",
        db: Db::Main,
        sql: "DELETE FROM grants WHERE rowid IN (SELECT g.rowid FROM grants g \
              WHERE (g.revoked_at < ?1 OR g.created_at < ?2) \
              AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id) LIMIT ?3) \
              RETURNING 1",
        cutoffs: |p| vec![p.dead_since(), p.expired_since() - CODE_TTL],
    },
    Rule {
        table: "sessions",
        db: Db::Main,
        sql: "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions \
              WHERE expires_at < ?1 OR ended_at < ?1 LIMIT ?2) RETURNING 1",
        cutoffs: |p| vec![p.dead_since()],
    },
    Rule {
        table: "revoked_access_tokens",
        db: Db::Main,
        sql: "DELETE FROM revoked_access_tokens WHERE rowid IN (SELECT rowid FROM revoked_access_tokens \
              WHERE expires_at < ?1 LIMIT ?2) RETURNING 1",
        cutoffs: |p| vec![p.dead_since()],
    },
    Rule {
        table: "login_locks",
        db: Db::Main,
        sql: "DELETE FROM login_locks WHERE rowid IN (SELECT rowid FROM login_locks \
              WHERE until < ?1 LIMIT ?2) RETURNING 1",
        cutoffs: |p| vec![p.dead_since()],
    },
    // A throttle row is dead once its count would restart anyway (its last attempt is older
    // than the longest `forget_after`) and its lock is over: a missing row and a stale one
    // grant the next attempt the same (`throttle::reserve`).
    Rule {
        table: "throttle",
        db: Db::Main,
        sql: "DELETE FROM throttle WHERE rowid IN (SELECT rowid FROM throttle \
              WHERE last < ?1 AND locked_until < ?2 LIMIT ?3) RETURNING 1",
        cutoffs: |p| vec![p.now - THROTTLE_IDLE, p.dead_since()],
    },
    // The oldest BATCH events, of which the expired ones: events are appended with the
    // current time, so once one of the oldest is still kept every later one is too. Each
    // batch reads BATCH rows by primary key instead of scanning the whole (largest) table.
    Rule {
        table: "audit_events",
        db: Db::Main,
        sql: "DELETE FROM audit_events WHERE id IN (SELECT id FROM \
              (SELECT id, at FROM audit_events ORDER BY id LIMIT ?2) WHERE at < ?1) RETURNING 1",
        cutoffs: |p| vec![p.audit_cutoff()],
    },
    Rule {
        table: "signing_keys",
        db: Db::Main,
        sql: "DELETE FROM signing_keys WHERE rowid IN (SELECT rowid FROM signing_keys \
              WHERE state = 'retired' AND expires_at <= ?1 LIMIT ?2) RETURNING 1",
        cutoffs: |p| vec![p.now],
    },
    Rule {
        table: "recovery_tokens",
        db: Db::Credentials,
        sql: "DELETE FROM recovery_tokens WHERE rowid IN (SELECT rowid FROM recovery_tokens \
              WHERE expires_at < ?1 OR used_at < ?1 LIMIT ?2) RETURNING 1",
        cutoffs: |p| vec![p.dead_since()],
    },
];

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Rows deleted per table (every table the pass visited, zeros included).
    pub deleted: BTreeMap<&'static str, u64>,
    /// False when some table still had rows to delete after [`MAX_BATCHES`] batches (or
    /// failed): the next pass carries on.
    pub complete: bool,
    /// Tables whose DELETE failed (details in the log).
    pub failed: Vec<&'static str>,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.deleted.values().sum()
    }
}

/// Runs one pass at `policy.now`. A failing table is logged and skipped, so one broken table
/// (a migration not yet applied, say) does not stop the others.
pub async fn run<P: Ports>(ports: &P, policy: &Policy) -> Summary {
    let mut summary = Summary {
        complete: true,
        ..Summary::default()
    };
    for rule in RULES {
        let sql = match rule.db {
            Db::Main => ports.sql(),
            Db::Credentials => ports.credentials(),
        };
        match prune_table(sql, rule, policy).await {
            Ok((deleted, done)) => {
                summary.deleted.insert(rule.table, deleted);
                summary.complete &= done;
            }
            Err((deleted, e)) => {
                crate::error::log_error(
                    crate::ErrorCode::ServerError,
                    &format!("pruning {}: {e}", rule.table),
                );
                summary.deleted.insert(rule.table, deleted);
                summary.failed.push(rule.table);
                summary.complete = false;
            }
        }
    }
    summary
}

/// Loads the policy at the ports' clock and runs one pass.
pub async fn run_now<P: Ports>(ports: &P) -> Result<Summary, OAuthError> {
    let policy = Policy::load(ports, ports.now())?;
    Ok(run(ports, &policy).await)
}

/// Deletes in batches until a batch comes back short or the cap is reached; returns the rows
/// deleted and whether the table is done.
async fn prune_table(
    sql: &impl Sql,
    rule: &Rule,
    policy: &Policy,
) -> Result<(u64, bool), (u64, PortError)> {
    let mut params: Vec<Value> = (rule.cutoffs)(policy)
        .into_iter()
        .map(Value::from)
        .collect();
    params.push(BATCH.into());
    let mut deleted = 0u64;
    for _ in 0..MAX_BATCHES {
        let rows = sql
            .query(Statement::new(rule.sql, params.clone()))
            .await
            .map_err(|e| (deleted, e))?;
        let n = rows.len() as u64;
        deleted += n;
        if n < BATCH as u64 {
            return Ok((deleted, true));
        }
    }
    Ok((deleted, false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn throttle_rows_are_kept_past_every_window_and_lock() {
        use crate::throttle::Kind;
        for kind in [
            Kind::Password,
            Kind::PasswordAddress,
            Kind::SecondFactor,
            Kind::RecoveryName,
            Kind::RecoveryAddress,
            Kind::Client,
        ] {
            let p = kind.policy();
            assert!(p.forget_after + GRACE <= THROTTLE_IDLE, "{kind:?}");
            assert!(p.lock_seconds <= THROTTLE_IDLE, "{kind:?}");
        }
    }

    #[test]
    fn every_rule_binds_its_cutoffs_and_the_batch_size() {
        let p = Policy {
            now: 1_000_000_000,
            grace: GRACE,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        };
        for rule in RULES {
            let n = (rule.cutoffs)(&p).len() + 1;
            assert!(
                rule.sql.contains(&format!("?{n}")) && !rule.sql.contains(&format!("?{}", n + 1)),
                "{}: {n} parameters",
                rule.table
            );
            assert!(rule.sql.ends_with("RETURNING 1"), "{}", rule.table);
            assert!(rule.sql.contains("LIMIT"), "{}: bounded", rule.table);
        }
    }
}
