//! Redirect URIs: registration (`validate_uris`, RFC 6749 §3.1.2, RFC 8252 §7), the exact
//! match at the authorization endpoint (RFC 6749 §3.1.2.3), audiences and issuers.
//! Input: one URI per line.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<String> = s.split('\n').map(str::to_owned).collect();
    if let Ok(valid) = edgeid::client::validate_uris("redirect_uris", lines.clone()) {
        // Validation is idempotent: what it accepted it accepts again, unchanged.
        assert_eq!(
            edgeid::client::validate_uris("redirect_uris", valid.clone()).ok(),
            Some(valid)
        );
    }
    let client = common::client();
    for line in &lines {
        let _ = edgeid::client::validate_audience(line);
        let _ = edgeid::config::Issuer::parse(line);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("redirect_uri", line)
            .append_pair("scope", "openid")
            .finish();
        if let Ok(form) = edgeid::web::Form::parse_bytes(body.as_bytes()) {
            if let Ok(uri) = edgeid::authorize::request::verify_redirect(&form, &client) {
                assert!(
                    client.redirect_uris.contains(&uri),
                    "only registered URIs pass"
                );
            }
        }
    }
});
