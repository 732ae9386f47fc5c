//! Stored password hashes of imported users (issue 10): `edgeid::user::legacy::parse` on any
//! text never panics and never does unbounded work; a parsed hash of a cheap format is also
//! verified (the costly ones are bounded by the parser, and a fuzz input must finish in 10 s).
//! Input: the stored hash on the first line, the password after it.
#![no_main]

#[path = "common.rs"]
mod common;

use edgeid::user::legacy::{self, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (stored, password) = common::split_first_line(s);
    let Ok(hash) = legacy::parse(stored) else {
        return;
    };
    if matches!(
        hash.scheme(),
        Scheme::Ssha | Scheme::Sha | Scheme::Md5 | Scheme::Hmac | Scheme::Md5Crypt
    ) {
        let _ = hash.verify(password.as_bytes());
    }
});
