//! TOTP for the black-box tests: RFC 4226/6238 codes computed here (not by the provider), and
//! enrolment through the settings pages, so every test file drives the second factor the same
//! way.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac as _};

use crate::Resp;
use crate::oidc::{Browser, User, form_with_action, html_unescape};

/// RFC 4226 §5.3 HOTP with HMAC-SHA-1, 6 digits.
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(&counter.to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = usize::from(d[19] & 0x0f);
    let bin = u32::from_be_bytes([d[o] & 0x7f, d[o + 1], d[o + 2], d[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// RFC 6238 time step (30 s) now.
pub fn step_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 30)
}

/// The code of the current step.
pub fn code_now(secret: &[u8]) -> String {
    hotp(secret, step_now())
}

/// The code of the next step: accepted (one step of drift), and later than a code of the
/// current step that enrolment or a sign-in just used (codes are single use per step).
pub fn next_code(secret: &[u8]) -> String {
    hotp(secret, step_now() + 1)
}

/// A code that none of the steps around now produce.
pub fn wrong_code(secret: &[u8]) -> String {
    let t = step_now();
    let taken: Vec<String> = (t - 2..=t + 2).map(|s| hotp(secret, s)).collect();
    (100_000u32..)
        .map(|n| n.to_string())
        .find(|c| !taken.contains(c))
        .unwrap_or_default()
}

/// RFC 4648 base32 without padding, as the enrolment page shows the key.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        let Some(v) = ALPHABET.find(c) else { continue };
        buffer = (buffer << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// Submits the first form with `action` on `page`: its hidden fields, with `pairs` added or
/// replacing them.
pub fn submit(browser: &Browser, page: &Resp, action: &str, pairs: &[(&str, &str)]) -> Resp {
    submit_with_headers(browser, page, action, pairs, &[])
}

/// [`submit`] with extra request headers (a forged `X-Forwarded-For`, say).
pub fn submit_with_headers(
    browser: &Browser,
    page: &Resp,
    action: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Resp {
    let form = form_with_action(&page.text(), action)
        .unwrap_or_else(|| panic!("a form to {action}: {}", page.text()));
    let hidden = form.hidden();
    let mut all: Vec<(&str, &str)> = hidden
        .iter()
        .filter(|(k, _)| !pairs.iter().any(|(n, _)| n == k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.extend_from_slice(pairs);
    let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    browser.send("POST", action, &h, Some(crate::oidc::form(&all).as_bytes()))
}

/// Signs `browser` in at the settings page's own form.
pub fn settings_login(browser: &Browser, user: &User) {
    let page = browser.get("/settings");
    assert_eq!(page.status, 200, "{}", page.text());
    let resp = submit(
        browser,
        &page,
        "/settings/login",
        &[("identifier", &user.username), ("password", &user.password)],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
}

/// Enrols TOTP for `user` from `browser` (signed in at the settings page first when needed);
/// returns the secret.
pub fn enrol(browser: &Browser, user: &User) -> Vec<u8> {
    if browser.cookie("edgeid_session").is_none() {
        settings_login(browser, user);
    }
    let page = browser.get("/settings/totp");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let marker = "<code class=\"secret\">";
    let start = html.find(marker).map_or(0, |i| i + marker.len());
    let end = html[start..].find("</code>").map_or(start, |i| i + start);
    let secret = base32_decode(&html_unescape(&html[start..end]));
    assert_eq!(secret.len(), 20, "a 160-bit key on the page");
    let resp = submit(
        browser,
        &page,
        "/settings/totp",
        &[("code", &code_now(&secret))],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    secret
}
