//! Client credentials at the token endpoint (RFC 6749 §2.3.1): the `Authorization` header
//! (first line of the input) and the form body (the rest).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (header, body) = common::split_first_line(s);
    let Ok(mut form) = edgeid::web::Form::parse_bytes(body.as_bytes()) else {
        return;
    };
    let _ = edgeid::client::presented(Some(header), &mut form);
    let _ = edgeid::client::presented(None, &mut form);
});
