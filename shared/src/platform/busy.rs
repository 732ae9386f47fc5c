//! Storage contention (issue 9, item 10): SQLite refuses a write at once with `SQLITE_BUSY`
//! ("database is locked") when another connection holds the write lock and no busy timeout is
//! set — which is how Spin's SQLite connections behave. The Spin and Cloudflare adapters retry
//! such a refusal, but only where nothing can have been committed; this module holds what they
//! share: recognising the refusal in an SDK's error text and the bounded back-off.
//!
//! The native host needs neither: rusqlite's `busy_timeout` makes SQLite itself wait
//! (`platform/native.rs`).

use std::time::Duration;

/// The first wait; each later one doubles, up to [`MAX_STEP`].
const FIRST_STEP: Duration = Duration::from_millis(2);
const MAX_STEP: Duration = Duration::from_millis(100);
/// The total wait before the refusal is reported: rusqlite's default busy timeout.
pub const BUDGET: Duration = Duration::from_secs(5);

/// `SQLITE_BUSY` as SQLite (`sqlite3_errstr(5)`: "database is locked"), rusqlite, libSQL and D1
/// print it. `SQLITE_LOCKED` ("database table is locked") is a conflict inside one connection
/// that waiting does not resolve, and is not matched.
pub fn is_busy(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked") || m.contains("sqlite_busy")
}

/// Exponential back-off with jitter inside [`BUDGET`].
#[derive(Debug, Clone)]
pub struct Backoff {
    step: Duration,
    spent: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            step: FIRST_STEP,
            spent: Duration::ZERO,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt, or `None` once the budget is spent. `jitter` (any
    /// random number) picks the wait within [step/2, step], so writers refused together do not
    /// come back together.
    pub fn next_wait(&mut self, jitter: u32) -> Option<Duration> {
        let left = BUDGET.checked_sub(self.spent).filter(|d| !d.is_zero())?;
        let half = self.step / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        let wait = (half + Duration::from_micros(u64::from(jitter) % spread)).min(left);
        self.spent += wait;
        self.step = (self.step * 2).min(MAX_STEP);
        Some(wait)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn busy_is_recognised_in_every_sdk_spelling_and_locked_is_not() {
        assert!(is_busy("database is locked"));
        assert!(is_busy("Io(\"database is locked\")"));
        assert!(is_busy("D1_ERROR: SQLITE_BUSY"));
        assert!(!is_busy("database table is locked"));
        assert!(!is_busy("UNIQUE constraint failed: signing_keys.alg"));
    }

    #[test]
    fn the_back_off_grows_is_jittered_and_stops_at_the_budget() {
        let mut b = Backoff::default();
        let first = b.next_wait(0).unwrap();
        assert_eq!(first, Duration::from_millis(1));
        let second = b.next_wait(u32::MAX).unwrap();
        assert!(second >= Duration::from_millis(2) && second <= Duration::from_millis(4));
        let mut total = first + second;
        let mut waits = 2;
        while let Some(w) = b.next_wait(12_345) {
            assert!(w <= MAX_STEP);
            total += w;
            waits += 1;
        }
        assert_eq!(total, BUDGET, "the waits add up to the budget exactly");
        assert!((50..200).contains(&waits), "{waits} attempts in the budget");
    }
}
