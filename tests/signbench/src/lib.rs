//! Signer candidates for `cargo xtask bench sign`. Each `src/bin/*.rs` is one candidate: a
//! WASI command whose `main` loads the bench key from its stored form and signs [`INPUT`]
//! once, so a fresh instance per run costs what a Spin request (WASIp2: a fresh instance per
//! request) pays for one signature. The keys in `keys/` are bench fixtures, never used to sign
//! anything real.

/// A JWS signing input (RFC 7515 §5.1: `BASE64URL(header) . BASE64URL(payload)`) of 123 bytes,
/// about what an access token's header and claims come to.
pub const INPUT: &[u8] = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUiLCJzdWIiOiJiZW5jaCIsImV4cCI6MX0";

/// P-256 key as edgeid stored it up to issue 12: the raw 32-byte scalar.
pub const ES256_SCALAR: &[u8] = include_bytes!("../keys/es256.scalar");
/// The same key as PKCS#8 v1 (RFC 5958) whose ECPrivateKey carries the public key
/// (RFC 5915 §3), the form ring loads.
pub const ES256_PKCS8: &[u8] = include_bytes!("../keys/es256.pk8");
/// RSA-2048 key as PKCS#8 DER, the form edgeid stores.
pub const RS256_PKCS8: &[u8] = include_bytes!("../keys/rs256.pk8");

/// Ends the run with a failure unless `sig` has the JWS signature length, so a candidate
/// that fails never reports a time (and the signature is used, not optimized away).
pub fn check(sig: &[u8], len: usize) {
    if std::hint::black_box(sig).len() != len {
        std::process::exit(2);
    }
}
