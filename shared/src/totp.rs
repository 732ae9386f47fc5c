//! The TOTP second factor (RFC 6238: HOTP of RFC 4226 over 30-second time steps, HMAC-SHA-1,
//! 6 digits, one step of drift either way) and its one-time recovery codes.
//!
//! Secrets live in the credentials database sealed with the key-encryption key; recovery codes
//! only as SHA-256 digests. Acceptance is a storage contract like every single-use value
//! (DESIGN.md): a code is accepted by one conditional `UPDATE ... RETURNING` that raises
//! `last_step`, so a code (or an older one) cannot be used twice, whatever runs concurrently.

use hmac::{Hmac, Mac as _};
use sha1::Sha1;

use crate::config;
use crate::crypto::sha256_hex;
use crate::error::OAuthError;
use crate::ports::{PortError, Ports, Rng, Sql, Statement, UnixTime};

/// RFC 8176 §2: "one-time password".
pub const AMR_OTP: &str = "otp";
/// RFC 6238 §5.2: the recommended time step.
pub const STEP_SECONDS: i64 = 30;
/// RFC 4226 §5.3: a 6-digit code.
pub const DIGITS: u32 = 6;
/// RFC 4226 §4 R6: 160-bit shared secrets.
pub const SECRET_LEN: usize = 20;
/// How many recovery codes an enrolment issues.
pub const RECOVERY_CODES: usize = 10;

const SEAL_CONTEXT: &str = "edgeid/totp-secret/v1";

/// RFC 4226 §5.3: HOTP(K, C) = Truncate(HMAC-SHA-1(K, C)) mod 10^Digit.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // §5.4 dynamic truncation: the low 4 bits of the last byte select the offset.
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    bin % 10u32.pow(DIGITS)
}

/// RFC 6238 §4.2: the time step T for `now` (T0 = 0).
pub fn step(now: UnixTime) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// The code for one step, zero-padded as the user sees it.
pub fn code_at(secret: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, u64::try_from(step).unwrap_or(0)),
        width = DIGITS as usize
    )
}

/// The step among now-1, now, now+1 (RFC 6238 §5.2: at most one step of drift) whose code is
/// `code`, if any. Spaces the user typed are ignored. Compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: UnixTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = step(now);
    let mut found = None;
    for s in [t - 1, t, t + 1] {
        if crate::crypto::digest_eq(&code_at(secret, s), &code) {
            found = Some(s);
        }
    }
    found
}

/// RFC 4648 §6 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://totp/...` URI authenticator apps scan (the Key Uri Format of Google
/// Authenticator, which every app follows): issuer in the label and as a parameter.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer),
    )
}

/// The URI as a QR code in inline SVG (no external asset, no script). `None` when the URI is
/// too long for a QR code, which the page then shows as text only.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in HTML the XML declaration is noise.
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code of the secret\" ",
        1,
    ))
}

/// A fresh secret.
pub fn new_secret(rng: &impl Rng) -> Result<[u8; SECRET_LEN], PortError> {
    let mut s = [0u8; SECRET_LEN];
    rng.fill(&mut s)?;
    Ok(s)
}

/// Fresh recovery codes (`xxxxx-xxxxx`, 50 bits each, base32 lower case).
pub fn new_recovery_codes(rng: &impl Rng) -> Result<Vec<String>, PortError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 7];
            rng.fill(&mut b)?;
            let s = base32(&b).to_lowercase();
            Ok(format!("{}-{}", &s[..5], &s[5..10]))
        })
        .collect()
}

/// The digest a recovery code is stored and looked up by: case, spaces and dashes the user
/// types do not matter.
fn recovery_digest(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha256_hex(format!("edgeid/recovery-code/v1:{norm}").as_bytes())
}

pub(crate) fn seal_context(user_id: &str) -> String {
    format!("{SEAL_CONTEXT}:{user_id}")
}

/// A stored credential, opened.
pub struct Credential {
    pub secret: Vec<u8>,
    pub last_step: i64,
}

/// The user's TOTP credential, if enrolled. Applies the credentials schema when a database
/// predates the TOTP table (Spin seeds only its default database).
pub async fn load<P: Ports>(ports: &P, user_id: &str) -> Result<Option<Credential>, OAuthError> {
    let stmt = || {
        Statement::new(
            "SELECT secret_sealed, last_step FROM totp_credentials WHERE user_id = ?",
            vec![user_id.into()],
        )
    };
    let rows = match ports.credentials().query(stmt()).await {
        Ok(rows) => rows,
        Err(_) => {
            crate::user::ensure_credentials_schema(ports.credentials()).await?;
            ports.credentials().query(stmt()).await?
        }
    };
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let secret = config::kek(ports)?
        .open(&seal_context(user_id), row.text(0)?)
        .map_err(|e| OAuthError::server(format!("totp secret: {e}")))?;
    Ok(Some(Credential {
        secret,
        last_step: row.int(1)?,
    }))
}

/// Stores a confirmed credential (the step of the confirming code already used) and replaces
/// the recovery codes, atomically. `Ok(false)` when one is already enrolled.
pub async fn enroll<P: Ports>(
    ports: &P,
    user_id: &str,
    secret: &[u8],
    confirmed_step: i64,
    recovery_codes: &[String],
    now: UnixTime,
) -> Result<bool, OAuthError> {
    crate::user::ensure_credentials_schema(ports.credentials()).await?;
    if load(ports, user_id).await?.is_some() {
        return Ok(false);
    }
    let sealed = config::kek(ports)?.seal(ports, &seal_context(user_id), secret)?;
    // The flag first: should the credential write fail, the account only asks for a factor
    // it lacks, which the login step treats as "removed meanwhile" and clears.
    set_enrolled(ports.sql(), user_id, true, now).await?;
    let mut stmts = vec![
        Statement::new(
            "INSERT INTO totp_credentials (user_id, secret_sealed, created_at, last_step) \
             VALUES (?, ?, ?, ?)",
            vec![
                user_id.into(),
                sealed.into(),
                now.into(),
                confirmed_step.into(),
            ],
        ),
        Statement::new(
            "DELETE FROM recovery_codes WHERE user_id = ?",
            vec![user_id.into()],
        ),
    ];
    for code in recovery_codes {
        stmts.push(Statement::new(
            "INSERT INTO recovery_codes (user_id, code_sha256) VALUES (?, ?)",
            vec![user_id.into(), recovery_digest(code).into()],
        ));
    }
    match ports.credentials().batch(stmts).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind == crate::ports::PortErrorKind::Conflict => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes the credential and its recovery codes, then the flag (in that order, so a failure
/// between the two leaves an account that still asks for the factor, never one that skips it).
pub async fn remove<P: Ports>(ports: &P, user_id: &str, now: UnixTime) -> Result<(), PortError> {
    ports
        .credentials()
        .batch(vec![
            Statement::new(
                "DELETE FROM totp_credentials WHERE user_id = ?",
                vec![user_id.into()],
            ),
            Statement::new(
                "DELETE FROM recovery_codes WHERE user_id = ?",
                vec![user_id.into()],
            ),
        ])
        .await?;
    set_enrolled(ports.sql(), user_id, false, now).await
}

/// Records in the main database whether `user_id` has a second factor (table
/// `user_factors`): what [`crate::authorize::decision`] reads to require `otp` of a session.
pub async fn set_enrolled(
    sql: &impl Sql,
    user_id: &str,
    enrolled: bool,
    now: UnixTime,
) -> Result<(), PortError> {
    sql.query(Statement::new(
        "INSERT INTO user_factors (user_id, totp, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (user_id) DO UPDATE SET totp = excluded.totp, updated_at = excluded.updated_at",
        vec![user_id.into(), enrolled.into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// Whether `user_id` has a second factor, from the main database (see [`set_enrolled`]).
/// Whether a live session still counts for pages that rest on it directly (settings, the
/// console): a session that did not use the account's second factor (one that predates its
/// enrolment) is no session, the rule `authorize::decision` applies to every authorization.
pub async fn session_counts(
    sql: &impl Sql,
    s: &crate::session::Session,
) -> Result<bool, PortError> {
    Ok(s.amr.iter().any(|m| m == AMR_OTP) || !enrolled(sql, &s.user_id).await?)
}

pub async fn enrolled(sql: &impl Sql, user_id: &str) -> Result<bool, PortError> {
    let rows = sql
        .query(Statement::new(
            "SELECT totp FROM user_factors WHERE user_id = ?",
            vec![user_id.into()],
        ))
        .await?;
    Ok(match rows.first() {
        Some(r) => r.int(0)? != 0,
        None => false,
    })
}

/// Checks a code against the stored credential and consumes its step: true only when the code
/// matches a step after the last accepted one and this request raised `last_step` to it.
pub async fn verify_code<P: Ports>(
    ports: &P,
    user_id: &str,
    cred: &Credential,
    code: &str,
    now: UnixTime,
) -> Result<bool, PortError> {
    let Some(s) = matching_step(&cred.secret, code, now) else {
        return Ok(false);
    };
    if s <= cred.last_step {
        return Ok(false);
    }
    let rows = ports
        .credentials()
        .query(Statement::new(
            "UPDATE totp_credentials SET last_step = ?1 WHERE user_id = ?2 AND last_step < ?1 \
             RETURNING user_id",
            vec![s.into(), user_id.into()],
        ))
        .await?;
    Ok(!rows.is_empty())
}

/// Consumes a recovery code: true only for an unused code of this user, once.
pub async fn use_recovery_code(
    credentials: &impl Sql,
    user_id: &str,
    code: &str,
    now: UnixTime,
) -> Result<bool, PortError> {
    let rows = credentials
        .query(Statement::new(
            "UPDATE recovery_codes SET used_at = ? \
             WHERE user_id = ? AND code_sha256 = ? AND used_at IS NULL RETURNING user_id",
            vec![now.into(), user_id.into(), recovery_digest(code).into()],
        ))
        .await?;
    Ok(!rows.is_empty())
}

/// How many unused recovery codes the user has left.
pub async fn recovery_codes_left(credentials: &impl Sql, user_id: &str) -> Result<i64, PortError> {
    let rows = credentials
        .query(Statement::new(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
            vec![user_id.into()],
        ))
        .await?;
    rows.first().map_or(Ok(0), |r| r.int(0))
}

/// A TOTP code (6 digits) or else a recovery code: what the second-factor form accepts in
/// its one field.
pub async fn verify_second_factor<P: Ports>(
    ports: &P,
    user_id: &str,
    cred: &Credential,
    input: &str,
    now: UnixTime,
) -> Result<bool, PortError> {
    let digits = input.chars().filter(|c| !c.is_whitespace()).count();
    if digits == DIGITS as usize
        && input
            .trim()
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ')
    {
        verify_code(ports, user_id, cred, input, now).await
    } else if input.trim().is_empty() {
        Ok(false)
    } else {
        use_recovery_code(ports.credentials(), user_id, input, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows (8 digits there; 6 are the low digits of the
    /// same value, RFC 4226 §5.3), with the 20-byte ASCII seed "12345678901234567890".
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected8) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(seed, step(time)), expected8[2..], "T={time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let seed = b"12345678901234567890";
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(hotp(seed, counter as u64), want);
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_no_more() {
        let seed = b"12345678901234567890";
        let now = 1_111_111_111;
        let t = step(now);
        assert_eq!(matching_step(seed, &code_at(seed, t), now), Some(t));
        assert_eq!(matching_step(seed, &code_at(seed, t - 1), now), Some(t - 1));
        assert_eq!(matching_step(seed, &code_at(seed, t + 1), now), Some(t + 1));
        assert_eq!(matching_step(seed, &code_at(seed, t + 2), now), None);
        assert_eq!(matching_step(seed, &code_at(seed, t - 2), now), None);
        let spaced = format!("{} {}", &code_at(seed, t)[..3], &code_at(seed, t)[3..]);
        assert_eq!(matching_step(seed, &spaced, now), Some(t));
        assert_eq!(matching_step(seed, "12345a", now), None);
    }

    #[test]
    fn base32_follows_rfc4648_test_vectors() {
        // RFC 4648 §10, without padding.
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn otpauth_uri_and_qr_code() {
        let uri = otpauth_uri("Example Co", "alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Co:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg role=\"img\""));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn recovery_codes_are_normalized_before_hashing() {
        assert_eq!(
            recovery_digest("abcde-fghij"),
            recovery_digest(" ABCDE FGHIJ ")
        );
        assert_ne!(
            recovery_digest("abcde-fghij"),
            recovery_digest("abcde-fghik")
        );
    }
}
