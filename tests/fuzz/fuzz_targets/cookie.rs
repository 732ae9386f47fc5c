//! `Cookie` header fields (RFC 6265 §5.4) and the request-size checks every host applies.
//! Input: the cookie name on the first line, then one `Cookie` field value per line.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (name, rest) = common::split_first_line(s);
    let _ = edgeid::web::cookie_in(rest.split('\n'), name);
    let mut builder = http::Request::builder().uri("/login");
    for line in rest.split('\n') {
        if let Ok(v) = http::HeaderValue::from_str(line) {
            builder = builder.header(http::header::COOKIE, v);
        }
    }
    if let Ok(req) = builder.body(Vec::new()) {
        let _ = edgeid::web::cookie(&req, name);
        let _ = edgeid::web::refuse_oversized(&req);
    }
});
