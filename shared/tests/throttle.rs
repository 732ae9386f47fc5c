//! Throttling in memory with a fixed clock (issue 9): the back-off and lock timings of the
//! password and second-factor counters, a lock that restarts the count and is not extended by
//! attempts during it, a correct password that never resets the second-factor counter, a
//! completed recovery that clears them, IPv6 addresses counted per /64, forwarding headers
//! believed only from trusted proxies, a concurrent burst that reserves no more than the rule
//! allows, the SQL statement agreeing with the rule's model, and client authentication locked
//! per client id.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

use edgeid::throttle::{
    self, Kind, LOCK_SECONDS, PASSWORD_FREE, PASSWORD_LOCK_AFTER, Reserved, SECOND_FACTOR_FREE,
    SECOND_FACTOR_LOCK_AFTER, State, TrustedProxies, Verdict,
};

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn retry_after(resp: &Response) -> i64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A password attempt for alice from a fresh authorization request (the sealed one expires).
fn password(browser: &Browser<'_>, identifier: &str, password: &str) -> Response {
    let start = browser.get(&authorize_url("&prompt=login"));
    assert_eq!(start.status(), 303, "{}", text(&start));
    browser.login(&start, identifier, password)
}

#[test]
fn issue9_password_back_off_doubles_then_locks_and_the_lock_restarts_the_count() {
    let (host, _) = setup(json!({"skip_consent": true}));
    let b = Browser::new(&host);
    for _ in 0..PASSWORD_FREE {
        assert_eq!(password(&b, "alice", "wrong-password").status(), 401);
    }
    // Past the free attempts the wait doubles: 1, 2, 4, ... s, capped at 15 min. A refused
    // attempt checks nothing (even the right password is refused) and does not count.
    let mut evaluated = PASSWORD_FREE;
    let mut expected_wait = 1;
    while evaluated < PASSWORD_LOCK_AFTER {
        let resp = password(&b, "alice", "wonderland-42");
        assert_eq!(resp.status(), 429, "{}", text(&resp));
        assert_eq!(retry_after(&resp), expected_wait);
        assert!(text(&resp).contains("Too many failed attempts"));
        host.clock.advance(expected_wait - 1);
        assert_eq!(password(&b, "alice", "wonderland-42").status(), 429);
        host.clock.advance(1);
        assert_eq!(password(&b, "alice", "wrong-password").status(), 401);
        evaluated += 1;
        expected_wait = (expected_wait * 2).min(throttle::PASSWORD_MAX_DELAY);
    }
    // The 20th locked the name for an hour; attempts during the lock do not extend it.
    let resp = password(&b, "alice", "wonderland-42");
    assert_eq!(resp.status(), 429);
    assert_eq!(retry_after(&resp), LOCK_SECONDS);
    host.clock.advance(LOCK_SECONDS / 2);
    let resp = password(&b, "alice", "wrong-password");
    assert_eq!(retry_after(&resp), LOCK_SECONDS / 2, "not extended");
    host.clock.advance(LOCK_SECONDS / 2 - 1);
    assert_eq!(retry_after(&password(&b, "alice", "x")), 1);
    host.clock.advance(1);
    // The count restarted with the lock: the free attempts again, then the back-off.
    for _ in 0..PASSWORD_FREE {
        assert_eq!(password(&b, "alice", "wrong-password").status(), 401);
    }
    assert_eq!(password(&b, "alice", "wonderland-42").status(), 429);
    host.clock.advance(1);
    assert_eq!(password(&b, "alice", "wonderland-42").status(), 303);
    // A success ends the name's count.
    for _ in 0..PASSWORD_FREE {
        assert_eq!(password(&b, "alice", "wrong-password").status(), 401);
    }
}

/// Enrols TOTP for `user` directly (its first usable step is the current one) with known
/// recovery codes; returns the secret.
fn enrol(host: &MemoryHost, user: &str) -> Vec<u8> {
    let secret = vec![0x42u8; edgeid::totp::SECRET_LEN];
    let step = edgeid::totp::step(host.clock.get()) - 2;
    let codes = vec!["recovery-one".to_owned(), "recovery-two".to_owned()];
    assert!(
        block_on(edgeid::totp::enroll(
            host,
            user,
            &secret,
            step,
            &codes,
            host.clock.get()
        ))
        .unwrap()
    );
    secret
}

fn right_code(host: &MemoryHost, secret: &[u8]) -> String {
    edgeid::totp::code_at(secret, edgeid::totp::step(host.clock.get()))
}

fn wrong_code(host: &MemoryHost, secret: &[u8]) -> String {
    let right = right_code(host, secret);
    let step = edgeid::totp::step(host.clock.get());
    // Not any of the three accepted steps.
    let taken: Vec<String> = (step - 1..=step + 1)
        .map(|s| edgeid::totp::code_at(secret, s))
        .collect();
    (0..)
        .map(|i| format!("{:06}", 111_111 * (i % 9 + 1) + i / 9))
        .find(|c| !taken.contains(c) && *c != right)
        .unwrap()
}

/// The right password in a fresh browser, then `code` at the second-factor step.
fn second_factor(host: &MemoryHost, code: &str) -> Response {
    let b = Browser::new(host);
    let page = password(&b, "alice", "wonderland-42");
    assert_eq!(page.status(), 200, "{}", text(&page));
    assert!(text(&page).contains("action=\"/login/totp\""));
    b.post(
        "/login/totp",
        &form(&[("pending", &input(&text(&page), "pending")), ("code", code)]),
    )
}

#[test]
fn issue9_a_correct_password_never_resets_the_second_factor_counter() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let secret = enrol(&host, &sub);
    // The free wrong codes, each after a correct password; a wrong recovery code counts too.
    let mut evaluated = 0;
    for code in [
        wrong_code(&host, &secret),
        "not-a-recovery-code".to_owned(),
        wrong_code(&host, &secret),
    ] {
        assert_eq!(second_factor(&host, &code).status(), 401);
        evaluated += 1;
    }
    assert_eq!(evaluated, SECOND_FACTOR_FREE);
    // A fresh correct password changes nothing: the next code waits, the right one included.
    let resp = second_factor(&host, &right_code(&host, &secret));
    assert_eq!(resp.status(), 429, "{}", text(&resp));
    assert_eq!(retry_after(&resp), 1);
    host.clock.advance(1);
    assert_eq!(
        second_factor(&host, &wrong_code(&host, &secret)).status(),
        401
    );
    let resp = second_factor(&host, &wrong_code(&host, &secret));
    assert_eq!(retry_after(&resp), 2);
    host.clock.advance(2);
    assert_eq!(
        second_factor(&host, &wrong_code(&host, &secret)).status(),
        401
    );
    evaluated += 2;
    assert_eq!(evaluated, SECOND_FACTOR_LOCK_AFTER);
    // Locked for an hour: the right code and a recovery code are refused unchecked.
    for code in [right_code(&host, &secret), "recovery-one".to_owned()] {
        let resp = second_factor(&host, &code);
        assert_eq!(resp.status(), 429);
        assert_eq!(retry_after(&resp), LOCK_SECONDS);
    }
    // The password counter is another one: the password step still answers.
    host.clock.advance(LOCK_SECONDS);
    let resp = second_factor(&host, &right_code(&host, &secret));
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    // A correct code ends the count: the free codes again.
    for _ in 0..SECOND_FACTOR_FREE {
        assert_eq!(
            second_factor(&host, &wrong_code(&host, &secret)).status(),
            401
        );
    }
    assert_eq!(
        second_factor(&host, &wrong_code(&host, &secret)).status(),
        429
    );
    // So does a recovery code.
    host.clock.advance(1);
    assert_eq!(second_factor(&host, "recovery-one").status(), 303);
    assert_eq!(
        block_on(throttle::state(&host.sql, &Kind::SecondFactor.key(&sub))).unwrap(),
        None
    );
}

#[test]
fn issue9_removing_totp_in_settings_counts_on_the_second_factor_counter() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let secret = enrol(&host, &sub);
    // A full sign-in at the settings page: password, then the code.
    let b = Browser::new(&host);
    let page = b.get("/settings");
    let resp = b.post(
        "/settings/login",
        &form(&[
            ("csrf", &input(&text(&page), "csrf")),
            ("identifier", "alice"),
            ("password", "wonderland-42"),
        ]),
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let resp = b.post(
        "/login/totp",
        &form(&[
            ("pending", &input(&text(&resp), "pending")),
            ("code", &right_code(&host, &secret)),
        ]),
    );
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    host.clock.advance(30);
    for _ in 0..SECOND_FACTOR_FREE {
        let csrf = input(&text(&b.get("/settings")), "csrf");
        let resp = b.post(
            "/settings/totp/remove",
            &form(&[
                ("csrf", &csrf),
                ("totp_confirm", &wrong_code(&host, &secret)),
            ]),
        );
        assert_eq!(resp.status(), 401, "{}", text(&resp));
    }
    let csrf = input(&text(&b.get("/settings")), "csrf");
    let resp = b.post(
        "/settings/totp/remove",
        &form(&[
            ("csrf", &csrf),
            ("totp_confirm", &right_code(&host, &secret)),
        ]),
    );
    assert!(
        text(&resp).contains("Too many failed attempts"),
        "{}",
        text(&resp)
    );
    assert!(block_on(edgeid::totp::load(&host, &sub)).unwrap().is_some());
    // The sign-in step shares the count.
    assert_eq!(
        second_factor(&host, &right_code(&host, &secret)).status(),
        429
    );
}

#[test]
fn issue9_a_completed_recovery_clears_the_password_and_second_factor_counters() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let now = host.clock.get();
    for name in ["alice", "ALICE@example.com"] {
        for _ in 0..PASSWORD_LOCK_AFTER {
            block_on(throttle::reserve(
                &host.sql,
                Kind::Password,
                &name.to_lowercase(),
                now,
            ))
            .unwrap();
        }
    }
    for _ in 0..SECOND_FACTOR_LOCK_AFTER {
        block_on(throttle::reserve(&host.sql, Kind::SecondFactor, &sub, now)).unwrap();
    }
    let b = Browser::new(&host);
    assert_eq!(password(&b, "alice", "wonderland-42").status(), 429);
    assert_eq!(
        password(&b, "alice@example.com", "wonderland-42").status(),
        429
    );
    // Another user's counters are not touched.
    block_on(throttle::reserve(&host.sql, Kind::Password, "bob", now)).unwrap();

    let user = block_on(edgeid::user::load(&host.sql, &sub))
        .unwrap()
        .unwrap();
    block_on(throttle::recovered(&host, &user));
    for key in [
        Kind::Password.key("alice"),
        Kind::Password.key("alice@example.com"),
        Kind::SecondFactor.key(&sub),
    ] {
        assert_eq!(block_on(throttle::state(&host.sql, &key)).unwrap(), None);
    }
    assert!(
        block_on(throttle::state(&host.sql, &Kind::Password.key("bob")))
            .unwrap()
            .is_some()
    );
    assert_eq!(password(&b, "alice", "wonderland-42").status(), 303);
}

#[test]
fn issue9_setting_a_password_through_a_recovery_link_ends_the_lock() {
    let (host, sub) = setup(json!({"skip_consent": true}));
    let now = host.clock.get();
    for _ in 0..PASSWORD_LOCK_AFTER {
        block_on(throttle::reserve(&host.sql, Kind::Password, "alice", now)).unwrap();
    }
    let b = Browser::new(&host);
    assert_eq!(password(&b, "alice", "wonderland-42").status(), 429);
    let resp = admin(
        &host,
        "POST",
        &format!("/admin/users/{sub}/recovery"),
        json!({"purpose": "reset"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let link = json_of(&resp)["link"].as_str().unwrap().to_owned();
    let page = b.get(&link);
    assert_eq!(page.status(), 200, "{}", text(&page));
    // Whatever hidden fields the form carries, plus the new password.
    let html = text(&page);
    let mut pairs: Vec<(String, String)> = html
        .split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .map(|tag| {
            let attr = |name: &str| {
                let m = format!("{name}=\"");
                let start = tag.find(&m).unwrap() + m.len();
                let end = tag[start..].find('"').unwrap() + start;
                tag[start..end]
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
            };
            (attr("name"), attr("value"))
        })
        .collect();
    pairs.push(("password".into(), "a-fresh-password-77".into()));
    pairs.push(("confirm".into(), "a-fresh-password-77".into()));
    let body = form(
        &pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let resp = b.post("/recovery/password", &body);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert_eq!(
        block_on(throttle::state(&host.sql, &Kind::Password.key("alice"))).unwrap(),
        None
    );
    let fresh = Browser::new(&host);
    assert_eq!(
        password(&fresh, "alice", "a-fresh-password-77").status(),
        303
    );
}

#[test]
fn issue9_ipv6_addresses_count_per_64() {
    let host = block_on(MemoryHost::new());
    let now = host.clock.get();
    let attempt = |name: &str, addr: &str| {
        block_on(throttle::password_attempt(&host, name, addr, now)).unwrap()
    };
    // 30 names from 30 addresses of one /64.
    for i in 0..throttle::ADDRESS_FREE {
        assert_eq!(
            attempt(&format!("user{i}"), &format!("2001:db8:1:2::{:x}", i + 1)),
            Verdict::Allowed
        );
    }
    assert_eq!(
        attempt("another", "2001:db8:1:2:ffff:ffff:ffff:ffff"),
        Verdict::Wait(1)
    );
    assert_eq!(attempt("another", "2001:db8:1:3::1"), Verdict::Allowed);
    // IPv4 addresses count one by one, mapped or not.
    for i in 0..throttle::ADDRESS_FREE {
        assert_eq!(
            attempt(&format!("v4user{i}"), "::ffff:192.0.2.1"),
            Verdict::Allowed
        );
    }
    assert_eq!(attempt("v4-another", "192.0.2.1"), Verdict::Wait(1));
    assert_eq!(attempt("v4-another", "192.0.2.2"), Verdict::Allowed);
}

#[test]
fn issue9_forwarding_headers_count_only_from_trusted_proxies() {
    let host = block_on(MemoryHost::new());
    let now = host.clock.get();
    let counted = |peer: &str, xff: &str, trusted: &TrustedProxies| {
        let mut req = http::Request::builder()
            .header("x-forwarded-for", xff)
            .header(throttle::CLIENT_ADDR_HEADER, "6.6.6.6")
            .body(Vec::new())
            .unwrap();
        throttle::set_client_addr(&mut req, Some(peer), trusted);
        throttle::client_addr(&req)
    };
    let none = TrustedProxies::default();
    // An untrusted peer rotating X-Forwarded-For stays on its own counter.
    for i in 0..throttle::ADDRESS_FREE {
        let addr = counted("203.0.113.5:40000", &format!("198.51.100.{i}"), &none);
        assert_eq!(addr, "203.0.113.5");
        let name = format!("user{i}");
        assert_eq!(
            block_on(throttle::password_attempt(&host, &name, &addr, now)).unwrap(),
            Verdict::Allowed
        );
    }
    let addr = counted("203.0.113.5:40001", "198.51.100.250", &none);
    assert!(matches!(
        block_on(throttle::password_attempt(&host, "x", &addr, now)).unwrap(),
        Verdict::Wait(_)
    ));
    // Behind a trusted proxy the rightmost untrusted entry is the client; what the client
    // wrote further left is not.
    let proxy = TrustedProxies::parse("10.0.0.0/8").unwrap();
    assert_eq!(
        counted("10.1.2.3:5000", "6.6.6.7, 198.51.100.9", &proxy),
        "198.51.100.9"
    );
    assert_eq!(
        counted("10.1.2.3:5000", "198.51.100.9, 10.4.4.4", &proxy),
        "198.51.100.9"
    );
    assert_eq!(
        counted("203.0.113.5:1", "198.51.100.9", &proxy),
        "203.0.113.5"
    );
    // The setting as hosts read it.
    let mut vars = host.vars.clone();
    vars.insert("trusted_proxies".into(), "10.0.0.0/8, fd00::/8".into());
    let config = edgeid::platform::native::NativeConfig(std::sync::Arc::new(vars));
    let mut req = http::Request::builder()
        .header("forwarded", "for=\"[2001:db8::9]:443\"")
        .body(Vec::new())
        .unwrap();
    throttle::record_client_addr(&mut req, Some("[fd00::1]:8443"), &config);
    assert_eq!(throttle::client_addr(&req), "2001:db8::9");
    assert_eq!(
        throttle::address::counted(&throttle::client_addr(&req)),
        "2001:db8::/64"
    );
}

/// 64 connections to one SQLite file reserve at the same moment: exactly the free attempts
/// are granted (the same statement runs on Spin SQLite and D1).
#[test]
fn issue9_a_concurrent_burst_reserves_no_more_than_the_free_attempts() {
    let dir = std::env::temp_dir().join(format!("edgeid-throttle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("burst.db");
    let _ = std::fs::remove_file(&path);
    edgeid::platform::native::NativeSql::open(&path)
        .unwrap()
        .migrate()
        .unwrap();
    let now = 1_700_000_000;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let sql = edgeid::platform::native::NativeSql::open(&path).unwrap();
                barrier.wait();
                block_on(throttle::reserve(&sql, Kind::Password, "alice", now)).unwrap()
            })
        })
        .collect();
    let granted = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|r| matches!(r, Reserved::Granted { .. }))
        .count();
    println!("64 concurrent reservations: {granted} granted");
    assert_eq!(i64::try_from(granted).unwrap(), PASSWORD_FREE);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The SQL statement and [`edgeid::throttle::Policy`] (which computes Retry-After and the
/// stated bounds) decide alike, over pseudo-random attempt times for every kind.
#[test]
fn issue9_the_sql_reservation_agrees_with_the_rule() {
    let host = block_on(MemoryHost::new());
    let mut seed: u64 = 9;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for kind in [
        Kind::Password,
        Kind::PasswordAddress,
        Kind::SecondFactor,
        Kind::RecoveryName,
        Kind::RecoveryAddress,
        Kind::Client,
    ] {
        let p = kind.policy();
        let mut model: Option<State> = None;
        let mut t = 1_700_000_000;
        let (mut granted, mut refused) = (0, 0);
        for _ in 0..600 {
            t += match next(10) {
                0..=5 => 0,
                6 | 7 => i64::try_from(next(8)).unwrap(),
                8 => i64::try_from(next(1000)).unwrap(),
                _ => i64::try_from(next(2 * 86_400)).unwrap(),
            };
            // A fresh key behaves as one whose last attempt is long forgotten.
            let before = model.unwrap_or(State {
                attempts: 0,
                last: i64::MIN / 4,
                locked_until: 0,
            });
            let wait = p.wait(&before, t);
            let got = block_on(throttle::reserve(&host.sql, kind, "subject", t)).unwrap();
            if wait == 0 {
                let after = p.after_attempt(&before, t);
                assert_eq!(
                    got,
                    Reserved::Granted {
                        locks: after.locked_until > t
                    },
                    "{kind:?} at {t}"
                );
                model = Some(after);
                granted += 1;
            } else {
                assert_eq!(got, Reserved::Refused { wait }, "{kind:?} at {t}");
                refused += 1;
            }
            let stored = block_on(throttle::state(&host.sql, &kind.key("subject"))).unwrap();
            assert_eq!(stored, model, "{kind:?} at {t}");
        }
        assert!(
            granted > 0 && refused > 0,
            "{kind:?}: {granted} granted, {refused} refused"
        );
    }
}

fn token_request(
    host: &MemoryHost,
    path: &str,
    client: &str,
    secret: &str,
    body: &str,
) -> Response {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"))
    );
    send(
        host,
        "POST",
        path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        body,
    )
}

#[test]
fn issue9_client_authentication_is_locked_per_client_id() {
    let (host, _) = setup(
        json!({"grant_types": ["authorization_code", "refresh_token", "client_credentials"]}),
    );
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({"client_id": "other", "client_secret": "other-secret-123",
               "grant_types": ["client_credentials"], "scope": "openid"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    let cc = "grant_type=client_credentials";
    let ok = |client: &str, secret: &str| token_request(&host, "/oauth2/token", client, secret, cc);
    // A success in between resets nothing: failures are counted, not streaks.
    for i in 0..throttle::CLIENT_LOCK_AFTER {
        let path = ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"]
            [usize::try_from(i % 3).unwrap()];
        let body = if path == "/oauth2/token" {
            cc
        } else {
            "token=x"
        };
        let resp = token_request(&host, path, "rp", "wrong-secret", body);
        assert_eq!(resp.status(), 401, "{path}: {}", text(&resp));
        assert_eq!(json_of(&resp)["error"], "invalid_client");
        if i == 5 {
            assert_eq!(ok("rp", "rp-secret-123").status(), 200);
        }
    }
    // Locked: the right secret is refused at all three endpoints, with the Basic challenge.
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let body = if path == "/oauth2/token" {
            cc
        } else {
            "token=x"
        };
        let resp = token_request(&host, path, "rp", "rp-secret-123", body);
        assert_eq!(resp.status(), 401, "{path}");
        let e = json_of(&resp);
        assert_eq!(e["error"], "invalid_client");
        assert!(
            e["error_description"]
                .as_str()
                .unwrap()
                .contains("too many failed attempts")
        );
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    // Another client is not affected.
    assert_eq!(ok("other", "other-secret-123").status(), 200);
    // With the KV marker lost the lock still holds in SQL: the next failure restores it.
    use edgeid::ports::Kv as _;
    let marker = format!("throttle:v2:{}", Kind::Client.key("rp"));
    block_on(host.kv.delete(&marker)).unwrap();
    assert_eq!(ok("rp", "wrong-secret").status(), 401);
    let resp = ok("rp", "rp-secret-123");
    assert!(
        text(&resp).contains("too many failed attempts"),
        "{}",
        text(&resp)
    );
    // The lock ends after 5 minutes.
    host.clock.advance(throttle::CLIENT_LOCK_SECONDS);
    assert_eq!(ok("rp", "rp-secret-123").status(), 200);
}

#[test]
fn issue9_public_clients_and_unknown_ids_are_not_counted() {
    let (host, _) = setup(json!({}));
    let resp = admin(
        &host,
        "POST",
        "/admin/clients",
        json!({"client_id": "spa", "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code"], "redirect_uris": [CB], "scope": "openid"}),
    );
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    for _ in 0..throttle::CLIENT_LOCK_AFTER + 5 {
        let resp = token_request(
            &host,
            "/oauth2/token",
            "spa",
            "a-secret",
            "grant_type=authorization_code&code=x",
        );
        assert_eq!(json_of(&resp)["error"], "invalid_client");
        let resp = token_request(
            &host,
            "/oauth2/token",
            "nobody",
            "a-secret",
            "grant_type=client_credentials",
        );
        assert_eq!(json_of(&resp)["error"], "invalid_client");
    }
    // The public client still authenticates (and reaches the grant check).
    let resp = send(
        &host,
        "POST",
        "/oauth2/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!(
            "grant_type=authorization_code&code=x&client_id=spa&redirect_uri={CB}&code_verifier={VERIFIER}"
        ),
    );
    assert_eq!(json_of(&resp)["error"], "invalid_grant", "{}", text(&resp));
    for key in [Kind::Client.key("spa"), Kind::Client.key("nobody")] {
        assert_eq!(block_on(throttle::state(&host.sql, &key)).unwrap(), None);
    }
}
