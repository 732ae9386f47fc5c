//! Sealed values (the pending authorization request, TOTP enrolment, second-factor steps,
//! stored private keys): base64url decoding and AEAD opening with the key-encryption key.
//! Input: the context on the first line, the sealed value on the rest.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use edgeid::crypto::Kek;
use libfuzzer_sys::fuzz_target;

static KEK: OnceLock<Kek> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let kek = KEK.get_or_init(|| {
        Kek::parse(&edgeid::crypto::b64url(&[7u8; 32])).expect("32 bytes make a key")
    });
    let (context, sealed) = common::split_first_line(s);
    if kek.open(context, sealed).is_ok() {
        panic!("a fuzzed value opened");
    }
    // Round trip: what we seal opens, under its own context only.
    let rng = common::CountingRng(std::cell::Cell::new(data.len() as u8));
    if let Ok(out) = kek.seal(&rng, context, sealed.as_bytes()) {
        assert_eq!(
            kek.open(context, &out).ok().as_deref(),
            Some(sealed.as_bytes())
        );
        assert!(kek.open(&format!("{context}x"), &out).is_err());
    }
});
