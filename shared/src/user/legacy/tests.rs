//! The legacy formats against the migration fixtures and Kratos' own test vectors, plus
//! malformed, mutated and over-cost hashes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use super::*;

/// The migration fixtures (`../shared/fixtures/migration/` from the repository root).
fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/migration")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture file")).unwrap()
}

fn wrong(password: &str) -> Vec<Vec<u8>> {
    vec![
        format!("{password}x").into_bytes(),
        password.as_bytes()[..password.len() - 1].to_vec(),
        password.to_uppercase().into_bytes(),
        Vec::new(),
    ]
}

#[test]
fn issue10_every_fixture_identity_hash_verifies_its_password_and_no_other() {
    let expected = fixture("expected.json");
    let mut checked = 0;
    for identity in expected["identities"].as_array().unwrap() {
        let Some(stored) = identity["hashed_password"].as_str() else {
            continue;
        };
        let password = identity["password"].as_str().unwrap();
        let h = parse(stored).unwrap_or_else(|e| panic!("{}: {e}", identity["email"]));
        assert_eq!(
            h.scheme().name().split('-').next(),
            identity["format"]
                .as_str()
                .map(|f| f.split('-').next().unwrap_or(f)),
            "{stored}"
        );
        assert!(h.verify(password.as_bytes()), "{}", identity["email"]);
        // PBKDF2's generic code runs unoptimized in test builds (~3 s a check): one wrong
        // password there, four elsewhere.
        let wrongs = wrong(password);
        let n = if h.scheme() == Scheme::Pbkdf2 {
            1
        } else {
            wrongs.len()
        };
        for w in &wrongs[..n] {
            assert!(
                !h.verify(w),
                "{} accepted a wrong password",
                identity["email"]
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 9, "nine fixture identities carry a hash");
}

#[test]
fn issue10_hydra_client_secret_hashes_verify() {
    for c in fixture("hydra-client-secrets.json").as_array().unwrap() {
        let (Some(stored), Some(secret)) = (
            c["hydra_client.client_secret (at rest)"].as_str(),
            c["client_secret"].as_str(),
        ) else {
            continue;
        };
        assert!(verify(stored, secret.as_bytes()), "{}", c["client_id"]);
        assert!(!verify(stored, b"not-the-secret"), "{}", c["client_id"]);
    }
}

/// The `Compare` vectors of Kratos' `hash/hasher_test.go` quoted in FORMATS.md, one per
/// format family.
#[test]
fn issue10_kratos_test_vectors_of_every_family() {
    for (stored, password) in [
        (
            "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
            "test",
        ),
        (
            "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c",
            "test",
        ),
        (
            "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
            "test",
        ),
        (
            "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
            "test",
        ),
        (
            "$pbkdf2-sha224$i=100000,l=32$A2nzbFd+wwzPSb+TqkF5Pw$9M4GM2yOYw/fZvsvQbF/0Ec8JO2u9O1MYRTfrDimX6o",
            "test",
        ),
        (
            "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
            "test",
        ),
        (
            "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==$YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyw==",
            "8x4WjoDbSxJZdR",
        ),
        ("{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a", "test123"),
        (
            "{SSHA256}czO44OTV17PcF1cRxWrLZLy9xHd7CWyVYplr1rOhuMlx/7IK",
            "test123",
        ),
        (
            "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
            "test",
        ),
        ("$md5$CY9rzUYh03PK3k6DJie09g==", "test"),
        (
            "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$q+RdKCgc+ipCAcm5ChQwlQ==",
            "test",
        ),
        (
            "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=",
            "test",
        ),
        ("$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/", "test"),
        (
            "$sha256-crypt$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78",
            "test",
        ),
        (
            "$sha512-crypt$rounds=656000$3LVbIAVxR//cRajw$uuNasMW.RYxlGzIRFU1Was70BPSa933AjxhZIGJdJBOlqJAHlgqa0yuiuq5JHF/ryNGryJkj87G9i3G2HPSXg1",
            "test",
        ),
        // `openssl passwd -5 -salt 05R.9KB6UC2kLI3w test` (the default 5,000 rounds).
        (
            "$sha256-crypt$05R.9KB6UC2kLI3w$v5M0yzcMti57WJPl8ZyLdaXwogPHG4KQl1uI26XBIQD",
            "test",
        ),
    ] {
        let h = parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
        assert!(h.verify(password.as_bytes()), "{stored}");
        assert!(!h.verify(b"tesT"), "{stored}");
    }
}

#[test]
fn issue10_bcrypt_minors_are_interchangeable_and_long_passwords_refused() {
    let a = "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6";
    for minor in ["$2b$", "$2y$", "$2z$"] {
        assert!(verify(&a.replacen("$2a$", minor, 1), b"test"), "{minor}");
    }
    // `$2x$` is not routed to bcrypt by Kratos.
    assert_eq!(
        parse(&a.replacen("$2a$", "$2x$", 1)).unwrap_err(),
        Unverifiable::UnknownFormat
    );
    assert!(!verify(a, &[b'a'; 73]));
}

#[test]
fn issue10_over_cost_hashes_are_refused_before_any_work() {
    let salt = "c29tZXNhbHRzb21lc2FsdA";
    let key = "3Nxqj4P7W9cA3DMtqZbN0bK9bqkG2bZg3L0Fh0h1Q2s";
    for stored in [
        format!("$argon2id$v=19$m=1048576,t=1,p=1${salt}${key}"),
        format!("$argon2id$v=19$m=131072,t=10,p=1${salt}${key}"),
        format!("$argon2i$v=19$m=65536,t=11,p=1${salt}${key}"),
        format!("$argon2id$v=19$m=65536,t=1,p=17${salt}${key}"),
        "$2a$15$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6".to_owned(),
        "$2a$31$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6".to_owned(),
        format!("$pbkdf2-sha512$i=10000000,l=64${salt}${key}"),
        format!("$pbkdf2-sha256$i=1300001,l=32${salt}${key}"),
        "$sha512-crypt$rounds=1000001$3LVbIAVxR//cRajw$uuNasMW.RYxlGzIRFU1Was70BPSa933AjxhZIGJdJBOlqJAHlgqa0yuiuq5JHF/ryNGryJkj87G9i3G2HPSXg1".to_owned(),
        "$scrypt$ln=131072,r=8,p=10$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=".to_owned(),
    ] {
        let started = std::time::Instant::now();
        let e = parse(&stored).unwrap_err();
        assert!(matches!(e, Unverifiable::OverCost(..)), "{stored}: {e:?}");
        assert!(!verify(&stored, b"test"));
        assert!(started.elapsed() < std::time::Duration::from_millis(50), "{stored}");
        assert!(e.to_string().contains("over"), "{e}");
    }
}

#[test]
fn issue10_malformed_and_unknown_hashes_are_refused_cleanly() {
    let long = "$2a$".to_owned() + &"a".repeat(MAX_HASH_LEN);
    for stored in [
        "",
        "$",
        "$$$$$$",
        "plaintext-password",
        "$1$saltsalt$hash",
        "$5$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78",
        "$argon2d$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$",
        "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ",
        "$argon2id$v=16$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=x,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=32,t=2,p=256$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=8,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=32,t=0,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=99999999999,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ==$MNzk5BtR2vUhrp6qQEjRNw",
        "$argon2id$v=19$m=32,t=2,p=4$c2hvcnQ$MNzk5BtR2vUhrp6qQEjRNw",
        "$2a$12$short",
        "$2a$1$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "$2a$03$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6X",
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6Dé€tLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOx+tLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "$2$",
        "$pbkdf2-sha256$i=0,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxz",
        "$pbkdf2-sha256$i=100,l=32$1jP+5Zxp$",
        "$pbkdf2-sha256$i=100,l=32$1jP+5Zxp=$QJxzfvdb",
        "$pbkdf2-sha256$I=100,l=32$1jP+5Zxp$QJxzfvdb",
        "$pbkdf2-sha1234$i=100,l=32$1jP+5Zxp$QJxzfvdb",
        "$scrypt$ln=16383,r=8,p=1$2npR$MiCz",
        "$scrypt$ln=1,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=16384,r=9,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE",
        "$firescrypt$ln=99,r=8,p=1$a$b$c$d",
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSo",
        "{SSHA}",
        "{SSHA}AAAA",
        "{SSHA256}!!!!",
        "{SSHA384}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a",
        "$sha256$pf=$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$sha256$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=",
        "$sha3$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2",
        "$md5$a$b",
        "$md5$!!",
        "$hmac-sha3$ZmU4$MTIz",
        "$hmac-md5$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=",
        "$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C",
        "$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C!",
        "$md5-crypt$TVEiiKNb",
        "$sha512-crypt$rounds=656000$3LVbIAVxR//cRajw$uuNa",
        "$sha256-crypt$rounds=$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78",
        "$sha256-crypt$rounds=99999999999$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78",
        long.as_str(),
        "\u{0}\u{ffff}$argon2id$\u{1F600}",
    ] {
        assert!(parse(stored).is_err(), "{stored:?} parsed");
        assert!(!verify(stored, b"test"), "{stored:?}");
    }
}

/// A cheap mutation fuzz over every real hash: truncations and single-byte changes must
/// never panic (`cargo fuzz` targets live in fuzz/; this runs with the unit tests).
#[test]
fn issue10_mutated_hashes_never_panic() {
    let expected = fixture("expected.json");
    let mut hashes: Vec<String> = expected["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["hashed_password"].as_str().map(str::to_owned))
        .collect();
    hashes.push("$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSo$Bw==$YE0d".into());
    hashes.push("$hmac-sha512$ZmU4Njk3Zjc0MmQwODA0MDVkMTI3MGU2MTYzMzE2Zjk=$MTIzNDU=".into());
    hashes.push("$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$q+RdKCgc+ipCAcm5ChQwlQ==".into());
    hashes.push("$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/".into());
    hashes.push(
        "$sha256-crypt$rounds=535000$05R.9KB6UC2kLI3w$Q/zslzx./JjkAVPTwp6th7nW5l7JU91Gte/UmIh.U78"
            .into(),
    );
    let replacements = [b'$', b',', b'=', b'0', b'9', b'A', b'/', b'+', b'.', 0xff];
    for h in &hashes {
        let bytes = h.as_bytes();
        for cut in 0..bytes.len() {
            if let Ok(s) = std::str::from_utf8(&bytes[..cut]) {
                let _ = parse(s);
            }
            for r in replacements {
                let mut m = bytes.to_vec();
                m[cut] = r;
                if let Ok(s) = std::str::from_utf8(&m) {
                    let _ = parse(s);
                }
            }
        }
    }
}

#[test]
fn issue10_template_replacement_is_one_left_to_right_pass() {
    assert_eq!(fill_template(b"{SALT}${PASSWORD}", b"s", b"p"), b"s$p");
    // A password that spells a placeholder is not expanded again.
    assert_eq!(
        fill_template(b"{PASSWORD}{SALT}", b"x", b"{SALT}"),
        b"{SALT}x"
    );
    assert_eq!(fill_template(b"{SAL", b"x", b"y"), b"{SAL");
}

#[test]
fn issue10_params_scan_like_go_sscanf() {
    assert_eq!(
        scan("m=65536,t=3,p=4", &["m", "t", "p"]),
        Some(vec![65536, 3, 4])
    );
    assert_eq!(
        scan("m=65536,t=3,p=4,keyid=x", &["m", "t", "p"]),
        Some(vec![65536, 3, 4])
    );
    assert_eq!(scan("M=1,t=3,p=4", &["m", "t", "p"]), None);
    assert_eq!(scan("m=,t=3,p=4", &["m", "t", "p"]), None);
    assert_eq!(scan("m=99999999999999999999999", &["m"]), None);
}
