//! JWTs presented to edgeid (`id_token_hint`, bearer access tokens): compact JWS parsing and
//! verification against the published keys (RFC 7515 §5.2).
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use edgeid::jose::Jwk;
use libfuzzer_sys::fuzz_target;

static KEYS: OnceLock<Vec<Jwk>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let keys = KEYS.get_or_init(common::keys);
    // A forged signature that verified would be a finding in itself.
    if let Ok(v) = edgeid::jose::verify(token, keys) {
        panic!("a fuzzed token verified: {v:?}");
    }
    let _ = edgeid::crypto::b64url_decode(token);
});
