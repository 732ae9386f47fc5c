//! Forms and query strings (`web::Form`) and what is parsed from them: the authorization
//! request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) and the token request (RFC 6749 §4.1.3,
//! §4.4.2, §6).
#![no_main]

#[path = "common.rs"]
mod common;

use edgeid::authorize::request;
use edgeid::web::Form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Form::from_query(std::str::from_utf8(data).ok());
    let Ok(mut form) = Form::parse_bytes(data) else {
        return;
    };
    let client = common::client();
    if let Ok(uri) = request::verify_redirect(&form, &client) {
        let reply = request::reply_to(&form, &client, uri);
        let _ = request::validate(&form, &client, reply);
    }
    let _ =
        edgeid::token::decide_client_credentials(&client, form.get("scope"), form.get("audience"));
    let _ = edgeid::token::TokenRequest::parse(&mut form);
});
