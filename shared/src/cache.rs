//! Expiring entries in the KV store. Spin KV has no TTL and Workers KV's is coarse, so the
//! expiry travels inside the value: `"<unix expiry>\n<payload>"`. A cache failure never fails
//! a request; the caller falls back to SQL.

use crate::error::{ErrorCode, log_error};
use crate::ports::{Kv, UnixTime};

pub async fn get(kv: &impl Kv, key: &str, now: UnixTime) -> Option<Vec<u8>> {
    let raw = match kv.get(key).await {
        Ok(v) => v?,
        Err(e) => {
            log_error(ErrorCode::ServerError, &format!("kv get {key}: {e}"));
            return None;
        }
    };
    let split = raw.iter().position(|b| *b == b'\n')?;
    let expiry: UnixTime = std::str::from_utf8(&raw[..split]).ok()?.parse().ok()?;
    (now < expiry).then(|| raw[split + 1..].to_vec())
}

pub async fn put(kv: &impl Kv, key: &str, now: UnixTime, ttl: i64, payload: &[u8]) {
    let mut value = format!("{}\n", now + ttl).into_bytes();
    value.extend_from_slice(payload);
    if let Err(e) = kv.put(key, &value).await {
        log_error(ErrorCode::ServerError, &format!("kv put {key}: {e}"));
    }
}

pub async fn invalidate(kv: &impl Kv, key: &str) {
    if let Err(e) = kv.delete(key).await {
        log_error(ErrorCode::ServerError, &format!("kv delete {key}: {e}"));
    }
}
