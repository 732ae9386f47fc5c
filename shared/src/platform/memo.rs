//! A per-instance memo of KV reads, for hosts whose instances serve many requests (a Workers
//! isolate; a reused WASIp3 Spin instance). Issue 12, item 3/4: "per-instance caches (parsed
//! keys, client records for a few seconds) are allowed, bounded in memory, and never hold
//! state that must be strongly consistent".
//!
//! Only the KV caches whose staleness the core already allows for are memoized: the current
//! signing key (`signing-key:current:`; a retired key stays published long enough, see
//! `keys.rs`) and the JWKS (`jwks:`; `next` keys are published a rotation ahead). The memo
//! adds at most [`TTL`] seconds for the instance that holds it. Client records are not
//! memoized: a deleted client or a changed secret must stop working as soon as the admin
//! function has invalidated the KV entry. Lock markers, counters and anything single-use are
//! never memoized either: a memoized "not locked" would let guesses through a lockout. A write
//! or delete through the same instance forgets the entry at once.

use std::cell::RefCell;

use crate::ports::UnixTime;

/// Seconds a memoized read is served without asking KV again.
pub const TTL: i64 = 5;
/// Entries kept per instance; the oldest is dropped beyond this.
const MAX_ENTRIES: usize = 64;
/// Values larger than this are not memoized.
const MAX_VALUE_BYTES: usize = 16 * 1024;
/// The KV key prefixes that may be memoized: the core names its stale-tolerant caches.
const PREFIXES: [&str; 2] = crate::keys::STALE_TOLERANT_CACHES;

struct Entry {
    key: String,
    stored_at: UnixTime,
    value: Option<Vec<u8>>,
}

thread_local! {
    // wasm instances are single-threaded: one memo per instance.
    static MEMO: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Whether reads of `key` may be memoized.
pub fn memoizable(key: &str) -> bool {
    PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The memoized value of `key` (`Some(None)`: memoized as absent), if fresh at `now`.
pub fn get(key: &str, now: UnixTime) -> Option<Option<Vec<u8>>> {
    MEMO.with_borrow(|m| {
        m.iter()
            .find(|e| e.key == key)
            .filter(|e| now >= e.stored_at && now - e.stored_at < TTL)
            .map(|e| e.value.clone())
    })
}

/// Remembers what KV answered for `key` at `now`.
pub fn put(key: &str, now: UnixTime, value: Option<&[u8]>) {
    if !memoizable(key) || value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
        return;
    }
    MEMO.with_borrow_mut(|m| {
        m.retain(|e| e.key != key && now >= e.stored_at && now - e.stored_at < TTL);
        if m.len() >= MAX_ENTRIES {
            m.remove(0);
        }
        m.push(Entry {
            key: key.to_owned(),
            stored_at: now,
            value: value.map(<[u8]>::to_vec),
        });
    });
}

/// Forgets `key` (after this instance wrote or deleted it).
pub fn forget(key: &str) {
    MEMO.with_borrow_mut(|m| m.retain(|e| e.key != key));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue12_memo_serves_only_stale_tolerant_keys_for_a_few_seconds() {
        put("signing-key:current:a", 100, Some(b"x"));
        assert_eq!(get("signing-key:current:a", 104), Some(Some(b"x".to_vec())));
        assert_eq!(get("signing-key:current:a", 105), None, "expired after TTL");
        assert_eq!(
            get("signing-key:current:a", 99),
            None,
            "a clock going back is not trusted"
        );

        put("throttle:client:a", 100, Some(b"locked"));
        assert_eq!(
            get("throttle:client:a", 100),
            None,
            "lock markers are never memoized"
        );

        put("jwks:v1", 100, None);
        assert_eq!(get("jwks:v1", 101), Some(None), "absence is memoized too");
        forget("jwks:v1");
        assert_eq!(get("jwks:v1", 101), None);

        put(
            "signing-key:current:big",
            100,
            Some(&vec![0u8; MAX_VALUE_BYTES + 1]),
        );
        assert_eq!(get("signing-key:current:big", 100), None);
    }

    #[test]
    fn issue12_memo_is_bounded() {
        for i in 0..(MAX_ENTRIES + 10) {
            put(&format!("signing-key:current:{i}"), 200, Some(b"v"));
        }
        assert!(MEMO.with_borrow(Vec::len) <= MAX_ENTRIES);
        assert_eq!(
            get("signing-key:current:0", 200),
            None,
            "the oldest entries went first"
        );
        assert!(get(&format!("signing-key:current:{}", MAX_ENTRIES + 9), 200).is_some());
    }
}
