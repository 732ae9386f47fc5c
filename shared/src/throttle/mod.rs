//! Throttling of everything that checks a secret an attacker can guess: passwords at the sign-in
//! and settings forms, second-factor codes (TOTP and recovery codes), the forgot-password form,
//! and client authentication at the token, revocation and introspection endpoints (issue 9).
//!
//! **The count is authoritative in SQL and reserved before the secret is checked** (DESIGN.md:
//! "counters that protect secrets are atomic"). Each attempt is one conditional statement,
//!
//! ```sql
//! INSERT INTO throttle (...) VALUES (...)
//! ON CONFLICT (key) DO UPDATE SET attempts = ..., last = now, locked_until = ...
//! WHERE <this attempt is allowed> RETURNING attempts, locked_until
//! ```
//!
//! which SQLite (≥ 3.35: UPSERT with a `WHERE` on the update and `RETURNING`; native, Spin
//! SQLite/libSQL, D1) runs under its single writer lock: of N concurrent attempts exactly as
//! many get a row back as the rule allows, and only those go on to the argon2 work or the code
//! comparison. No row back means throttled. A verified secret then clears (or refunds) its
//! reservation; a wrong one leaves it counted. KV holds nothing here but the client-lock
//! marker in front of the token endpoint ([`client_locked`]), which may be stale.
//!
//! Keys are `<kind>:<SHA-256 of the subject>`. The password counter's subject is what the form
//! named (the lower-cased identifier), never whether that account exists, so unknown accounts
//! go the same path and a throttled answer reveals nothing about which accounts do.
//!
//! The rule ([`Policy`]): `free` attempts, then a wait that starts at `base_delay` and doubles
//! per attempt up to `max_delay`; the `lock_after`-th attempt locks the key for `lock_seconds`
//! and the count restarts with the lock. Attempts during a lock are refused without being
//! counted, so they neither reach the secret nor extend the lock: one wrong password an hour
//! cannot keep an account locked. A count whose last attempt is `forget_after` old restarts.

pub mod address;

use crate::crypto::sha256_hex;
use crate::ports::{PortError, Ports, Row, Sql, Statement, UnixTime};
use crate::user::User;
use crate::{audit, cache};

pub use address::{
    CLIENT_ADDR_HEADER, Cidr, TrustedProxies, client_addr, client_ip, record_client_addr,
    set_client_addr,
};

/// Password attempts per account name before the back-off starts.
pub const PASSWORD_FREE: i64 = 5;
/// The password back-off doubles from 1 s per attempt past the free ones, up to this.
pub const PASSWORD_MAX_DELAY: i64 = 15 * 60;
/// The 20th password attempt on one name in a row locks it for [`LOCK_SECONDS`].
pub const PASSWORD_LOCK_AFTER: i64 = 20;
/// How long a lock (password or second factor) lasts.
pub const LOCK_SECONDS: i64 = 60 * 60;
/// Password attempts per client address before its back-off starts (no lock: many people can
/// share an address). IPv6 addresses count per /64 ([`address::counted`]).
pub const ADDRESS_FREE: i64 = 30;
/// A password or address count whose last attempt is this old starts again.
pub const FORGET_AFTER: i64 = 24 * 60 * 60;
/// The most password guesses one account name can get evaluated in any 24 hours, from any
/// number of addresses: 20 per cycle of back-off (1 + 2 + ... + 512 s, then 900 s five times:
/// 5,523 s) plus the 1 h lock, 9,123 s per cycle: 9 whole cycles and 18 of the tenth.
/// Computed by simulating the rule in the unit tests.
pub const PASSWORD_GUESSES_PER_DAY: i64 = 198;

/// Wrong second-factor codes per user before the back-off starts.
pub const SECOND_FACTOR_FREE: i64 = 3;
/// The second-factor back-off: 1 s after the free codes, then 2 s.
pub const SECOND_FACTOR_BASE_DELAY: i64 = 1;
/// The 5th code in a row locks the second factor for [`LOCK_SECONDS`] (a correct password does
/// not lift it; only a correct code, a recovery code or a completed recovery does).
pub const SECOND_FACTOR_LOCK_AFTER: i64 = 5;
/// The most second-factor codes one user can get evaluated in any 24 hours, from any number
/// of addresses and with the right password at hand: 5 per hour (+3 s), so 24 cycles, 120
/// codes. A guess matches one of the 3 accepted TOTP steps (RFC 6238 §5.2, one step of drift)
/// with probability 3/10^6, so a day of guessing succeeds with probability ≤ 3.6·10^-4.
pub const SECOND_FACTOR_GUESSES_PER_DAY: i64 = 120;

/// Forgot-password posts per name asked for, and per client address, per hour (a lock after
/// that many): the form mails a link, so it must not bomb a mailbox.
pub const RECOVERY_PER_NAME: i64 = 3;
pub const RECOVERY_PER_ADDRESS: i64 = 10;
pub const RECOVERY_WINDOW: i64 = 60 * 60;

/// Failed client authentications per client id before the client is locked out of the token,
/// revocation and introspection endpoints for [`CLIENT_LOCK_SECONDS`].
pub const CLIENT_LOCK_AFTER: i64 = 20;
/// Short: a client id is no secret, so whoever knows one can keep the client locked by
/// failing on purpose; machine-generated secrets (256 bits) make guessing hopeless anyway,
/// the lock matters for weak imported secrets.
pub const CLIENT_LOCK_SECONDS: i64 = 5 * 60;
/// 20 failures per 5 min: the most secrets checked for one client id in any 24 hours (where
/// the KV marker is seen at once; see [`client_locked`]).
pub const CLIENT_GUESSES_PER_DAY: i64 = 5_760;

/// What is counted, each with its own rule and key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Password attempts per account name (sign-in form, settings password checks).
    Password,
    /// Password attempts per client address.
    PasswordAddress,
    /// Second-factor codes (TOTP and recovery codes) per user id.
    SecondFactor,
    /// Forgot-password posts per name.
    RecoveryName,
    /// Forgot-password posts per client address.
    RecoveryAddress,
    /// Failed client authentications per client id.
    Client,
}

/// One kind's rule (module docs). All durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub free: i64,
    pub base_delay: i64,
    pub max_delay: i64,
    /// 0: never locks.
    pub lock_after: i64,
    pub lock_seconds: i64,
    pub forget_after: i64,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::PasswordAddress => "password-address",
            Kind::SecondFactor => "second-factor",
            Kind::RecoveryName => "recovery-name",
            Kind::RecoveryAddress => "recovery-address",
            Kind::Client => "client",
        }
    }

    pub fn policy(self) -> Policy {
        let window = |n: i64, seconds: i64| Policy {
            free: n,
            base_delay: 0,
            max_delay: 0,
            lock_after: n,
            lock_seconds: seconds,
            forget_after: seconds,
        };
        match self {
            Kind::Password => Policy {
                free: PASSWORD_FREE,
                base_delay: 1,
                max_delay: PASSWORD_MAX_DELAY,
                lock_after: PASSWORD_LOCK_AFTER,
                lock_seconds: LOCK_SECONDS,
                forget_after: FORGET_AFTER,
            },
            Kind::PasswordAddress => Policy {
                free: ADDRESS_FREE,
                base_delay: 1,
                max_delay: PASSWORD_MAX_DELAY,
                lock_after: 0,
                lock_seconds: 0,
                forget_after: FORGET_AFTER,
            },
            Kind::SecondFactor => Policy {
                free: SECOND_FACTOR_FREE,
                base_delay: SECOND_FACTOR_BASE_DELAY,
                max_delay: PASSWORD_MAX_DELAY,
                lock_after: SECOND_FACTOR_LOCK_AFTER,
                lock_seconds: LOCK_SECONDS,
                forget_after: FORGET_AFTER,
            },
            Kind::RecoveryName => window(RECOVERY_PER_NAME, RECOVERY_WINDOW),
            Kind::RecoveryAddress => window(RECOVERY_PER_ADDRESS, RECOVERY_WINDOW),
            Kind::Client => Policy {
                forget_after: 60 * 60,
                ..window(CLIENT_LOCK_AFTER, CLIENT_LOCK_SECONDS)
            },
        }
    }

    /// The row key of `subject` (an identifier, a user id, an address, a client id).
    pub fn key(self, subject: &str) -> String {
        format!("{}:{}", self.as_str(), sha256_hex(subject.as_bytes()))
    }
}

/// A key's stored state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    pub attempts: i64,
    pub last: UnixTime,
    pub locked_until: UnixTime,
}

impl Policy {
    /// The count an attempt at `now` continues from: it restarts after a lock and after a
    /// quiet `forget_after`. (Only meaningful when not locked.)
    fn effective(&self, s: &State, now: UnixTime) -> i64 {
        if (self.lock_after > 0 && s.attempts >= self.lock_after)
            || now - s.last >= self.forget_after
        {
            0
        } else {
            s.attempts
        }
    }

    /// The wait before attempt number `attempts + 1` (0 within the free ones).
    pub fn delay(&self, attempts: i64) -> i64 {
        if attempts < self.free {
            return 0;
        }
        let shift = u32::try_from((attempts - self.free).min(30)).unwrap_or(30);
        self.base_delay
            .checked_shl(shift)
            .unwrap_or(i64::MAX)
            .min(self.max_delay)
    }

    /// Seconds until the next attempt is allowed (0: now). The same rule the SQL statement of
    /// [`reserve`] applies; the unit tests hold them to each other.
    pub fn wait(&self, s: &State, now: UnixTime) -> i64 {
        if s.locked_until > now {
            return s.locked_until - now;
        }
        let n = self.effective(s, now);
        (s.last + self.delay(n) - now).max(0)
    }

    /// The state after an allowed attempt at `now`.
    pub fn after_attempt(&self, s: &State, now: UnixTime) -> State {
        let attempts = self.effective(s, now) + 1;
        State {
            attempts,
            last: now,
            locked_until: if self.lock_after > 0 && attempts >= self.lock_after {
                now + self.lock_seconds
            } else {
                0
            },
        }
    }
}

/// May this attempt proceed?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Throttled: retry after this many seconds. Nothing was checked.
    Wait(i64),
}

/// The outcome of one reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Counted; `locks` when this attempt started a lock (it is still evaluated).
    Granted {
        locks: bool,
    },
    Refused {
        wait: i64,
    },
}

/// The reservation: one UPSERT whose update only happens when the rule allows it, `RETURNING`
/// the row only then. `?NNN` parameters (SQLite, D1 and Spin all bind them by position):
/// 1 key, 2 kind, 3 now, 4 free, 5 base_delay, 6 max_delay, 7 lock_after, 8 lock_seconds,
/// 9 forget_after. `E` below is [`Policy::effective`]; every expression in `SET` and `WHERE`
/// reads the row as it was before the update (SQLite's UPDATE semantics).
const RESERVE: &str = "INSERT INTO throttle (key, kind, attempts, since, last, locked_until) \
     VALUES (?1, ?2, 1, ?3, ?3, CASE WHEN ?7 = 1 THEN ?3 + ?8 ELSE 0 END) \
     ON CONFLICT (key) DO UPDATE SET \
       attempts = (CASE WHEN (?7 > 0 AND attempts >= ?7) OR ?3 - last >= ?9 THEN 0 ELSE attempts END) + 1, \
       since = CASE WHEN (?7 > 0 AND attempts >= ?7) OR ?3 - last >= ?9 THEN ?3 ELSE since END, \
       last = ?3, \
       locked_until = CASE WHEN ?7 > 0 AND \
           (CASE WHEN (?7 > 0 AND attempts >= ?7) OR ?3 - last >= ?9 THEN 0 ELSE attempts END) + 1 >= ?7 \
         THEN ?3 + ?8 ELSE 0 END \
     WHERE locked_until <= ?3 AND ( \
       (CASE WHEN (?7 > 0 AND attempts >= ?7) OR ?3 - last >= ?9 THEN 0 ELSE attempts END) < ?4 \
       OR ?3 >= last + min(?6, ?5 << min( \
         (CASE WHEN (?7 > 0 AND attempts >= ?7) OR ?3 - last >= ?9 THEN 0 ELSE attempts END) - ?4, 30))) \
     RETURNING attempts, locked_until";

/// Reserves one attempt of `kind` for `subject` at `now` (module docs).
pub async fn reserve(
    sql: &impl Sql,
    kind: Kind,
    subject: &str,
    now: UnixTime,
) -> Result<Reserved, PortError> {
    let p = kind.policy();
    let key = kind.key(subject);
    let rows = sql
        .query(Statement::new(
            RESERVE,
            vec![
                key.as_str().into(),
                kind.as_str().into(),
                now.into(),
                p.free.into(),
                p.base_delay.into(),
                p.max_delay.into(),
                p.lock_after.into(),
                p.lock_seconds.into(),
                p.forget_after.into(),
            ],
        ))
        .await?;
    if let Some(row) = rows.first() {
        return Ok(Reserved::Granted {
            locks: row.int(1)? > now,
        });
    }
    // Refused: only now is the state read, for the Retry-After (at least 1 s, even when a
    // concurrent reset made the key free meanwhile).
    let wait = match state(sql, &key).await? {
        Some(s) => p.wait(&s, now).max(1),
        None => 1,
    };
    Ok(Reserved::Refused { wait })
}

/// A key's state, if it has one.
pub async fn state(sql: &impl Sql, key: &str) -> Result<Option<State>, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT attempts, last, locked_until FROM throttle WHERE key = ?",
            vec![key.into()],
        ))
        .await?;
    rows.first().map(to_state).transpose()
}

fn to_state(r: &Row) -> Result<State, PortError> {
    Ok(State {
        attempts: r.int(0)?,
        last: r.int(1)?,
        locked_until: r.int(2)?,
    })
}

/// Forgets a key: its secret was proven. Best effort (a failure is logged): a key left
/// counted only throttles more.
async fn clear(sql: &impl Sql, kind: Kind, subject: &str) {
    let stmt = Statement::new(
        "DELETE FROM throttle WHERE key = ?",
        vec![kind.key(subject).into()],
    );
    if let Err(e) = sql.query(stmt).await {
        crate::error::log_error(
            crate::ErrorCode::ServerError,
            &format!("throttle clear {}: {e}", kind.as_str()),
        );
    }
}

/// Gives back one reservation of a key that a success must not clear (an address that may be
/// guessing other accounts as well).
async fn refund(sql: &impl Sql, kind: Kind, subject: &str) {
    let stmt = Statement::new(
        "UPDATE throttle SET attempts = attempts - 1 WHERE key = ? AND attempts > 0 \
         AND locked_until = 0 RETURNING key",
        vec![kind.key(subject).into()],
    );
    if let Err(e) = sql.query(stmt).await {
        crate::error::log_error(
            crate::ErrorCode::ServerError,
            &format!("throttle refund {}: {e}", kind.as_str()),
        );
    }
}

/// The subject of the per-account password counter: what the form named.
fn account(identifier: &str) -> String {
    identifier.trim().to_lowercase()
}

/// Reserves a password attempt for `identifier` from `addr`, before the hash is checked: per
/// account name first (so a burst against one name does not also use up the address's
/// allowance), then per address. Records `login.lockout` when this attempt locks the name.
pub async fn password_attempt<P: Ports>(
    ports: &P,
    identifier: &str,
    addr: &str,
    now: UnixTime,
) -> Result<Verdict, PortError> {
    let name = account(identifier);
    match reserve(ports.sql(), Kind::Password, &name, now).await? {
        Reserved::Refused { wait } => return Ok(Verdict::Wait(wait)),
        Reserved::Granted { locks: true } => {
            audit::record(
                ports.sql(),
                now,
                "login.lockout",
                "",
                serde_json::json!({
                    "account": sha256_hex(name.as_bytes()),
                    "factor": "pwd",
                    "until": now + LOCK_SECONDS,
                }),
            )
            .await;
        }
        Reserved::Granted { locks: false } => {}
    }
    match reserve(
        ports.sql(),
        Kind::PasswordAddress,
        &address::counted(addr),
        now,
    )
    .await?
    {
        Reserved::Refused { wait } => Ok(Verdict::Wait(wait)),
        Reserved::Granted { .. } => Ok(Verdict::Allowed),
    }
}

/// The password was right: the name's count ends (also a lock this very attempt started), the
/// address gets its reservation back. A wrong password needs no call: it stays counted.
pub async fn password_verified<P: Ports>(ports: &P, identifier: &str, addr: &str) {
    clear(ports.sql(), Kind::Password, &account(identifier)).await;
    refund(ports.sql(), Kind::PasswordAddress, &address::counted(addr)).await;
}

/// Reserves a second-factor attempt (a TOTP or recovery code, wherever one is checked) for
/// `user_id`, before the code is compared. Its own counter: a correct password never resets
/// it. Records `login.lockout` when this attempt locks it.
pub async fn second_factor_attempt<P: Ports>(
    ports: &P,
    user_id: &str,
    now: UnixTime,
) -> Result<Verdict, PortError> {
    match reserve(ports.sql(), Kind::SecondFactor, user_id, now).await? {
        Reserved::Refused { wait } => Ok(Verdict::Wait(wait)),
        Reserved::Granted { locks } => {
            if locks {
                audit::record(
                    ports.sql(),
                    now,
                    "login.lockout",
                    user_id,
                    serde_json::json!({ "factor": "otp", "until": now + LOCK_SECONDS }),
                )
                .await;
            }
            Ok(Verdict::Allowed)
        }
    }
}

/// A correct code or recovery code: the user's second-factor count ends.
pub async fn second_factor_verified<P: Ports>(ports: &P, user_id: &str) {
    clear(ports.sql(), Kind::SecondFactor, user_id).await;
}

/// A recovery completed (a password set through a recovery link): the user proved control of
/// the mailbox, so the password counters of their names (username and email) and their
/// second-factor counter end, locks included.
pub async fn recovered<P: Ports>(ports: &P, user: &User) {
    clear(ports.sql(), Kind::Password, &account(&user.username)).await;
    clear(ports.sql(), Kind::Password, &account(&user.email)).await;
    clear(ports.sql(), Kind::SecondFactor, &user.id).await;
}

/// Reserves one forgot-password post for the name asked for and the client address: per
/// address first, then per name (an address over its limit asks nothing of the name's).
pub async fn recovery_link_attempt<P: Ports>(
    ports: &P,
    identifier: &str,
    addr: &str,
    now: UnixTime,
) -> Result<Verdict, PortError> {
    if let Reserved::Refused { wait } = reserve(
        ports.sql(),
        Kind::RecoveryAddress,
        &address::counted(addr),
        now,
    )
    .await?
    {
        return Ok(Verdict::Wait(wait));
    }
    match reserve(ports.sql(), Kind::RecoveryName, &account(identifier), now).await? {
        Reserved::Refused { wait } => Ok(Verdict::Wait(wait)),
        Reserved::Granted { .. } => Ok(Verdict::Allowed),
    }
}

/// The KV marker of a locked client.
fn client_marker(client_id: &str) -> String {
    format!("throttle:v2:{}", Kind::Client.key(client_id))
}

/// Is `client_id` locked out of client authentication? Seconds left if so.
///
/// Checked before the secret, from KV only: a successful authentication (the token
/// endpoint's hot path) costs one KV read and no SQL. The authoritative count is in SQL
/// ([`client_failed`], on failures only), which sets this marker when it crosses
/// [`CLIENT_LOCK_AFTER`]. The trade-off: on Workers KV a marker takes up to a minute to reach
/// other locations, so attempts there keep being evaluated meanwhile (each failure still
/// counts in SQL, and re-sets the marker); on Spin and native KV it is immediate. That bounds
/// how many secrets are checked per client and minute, not exactly per lock, which is enough
/// for secrets that are 256 bits when edgeid generates them.
pub async fn client_locked(
    kv: &impl crate::ports::Kv,
    client_id: &str,
    now: UnixTime,
) -> Option<i64> {
    let raw = cache::get(kv, &client_marker(client_id), now).await?;
    let until: UnixTime = std::str::from_utf8(&raw).ok()?.parse().ok()?;
    (until > now).then_some(until - now)
}

/// Counts a failed authentication of an existing client (unknown client ids have no secret to
/// guess and are not counted, so random ids cost no storage). Returns the lock's remaining
/// seconds when the client is now locked, after setting the KV marker.
pub async fn client_failed<P: Ports>(
    ports: &P,
    client_id: &str,
    now: UnixTime,
) -> Result<Option<i64>, PortError> {
    let until = match reserve(ports.sql(), Kind::Client, client_id, now).await? {
        Reserved::Granted { locks: false } => return Ok(None),
        Reserved::Granted { locks: true } => {
            audit::record(
                ports.sql(),
                now,
                "client.lockout",
                "",
                serde_json::json!({ "client_id": client_id, "until": now + CLIENT_LOCK_SECONDS }),
            )
            .await;
            now + CLIENT_LOCK_SECONDS
        }
        // Already locked in SQL while the marker was missing (lost, or not yet visible here).
        Reserved::Refused { wait } => now + wait,
    };
    cache::put(
        ports.kv(),
        &client_marker(client_id),
        now,
        until - now,
        until.to_string().as_bytes(),
    )
    .await;
    Ok(Some(until - now))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most attempts a patient attacker gets evaluated in any `seconds` long window,
    /// attempting at every moment the rule allows (earlier is never worse: waits depend only
    /// on the past), over three windows' worth of attacking.
    fn most_attempts(p: &Policy, seconds: i64) -> i64 {
        let (mut s, mut t, mut times) = (State::default(), 0, Vec::new());
        // A fresh key: the first attempt may come at t = 0.
        s.last = -p.forget_after;
        loop {
            t += p.wait(&s, t);
            if t >= 3 * seconds {
                break;
            }
            s = p.after_attempt(&s, t);
            times.push(t);
        }
        let (mut best, mut from) = (0, 0);
        for (to, at) in times.iter().enumerate() {
            while times[from] <= at - seconds {
                from += 1;
            }
            best = best.max(to - from + 1);
        }
        i64::try_from(best).unwrap_or(i64::MAX)
    }

    #[test]
    fn issue9_stated_daily_bounds_follow_from_the_rules() {
        let day = |k: Kind| most_attempts(&k.policy(), 86_400);
        println!(
            "per day: password {}, second factor {}, address {}, client {}",
            day(Kind::Password),
            day(Kind::SecondFactor),
            day(Kind::PasswordAddress),
            day(Kind::Client)
        );
        assert_eq!(day(Kind::SecondFactor), SECOND_FACTOR_GUESSES_PER_DAY);
        assert_eq!(day(Kind::Password), PASSWORD_GUESSES_PER_DAY);
        assert_eq!(day(Kind::Client), CLIENT_GUESSES_PER_DAY);
        // Per hour, from any number of addresses: the lock after 5.
        assert_eq!(
            most_attempts(&Kind::SecondFactor.policy(), 3600),
            SECOND_FACTOR_LOCK_AFTER
        );
    }

    #[test]
    fn back_off_doubles_after_the_free_attempts_and_is_capped() {
        let p = Kind::Password.policy();
        assert_eq!(p.delay(4), 0);
        assert_eq!(p.delay(5), 1);
        assert_eq!(p.delay(8), 8);
        assert_eq!(p.delay(40), PASSWORD_MAX_DELAY);
        assert_eq!(p.delay(i64::MAX), PASSWORD_MAX_DELAY);
        let w = Kind::RecoveryName.policy();
        assert_eq!(w.delay(100), 0);
    }

    #[test]
    fn a_lock_restarts_the_count_and_is_not_extended() {
        let p = Kind::SecondFactor.policy();
        let mut s = State::default();
        for t in [0, 0, 0, 1, 3] {
            assert_eq!(p.wait(&s, t), 0);
            s = p.after_attempt(&s, t);
        }
        assert_eq!(s.locked_until, 3 + LOCK_SECONDS);
        assert_eq!(p.wait(&s, 100), 3 + LOCK_SECONDS - 100);
        let after = p.after_attempt(&s, 3 + LOCK_SECONDS);
        assert_eq!(after.attempts, 1, "the count restarted with the lock");
        assert_eq!(after.locked_until, 0);
    }
}
