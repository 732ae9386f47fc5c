//! Throttling attacked over HTTP (issue 9), on every host: a 64-way burst of wrong passwords
//! for one account gets only the free attempts (and any back-off slot that came due) evaluated;
//! TOTP guessing with the right password at hand, from "changing addresses", is cut off after
//! the per-hour bound and the right code is refused while locked; forged forwarding headers do
//! not change the address a failure is counted under; failed client authentication locks the
//! client id at the token, revocation and introspection endpoints.
//!
//! The numbers are the provider's (`edgeid::throttle`): 5 free password attempts per account
//! name, then a back-off of 1, 2, 4, ... s; 3 free second-factor codes per user, then 1 s and
//! 2 s, and the 5th locks it for an hour; 20 failed client authentications lock a client for
//! 5 minutes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Barrier;
use std::time::{Duration, Instant};

use edgeid_suite::oidc::{Browser, OidcClient, create_oidc_client, create_user, form_with_action};
use edgeid_suite::second_factor::{
    enrol, hotp, step_now, submit_with_headers as submit, wrong_code,
};
use edgeid_suite::serde_json::{Value, json};
use edgeid_suite::{Resp, admin, basic, create_client, request};

const PASSWORD_FREE: usize = 5;
const SECOND_FACTOR_LOCK_AFTER: usize = 5;
const CLIENT_LOCK_AFTER: usize = 20;

/// A fresh authorization request in `browser`, answered with its login page.
fn login_page(browser: &Browser, client: &OidcClient) -> Resp {
    let resp = browser.authorize(&client.auth_request());
    assert_eq!(resp.status, 303, "{}", resp.text());
    let page = browser.get(resp.header("location").unwrap());
    assert_eq!(page.status, 200, "{}", page.text());
    page
}

/// The events `GET /admin/audit?{query}` answers, newest first.
fn audit(query: &str) -> Vec<Value> {
    let resp = admin("GET", &format!("/audit?{query}"), None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["events"].as_array().unwrap().clone()
}

/// Of the statuses, how many were evaluated (401) and throttled (429); nothing else allowed.
fn tally(statuses: &[u16]) -> (usize, usize) {
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        evaluated + throttled,
        statuses.len(),
        "only 401 and 429: {statuses:?}"
    );
    (evaluated, throttled)
}

#[test]
fn issue9_a_burst_of_64_wrong_passwords_gets_only_the_allowed_attempts_evaluated() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    // 64 browsers, each with its own pending request, post at the same moment.
    let browsers: Vec<(Browser, Resp)> = (0..64)
        .map(|_| {
            let b = Browser::new();
            let page = login_page(&b, &client);
            (b, page)
        })
        .collect();
    let barrier = Barrier::new(browsers.len());
    let started = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = browsers
            .iter()
            .map(|(b, page)| {
                let barrier = &barrier;
                let username = user.username.as_str();
                s.spawn(move || {
                    barrier.wait();
                    submit(
                        b,
                        page,
                        "/login",
                        &[("identifier", username), ("password", "not-the-password")],
                        &[],
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let (evaluated, throttled) = tally(&statuses);
    // The free attempts, plus a back-off slot for each of 1, 2, 4, ... s that passed (whole
    // seconds, as the provider counts them: one more for the second boundary).
    let seconds = elapsed.as_secs() + 1;
    let mut slots = 0;
    while (1u64 << (slots + 1)) - 1 <= seconds {
        slots += 1;
    }
    let bound = PASSWORD_FREE + slots;
    println!(
        "issue 9 burst: 64 parallel wrong passwords for one account: {evaluated} evaluated (401), \
         {throttled} throttled (429) in {:.2} s; bound {bound}",
        elapsed.as_secs_f64()
    );
    assert!(evaluated >= 1, "at least the first attempt is evaluated");
    assert!(
        evaluated <= bound,
        "{evaluated} evaluated, more than {bound}"
    );
}

#[test]
fn issue9_totp_guessing_with_the_right_password_is_cut_off_and_the_right_code_refused() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let secret = enrol(&Browser::new(), &user);
    // The issue's attack: the right password each time (which used to reset the counter), a
    // wrong code, and a different "client address" each time.
    let attempt = |i: usize, code: &str| -> Resp {
        let xff = format!("198.51.100.{}", i % 250);
        let b = Browser::new();
        let page = login_page(&b, &client);
        let headers = [("x-forwarded-for", xff.as_str())];
        let resp = submit(
            &b,
            &page,
            "/login",
            &[("identifier", &user.username), ("password", &user.password)],
            &headers,
        );
        assert_eq!(
            resp.status,
            200,
            "the right password passes: {}",
            resp.text()
        );
        assert!(form_with_action(&resp.text(), "/login/totp").is_some());
        submit(&b, &resp, "/login/totp", &[("code", code)], &headers)
    };
    let started = Instant::now();
    let mut statuses = Vec::new();
    let mut slept = Duration::ZERO;
    let mut locked_wait = None;
    for i in 0..40 {
        let resp = attempt(i, &wrong_code(&secret));
        statuses.push(resp.status);
        if resp.status == 429 {
            let wait: u64 = resp
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            if wait > 60 {
                locked_wait = Some(wait);
                break;
            }
            // Wait out the short back-off (1 s, then 2 s) to reach the lock.
            let pause = Duration::from_secs(wait) + Duration::from_millis(50);
            assert!(
                slept + pause < Duration::from_secs(10),
                "the back-off stays short"
            );
            std::thread::sleep(pause);
            slept += pause;
        } else {
            assert_eq!(resp.status, 401, "{}", resp.text());
        }
    }
    let (evaluated, throttled) = tally(&statuses);
    let wait = locked_wait.expect("the second factor locks");
    println!(
        "issue 9 TOTP guessing: {} wrong codes sent after the right password, {evaluated} \
         evaluated, {throttled} throttled in {:.1} s; then locked for {wait} s (bound: 5 per hour, 120 per day)",
        statuses.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(evaluated, SECOND_FACTOR_LOCK_AFTER, "{statuses:?}");
    assert!(wait > 3000, "locked for about an hour: {wait}");
    // Locked: more wrong codes and the right one are refused without being checked.
    for i in 0..3 {
        assert_eq!(attempt(100 + i, &wrong_code(&secret)).status, 429);
    }
    let resp = attempt(200, &hotp(&secret, step_now()));
    assert_eq!(
        resp.status,
        429,
        "the right code is refused while locked: {}",
        resp.text()
    );
    let lockouts = audit(&format!("kind=login.lockout&subject={}", user.id));
    assert_eq!(lockouts.len(), 1, "{lockouts:?}");
    assert_eq!(lockouts[0]["detail"]["factor"], "otp");
}

#[test]
fn issue9_forged_forwarding_headers_do_not_change_the_counted_address() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let forged = [
        ("203.0.113.77", "for=203.0.113.78"),
        ("203.0.113.79, 203.0.113.80", "for=\"[2001:db8::81]\""),
        ("2001:db8::82", "for=203.0.113.83;proto=https"),
    ];
    for (xff, forwarded) in forged {
        let b = Browser::new();
        let page = login_page(&b, &client);
        let resp = submit(
            &b,
            &page,
            "/login",
            &[
                ("identifier", &user.username),
                ("password", "not-the-password"),
            ],
            &[
                ("x-forwarded-for", xff),
                ("forwarded", forwarded),
                ("x-edgeid-client-addr", "203.0.113.84"),
            ],
        );
        assert_eq!(resp.status, 401, "{}", resp.text());
    }
    let failures = audit(&format!("kind=login.failure&subject={}", user.id));
    assert_eq!(failures.len(), forged.len(), "{failures:?}");
    let addrs: Vec<&str> = failures
        .iter()
        .map(|e| e["detail"]["addr"].as_str().unwrap())
        .collect();
    println!("issue 9 forged forwarding headers: counted under {addrs:?}");
    // One address for all three (the connection's), none of the forged ones.
    assert!(addrs.windows(2).all(|w| w[0] == w[1]), "{addrs:?}");
    assert!(
        !addrs[0].contains("203.0.113.") && !addrs[0].contains("2001:db8:"),
        "{addrs:?}"
    );
}

/// A client-authenticated POST with Basic credentials.
fn client_post(path: &str, id: &str, secret: &str) -> Resp {
    let body = if path == "/oauth2/token" {
        "grant_type=client_credentials"
    } else {
        "token=not-a-token"
    };
    let auth = basic(id, secret);
    request(
        "POST",
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(body.as_bytes()),
    )
}

#[test]
fn issue9_failed_client_authentication_is_throttled_per_client_id() {
    let (id, secret) = create_client(json!({}));
    let (other, other_secret) = create_client(json!({}));
    assert_eq!(client_post("/oauth2/token", &id, &secret).status, 200);
    // More failures than the limit, in parallel, across the three endpoints: the count is
    // atomic, so none is lost.
    let paths = ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"];
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENT_LOCK_AFTER + 4)
            .map(|i| {
                let id = id.as_str();
                s.spawn(move || client_post(paths[i % 3], id, "wrong-secret").status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // Now even the right secret is refused, as invalid_client with a challenge.
    for path in paths {
        let resp = client_post(path, &id, &secret);
        assert_eq!(resp.status, 401, "{path}: {}", resp.text());
        let e = resp.json();
        assert_eq!(e["error"], "invalid_client");
        assert!(
            e["error_description"]
                .as_str()
                .unwrap()
                .contains("too many failed attempts"),
            "{e}"
        );
        assert!(resp.header("www-authenticate").is_some());
    }
    println!(
        "issue 9 client authentication: locked after {} failures; the right secret is refused",
        statuses.len()
    );
    // Per client id: another client is not affected.
    assert_eq!(
        client_post("/oauth2/token", &other, &other_secret).status,
        200
    );
}
