//! Throttling password guessing at the login form (issue: per account and per client address,
//! exponential back-off, a lock record in SQL).
//!
//! Counters are keyed by what the form names — a digest of the lower-cased identifier — never by
//! whether that account exists, so a throttled answer reveals nothing about which accounts do.
//! They live in KV (losing one only forgets some failures); the lock after many failures lives
//! in SQL, which every host reads consistently.

use serde::{Deserialize, Serialize};

use crate::crypto::sha256_hex;
use crate::ports::{Kv as _, PortError, Ports, Sql as _, Statement, UnixTime};
use crate::{Request, audit};

/// The header every host adapter sets to the client's address (after dropping any copy the
/// client sent): the native host from the socket, Spin from `spin-client-addr`, Cloudflare from
/// `cf-connecting-ip`.
pub const CLIENT_ADDR_HEADER: &str = "x-edgeid-client-addr";

/// Failures allowed before the back-off starts: per account, per client address.
const FREE_PER_ACCOUNT: u32 = 5;
const FREE_PER_ADDRESS: u32 = 30;
/// The back-off doubles per failure past the free ones, up to this.
const MAX_DELAY: i64 = 15 * 60;
/// After this many failures in a row an account is locked in SQL for [`LOCK_SECONDS`].
pub const LOCK_AFTER: u32 = 20;
pub const LOCK_SECONDS: i64 = 60 * 60;
/// A counter whose last failure is older than this starts again from zero.
const FORGET_AFTER: i64 = 24 * 60 * 60;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    failures: u32,
    last: UnixTime,
}

/// May this attempt proceed?
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Retry after this many seconds.
    Wait(i64),
}

/// Records the client's address for the core, replacing whatever the client sent under the
/// same name. `raw` is an IP address, or a socket address whose port is dropped.
pub fn set_client_addr(req: &mut Request, raw: Option<&str>) {
    req.headers_mut().remove(CLIENT_ADDR_HEADER);
    let ip = raw.map(str::trim).and_then(|r| {
        r.parse::<std::net::SocketAddr>()
            .map(|s| s.ip())
            .or_else(|_| r.parse::<std::net::IpAddr>())
            .ok()
    });
    if let Some(v) = ip.and_then(|ip| http::HeaderValue::from_str(&ip.to_string()).ok()) {
        req.headers_mut().insert(CLIENT_ADDR_HEADER, v);
    }
}

/// The client's address as the host adapter recorded it.
pub fn client_addr(req: &Request) -> String {
    req.headers()
        .get(CLIENT_ADDR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .unwrap_or("unknown")
        .to_owned()
}

fn account_key(identifier: &str) -> String {
    sha256_hex(identifier.trim().to_lowercase().as_bytes())
}

fn delay(failures: u32, free: u32) -> i64 {
    if failures < free {
        0
    } else {
        // 1 s after the last free failure, then doubling: 1, 2, 4, ... capped.
        1i64.checked_shl(failures - free)
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY)
    }
}

async fn counter<P: Ports>(ports: &P, key: &str, now: UnixTime) -> Counter {
    match ports.kv().get(key).await {
        Ok(Some(raw)) => serde_json::from_slice::<Counter>(&raw)
            .ok()
            .filter(|c| now - c.last < FORGET_AFTER)
            .unwrap_or_default(),
        _ => Counter::default(),
    }
}

fn keys(identifier: &str, addr: &str) -> [(String, u32); 2] {
    [
        (
            format!("throttle:v1:acct:{}", account_key(identifier)),
            FREE_PER_ACCOUNT,
        ),
        (format!("throttle:v1:addr:{addr}"), FREE_PER_ADDRESS),
    ]
}

/// Checked before the password is: a throttled attempt costs no hashing.
pub async fn check<P: Ports>(
    ports: &P,
    identifier: &str,
    addr: &str,
    now: UnixTime,
) -> Result<Verdict, PortError> {
    let rows = ports
        .sql()
        .query(Statement::new(
            "SELECT until FROM login_locks WHERE key = ? AND until > ?",
            vec![account_key(identifier).into(), now.into()],
        ))
        .await?;
    if let Some(r) = rows.first() {
        return Ok(Verdict::Wait(r.int(0)? - now));
    }
    let mut wait = 0;
    for (key, free) in keys(identifier, addr) {
        let c = counter(ports, &key, now).await;
        wait = wait.max(c.last + delay(c.failures, free) - now);
    }
    Ok(if wait > 0 {
        Verdict::Wait(wait)
    } else {
        Verdict::Allowed
    })
}

/// Records a failed attempt; locks the account name in SQL after [`LOCK_AFTER`] in a row.
pub async fn failed<P: Ports>(
    ports: &P,
    identifier: &str,
    addr: &str,
    now: UnixTime,
) -> Result<(), PortError> {
    let mut account_failures = 0;
    for (i, (key, _)) in keys(identifier, addr).into_iter().enumerate() {
        let mut c = counter(ports, &key, now).await;
        c.failures = c.failures.saturating_add(1);
        c.last = now;
        if i == 0 {
            account_failures = c.failures;
        }
        // Best effort: a lost counter only forgets some failures.
        if let Ok(raw) = serde_json::to_vec(&c) {
            let _ = ports.kv().put(&key, &raw).await;
        }
    }
    if account_failures >= LOCK_AFTER {
        ports
            .sql()
            .query(Statement::new(
                "INSERT INTO login_locks (key, until, failures, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET until = excluded.until, failures = excluded.failures",
                vec![
                    account_key(identifier).into(),
                    (now + LOCK_SECONDS).into(),
                    i64::from(account_failures).into(),
                    now.into(),
                ],
            ))
            .await?;
        audit::record(
            ports.sql(),
            now,
            "login.lockout",
            "",
            serde_json::json!({ "account": account_key(identifier), "failures": account_failures }),
        )
        .await;
    }
    Ok(())
}

/// A successful login clears the account's counter (not the address's: one valid account
/// must not reset an address that is guessing others).
pub async fn succeeded<P: Ports>(ports: &P, identifier: &str, addr: &str) {
    let [(account, _), _] = keys(identifier, addr);
    let _ = ports.kv().delete(&account).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_drop_the_port_and_replace_a_forged_header() {
        let mut req = http::Request::builder()
            .header(CLIENT_ADDR_HEADER, "6.6.6.6")
            .body(Vec::new())
            .unwrap();
        set_client_addr(&mut req, Some("[::1]:4711"));
        assert_eq!(client_addr(&req), "::1");
        set_client_addr(&mut req, Some("203.0.113.9"));
        assert_eq!(client_addr(&req), "203.0.113.9");
        set_client_addr(&mut req, Some("garbage"));
        assert_eq!(client_addr(&req), "unknown");
    }

    #[test]
    fn back_off_doubles_after_the_free_attempts_and_is_capped() {
        assert_eq!(delay(4, 5), 0);
        assert_eq!(delay(5, 5), 1);
        assert_eq!(delay(8, 5), 8);
        assert_eq!(delay(40, 5), MAX_DELAY);
        assert_eq!(delay(u32::MAX, 5), MAX_DELAY);
    }
}
