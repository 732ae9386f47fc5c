//! Password hashes of imported users, in every format Ory Kratos verifies
//! (`hash/hash_comparator.go`; the rules are summed up in the migration fixtures'
//! `FORMATS.md`), checked at sign-in and then replaced by edgeid's own argon2id hash
//! (DESIGN.md, "Moving in and out").
//!
//! [`parse`] reads a stored string once (pure, never panics: fuzzed) and either answers a
//! [`LegacyHash`] that [`LegacyHash::verify`] checks in constant time, or says why it cannot be
//! verified here ([`Unverifiable`]): an unknown or malformed format, a cost over this host's
//! bounds, or a format edgeid does not verify. The import reports such users and gives them a
//! welcome link instead.
//!
//! Cost bounds: an export is input, and a hostile one must not make one sign-in cost minutes
//! or more memory than the host has. Kratos' own bounds (`hash/hash_limits.go`) allow an
//! argon2 of 1 GiB × 10 passes or 10 million PBKDF2 rounds; edgeid verifies what real Kratos
//! deployments write (argon2id 128 MiB, bcrypt cost 12, PBKDF2 up to OWASP's figures, scrypt
//! N=2^14..2^17, SHA-crypt up to a million rounds) and reports more than that as
//! unverifiable.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD,
};
use subtle::ConstantTimeEq as _;

mod crypt;
mod digest;

use digest::Digest;

/// The longest stored hash taken (the longest real format, Firebase scrypt, is ~300 chars).
pub const MAX_HASH_LEN: usize = 1024;

/// The most memory one verification may take, in KiB. Kratos' argon2 default is 128 MiB
/// (131072 KiB); a Cloudflare Worker has 128 MB for everything, so there the bound is lower
/// and such hashes are reported as unverifiable at import.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub const MAX_MEMORY_KIB: u32 = 131_072;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub const MAX_MEMORY_KIB: u32 = 32_768;

/// argon2: at most this many KiB × passes (4 passes over 128 MiB, ~0.5 s natively).
pub const MAX_ARGON2_WORK: u64 = 4 * 131_072;
/// Kratos' argon2 bounds (`validateArgon2Params`): t ≤ 10, p ≤ 16.
pub const MAX_ARGON2_PASSES: u32 = 10;
pub const MAX_ARGON2_LANES: u32 = 16;
/// bcrypt: cost 14 is 4 × Kratos' default of 12 (~1 s natively); Kratos allows 15.
pub const MAX_BCRYPT_COST: u32 = 14;
/// PBKDF2: rounds × output blocks (OWASP 2023: 1.3 million for SHA-1, 600,000 for SHA-256).
pub const MAX_PBKDF2_WORK: u64 = 1_300_000;
/// scrypt: N × r × p (one pass over the largest memory Kratos allows, N=2^17, r=8).
pub const MAX_SCRYPT_WORK: u64 = 1 << 20;
/// SHA-crypt rounds (the crypt(3) default is 5,000; Kratos' test vectors use ~600,000).
pub const MAX_SHA_CRYPT_ROUNDS: u32 = 1_000_000;

/// The formats, in Kratos' order of selection (`supportedHashers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Md5Crypt,
    Bcrypt,
    Sha256Crypt,
    Sha512Crypt,
    Argon2id,
    Argon2i,
    Pbkdf2,
    Scrypt,
    Ssha,
    Sha,
    FirebaseScrypt,
    Md5,
    Hmac,
}

impl Scheme {
    /// The name the import report and the `password.upgraded` audit event use.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Md5Crypt => "md5-crypt",
            Scheme::Bcrypt => "bcrypt",
            Scheme::Sha256Crypt => "sha256-crypt",
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Argon2id => "argon2id",
            Scheme::Argon2i => "argon2i",
            Scheme::Pbkdf2 => "pbkdf2",
            Scheme::Scrypt => "scrypt",
            Scheme::Ssha => "ssha",
            Scheme::Sha => "sha",
            Scheme::FirebaseScrypt => "firescrypt",
            Scheme::Md5 => "md5",
            Scheme::Hmac => "hmac",
        }
    }

    /// Kratos' selection by prefix (`hash_comparator.go`): the first that matches decides.
    fn select(hash: &str) -> Option<Scheme> {
        let b = hash.as_bytes();
        let digits_then_dollar = |rest: &str, min: usize, max: usize| {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            (min..=max).contains(&n) && rest.as_bytes().get(n) == Some(&b'$')
        };
        if hash.starts_with("$md5-crypt$") {
            Some(Scheme::Md5Crypt)
        } else if b.first() == Some(&b'$')
            && b.get(1) == Some(&b'2')
            && (b.get(2) == Some(&b'$')
                || (matches!(b.get(2), Some(b'a' | b'b' | b'z' | b'y')) && b.get(3) == Some(&b'$')))
        {
            Some(Scheme::Bcrypt)
        } else if hash.starts_with("$sha256-crypt$") {
            Some(Scheme::Sha256Crypt)
        } else if hash.starts_with("$sha512-crypt$") {
            Some(Scheme::Sha512Crypt)
        } else if hash.starts_with("$argon2id$") {
            Some(Scheme::Argon2id)
        } else if hash.starts_with("$argon2i$") {
            Some(Scheme::Argon2i)
        } else if hash
            .strip_prefix("$pbkdf2-sha")
            .is_some_and(|r| digits_then_dollar(r, 1, 3))
        {
            Some(Scheme::Pbkdf2)
        } else if hash.starts_with("$scrypt$") {
            Some(Scheme::Scrypt)
        } else if hash.starts_with("{SSHA}")
            || hash.starts_with("{SSHA256}")
            || hash.starts_with("{SSHA512}")
        {
            Some(Scheme::Ssha)
        } else if ["$sha1$", "$sha256$", "$sha512$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            Some(Scheme::Sha)
        } else if hash.starts_with("$firescrypt$") {
            Some(Scheme::FirebaseScrypt)
        } else if hash.starts_with("$md5$") {
            Some(Scheme::Md5)
        } else if ["md4", "md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
            .iter()
            .any(|a| {
                hash.strip_prefix("$hmac-")
                    .is_some_and(|r| r.strip_prefix(a).is_some_and(|r| r.starts_with('$')))
            })
        {
            Some(Scheme::Hmac)
        } else {
            None
        }
    }
}

/// Why a stored hash cannot be verified here. The text is safe to show to the admin (it names
/// the format and the parameter, never the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverifiable {
    /// No format Kratos knows starts like this.
    UnknownFormat,
    /// The format is known but the string does not follow it.
    Malformed(Scheme, &'static str),
    /// Verifying it would cost more time or memory than this host allows.
    OverCost(Scheme, String),
    /// A format Kratos verifies and edgeid does not.
    Unsupported(Scheme, &'static str),
}

impl std::fmt::Display for Unverifiable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverifiable::UnknownFormat => {
                f.write_str("not a password hash format Kratos verifies")
            }
            Unverifiable::Malformed(s, why) => write!(f, "malformed {} hash: {why}", s.name()),
            Unverifiable::OverCost(s, why) => {
                write!(f, "{} hash over this host's cost bounds: {why}", s.name())
            }
            Unverifiable::Unsupported(s, why) => write!(f, "{} hashes: {why}", s.name()),
        }
    }
}

/// A parsed legacy hash, ready to verify.
#[derive(Clone)]
pub struct LegacyHash {
    scheme: Scheme,
    kind: Kind,
}

impl std::fmt::Debug for LegacyHash {
    // The derived output would print salts and digests into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyHash")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Kind {
    Argon2 {
        algorithm: argon2::Algorithm,
        m: u32,
        t: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Bcrypt {
        cost: u32,
        salt: [u8; 16],
        hash: Vec<u8>,
    },
    Pbkdf2 {
        prf: Digest,
        rounds: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    FirebaseScrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
        separator: Vec<u8>,
        signer_key: Vec<u8>,
    },
    /// digest(password ‖ salt) ‖ salt.
    Ssha {
        digest: Digest,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// digest(template with {SALT} and {PASSWORD} replaced); MD5 without a template is the
    /// plain digest of the password.
    Templated {
        digest: Digest,
        template: Option<Vec<u8>>,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// crypt(3) MD5 (`$1$`): the encoded hash.
    Md5Crypt { salt: Vec<u8>, hash: String },
    /// crypt(3) SHA-256 / SHA-512 (`$5$`, `$6$`): the encoded hash.
    ShaCrypt {
        sha512: bool,
        rounds: u32,
        salt: Vec<u8>,
        hash: String,
    },
    /// Base64 of the lower-case hex of HMAC(key, password).
    Hmac {
        digest: Digest,
        hex_mac: Vec<u8>,
        key: Vec<u8>,
    },
}

/// Go's `base64.StdEncoding.Strict()`: padded, canonical trailing bits.
const STD: GeneralPurpose = STANDARD;
/// Go's `base64.RawStdEncoding.Strict()`: unpadded, canonical trailing bits.
const RAW_STD: GeneralPurpose = STANDARD_NO_PAD;
/// Go's `base64.StdEncoding` without `Strict()` (SSHA): trailing bits not checked.
const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);
/// bcrypt's own alphabet (`./A-Za-z0-9`), unpadded; Go does not check trailing bits.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Reads a stored hash. Never panics, whatever the input.
pub fn parse(hash: &str) -> Result<LegacyHash, Unverifiable> {
    if hash.len() > MAX_HASH_LEN {
        return Err(Unverifiable::UnknownFormat);
    }
    let scheme = Scheme::select(hash).ok_or(Unverifiable::UnknownFormat)?;
    let malformed = |why| Unverifiable::Malformed(scheme, why);
    let over = |why: String| Unverifiable::OverCost(scheme, why);
    let kind = match scheme {
        Scheme::Md5Crypt => {
            let parts: Vec<&str> = hash.split('$').collect();
            let [_, _, salt, digest] = parts[..] else {
                return Err(malformed("expected $md5-crypt$<salt>$<hash>"));
            };
            if digest.len() != 22 || !digest.bytes().all(is_crypt64) {
                return Err(malformed("hash must be 22 characters of crypt base64"));
            }
            Kind::Md5Crypt {
                salt: salt.as_bytes().to_vec(),
                hash: digest.to_owned(),
            }
        }
        Scheme::Sha256Crypt | Scheme::Sha512Crypt => {
            let sha512 = scheme == Scheme::Sha512Crypt;
            let parts: Vec<&str> = hash.split('$').collect();
            let (rounds, salt, digest) = match parts[..] {
                [_, _, salt, digest] => (5000, salt, digest),
                [_, _, rounds, salt, digest] => {
                    let r = rounds
                        .strip_prefix("rounds=")
                        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|r| r.parse::<u32>().ok())
                        .ok_or_else(|| malformed("expected rounds=<n>"))?;
                    (r, salt, digest)
                }
                _ => return Err(malformed("expected [rounds=<n>$]<salt>$<hash>")),
            };
            let len = if sha512 { 86 } else { 43 };
            if digest.len() != len || !digest.bytes().all(is_crypt64) {
                return Err(malformed("hash is not crypt base64 of the digest's length"));
            }
            if rounds > MAX_SHA_CRYPT_ROUNDS {
                return Err(over(format!(
                    "{rounds} rounds is over {MAX_SHA_CRYPT_ROUNDS}"
                )));
            }
            Kind::ShaCrypt {
                sha512,
                rounds,
                salt: salt.as_bytes().to_vec(),
                hash: digest.to_owned(),
            }
        }
        Scheme::Argon2id | Scheme::Argon2i => {
            let parts: Vec<&str> = hash.split('$').collect();
            let [_, _, version, params, salt, digest] = parts[..] else {
                return Err(malformed("expected 6 fields separated by '$'"));
            };
            let v = scan(version, &["v"]).ok_or_else(|| malformed("no v=<version>"))?;
            if v[0] != 19 {
                return Err(Unverifiable::Unsupported(
                    scheme,
                    "only version 19 (0x13) is verified",
                ));
            }
            let [m, t, p] = scan(params, &["m", "t", "p"])
                .and_then(|v| <[u64; 3]>::try_from(v).ok())
                .ok_or_else(|| malformed("expected m=<KiB>,t=<passes>,p=<lanes>"))?;
            let (m, t) = (
                u32::try_from(m).map_err(|_| malformed("m out of range"))?,
                u32::try_from(t).map_err(|_| malformed("t out of range"))?,
            );
            // Go reads p into a uint8.
            let p = u8::try_from(p).map_err(|_| malformed("p out of range"))?;
            let p = u32::from(p);
            if m == 0 || t == 0 || p == 0 {
                return Err(malformed("m, t and p must be at least 1"));
            }
            if m > MAX_MEMORY_KIB {
                return Err(over(format!("memory {m} KiB is over {MAX_MEMORY_KIB} KiB")));
            }
            if t > MAX_ARGON2_PASSES || p > MAX_ARGON2_LANES {
                return Err(over(format!("t={t}, p={p}: at most t=10, p=16")));
            }
            if u64::from(m) * u64::from(t) > MAX_ARGON2_WORK {
                return Err(over(format!(
                    "m × t = {} KiB is over {MAX_ARGON2_WORK}",
                    u64::from(m) * u64::from(t)
                )));
            }
            if m < 8 * p {
                return Err(Unverifiable::Unsupported(
                    scheme,
                    "memory below 8 × lanes (Go's argon2 rounds it up; edgeid's does not)",
                ));
            }
            let salt = RAW_STD
                .decode(salt)
                .map_err(|_| malformed("salt is not unpadded base64"))?;
            let digest = RAW_STD
                .decode(digest)
                .map_err(|_| malformed("hash is not unpadded base64"))?;
            if !(argon2::MIN_SALT_LEN..=256).contains(&salt.len()) {
                return Err(malformed("salt must be 8 to 256 bytes"));
            }
            if !(argon2::Params::MIN_OUTPUT_LEN..=256).contains(&digest.len()) {
                return Err(malformed("hash must be 4 to 256 bytes"));
            }
            Kind::Argon2 {
                algorithm: if scheme == Scheme::Argon2id {
                    argon2::Algorithm::Argon2id
                } else {
                    argon2::Algorithm::Argon2i
                },
                m,
                t,
                p,
                salt,
                hash: digest,
            }
        }
        Scheme::Bcrypt => {
            // `$2$`, `$2a$`, `$2b$`, `$2y$`, `$2z$`: Go treats every minor the same.
            let rest = hash
                .strip_prefix("$2$")
                .or_else(|| hash.get(4..))
                .ok_or_else(|| malformed("too short"))?;
            let (cost, tail) = rest.split_once('$').ok_or_else(|| malformed("no cost"))?;
            if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("cost must be two digits"));
            }
            let cost: u32 = cost.parse().map_err(|_| malformed("cost"))?;
            if !(4..=31).contains(&cost) {
                return Err(malformed("cost must be 4 to 31"));
            }
            if cost > MAX_BCRYPT_COST {
                return Err(over(format!("cost {cost} is over {MAX_BCRYPT_COST}")));
            }
            if tail.len() != 53 || !tail.is_char_boundary(22) {
                return Err(malformed("expected 22 characters of salt and 31 of hash"));
            }
            let (salt_b64, hash_b64) = tail.split_at(22);
            let salt = BCRYPT_B64
                .decode(salt_b64)
                .ok()
                .and_then(|s| <[u8; 16]>::try_from(s).ok())
                .ok_or_else(|| malformed("salt is not bcrypt base64"))?;
            let digest = BCRYPT_B64
                .decode(hash_b64)
                .ok()
                .filter(|d| d.len() == 23)
                .ok_or_else(|| malformed("hash is not bcrypt base64"))?;
            Kind::Bcrypt {
                cost,
                salt,
                hash: digest,
            }
        }
        Scheme::Pbkdf2 => {
            let parts: Vec<&str> = hash.split('$').collect();
            let [_, alg, params, salt, digest] = parts[..] else {
                return Err(malformed("expected 5 fields separated by '$'"));
            };
            // `getPseudorandomFunctionForPbkdf2`: sha224 and sha384 are SHA-3 there, and any
            // other name the selection lets through is SHA-256.
            let prf = match alg.split_once('-').map_or("", |(_, d)| d) {
                "sha1" => Digest::Sha1,
                "sha512" => Digest::Sha512,
                "sha224" => Digest::Sha3_224,
                "sha384" => Digest::Sha3_384,
                _ => Digest::Sha256,
            };
            let [rounds, _l] = scan(params, &["i", "l"])
                .and_then(|v| <[u64; 2]>::try_from(v).ok())
                .ok_or_else(|| malformed("expected i=<rounds>,l=<length>"))?;
            let rounds = u32::try_from(rounds)
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| malformed("i must be 1 to 2^32-1"))?;
            let salt = RAW_STD
                .decode(salt)
                .map_err(|_| malformed("salt is not unpadded base64"))?;
            let digest = RAW_STD
                .decode(digest)
                .map_err(|_| malformed("hash is not unpadded base64"))?;
            if digest.is_empty() || digest.len() > 128 || salt.len() > 256 {
                return Err(malformed("hash must be 1 to 128 bytes, salt at most 256"));
            }
            let blocks = digest.len().div_ceil(prf.len()) as u64;
            if u64::from(rounds) * blocks > MAX_PBKDF2_WORK {
                return Err(over(format!(
                    "{rounds} rounds × {blocks} blocks is over {MAX_PBKDF2_WORK}"
                )));
            }
            Kind::Pbkdf2 {
                prf,
                rounds,
                salt,
                hash: digest,
            }
        }
        Scheme::Scrypt => {
            let parts: Vec<&str> = hash.split('$').collect();
            let [_, _, params, salt, digest] = parts[..] else {
                return Err(malformed("expected 5 fields separated by '$'"));
            };
            let [n, r, p] = scan(params, &["ln", "r", "p"])
                .and_then(|v| <[u64; 3]>::try_from(v).ok())
                .ok_or_else(|| malformed("expected ln=<N>,r=<r>,p=<p>"))?;
            // Kratos passes `ln` to scrypt as N itself, not log2 N.
            if n < 2 || !n.is_power_of_two() || n > u64::from(u32::MAX) {
                return Err(malformed("N (ln=) must be a power of two above 1"));
            }
            let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| malformed("N"))?;
            let salt = STD
                .decode(salt)
                .map_err(|_| malformed("salt is not padded base64"))?;
            let digest = STD
                .decode(digest)
                .map_err(|_| malformed("hash is not padded base64"))?;
            let (r, p) = scrypt_bounds(scheme, n, r, p)?;
            if !(10..=64).contains(&digest.len()) || salt.len() > 256 {
                return Err(malformed("hash must be 10 to 64 bytes, salt at most 256"));
            }
            Kind::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash: digest,
            }
        }
        Scheme::FirebaseScrypt => {
            let parts: Vec<&str> = hash.split('$').collect();
            let [_, _, params, salt, digest, separator, signer_key] = parts[..] else {
                return Err(malformed("expected 7 fields separated by '$'"));
            };
            let [ln, r, p] = scan(params, &["ln", "r", "p"])
                .and_then(|v| <[u64; 3]>::try_from(v).ok())
                .ok_or_else(|| malformed("expected ln=<log2 N>,r=<rounds>,p=<p>"))?;
            // Here `ln` is log2 N (Firebase's mem_cost).
            if !(1..=31).contains(&ln) {
                return Err(malformed("ln must be 1 to 31"));
            }
            let (r, p) = scrypt_bounds(scheme, 1u64 << ln, r, p)?;
            let decode = |s: &str| {
                STD.decode(s)
                    .map_err(|_| malformed("a field is not padded base64"))
            };
            let (salt, digest, separator, signer_key) = (
                decode(salt)?,
                decode(digest)?,
                decode(separator)?,
                decode(signer_key)?,
            );
            if digest.len() > 256 || signer_key.len() > 256 || salt.len() > 256 {
                return Err(malformed("fields must be at most 256 bytes"));
            }
            Kind::FirebaseScrypt {
                log_n: ln as u8,
                r,
                p,
                salt,
                hash: digest,
                separator,
                signer_key,
            }
        }
        Scheme::Ssha => {
            let (digest, b64) = if let Some(r) = hash.strip_prefix("{SSHA256}") {
                (Digest::Sha256, r)
            } else if let Some(r) = hash.strip_prefix("{SSHA512}") {
                (Digest::Sha512, r)
            } else {
                (Digest::Sha1, hash.strip_prefix("{SSHA}").unwrap_or(""))
            };
            let raw = STD_LENIENT
                .decode(b64)
                .map_err(|_| malformed("not padded base64"))?;
            if raw.len() <= digest.len() {
                return Err(malformed("no salt after the digest"));
            }
            let (h, s) = raw.split_at(digest.len());
            Kind::Ssha {
                digest,
                salt: s.to_vec(),
                hash: h.to_vec(),
            }
        }
        Scheme::Sha | Scheme::Md5 => {
            let parts: Vec<&str> = hash.split('$').collect();
            let digest = match parts.get(1).copied() {
                Some("sha1") => Digest::Sha1,
                Some("sha256") => Digest::Sha256,
                Some("sha512") => Digest::Sha512,
                _ => Digest::Md5,
            };
            match parts[..] {
                [_, "md5", d] => Kind::Templated {
                    digest,
                    template: None,
                    salt: Vec::new(),
                    hash: STD
                        .decode(d)
                        .map_err(|_| malformed("hash is not padded base64"))?,
                },
                [_, _, pf, salt, d] => {
                    let template = pf
                        .strip_prefix("pf=")
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| malformed("expected pf=<template>"))?;
                    Kind::Templated {
                        digest,
                        template: Some(
                            STD.decode(template)
                                .map_err(|_| malformed("template is not padded base64"))?,
                        ),
                        salt: STD
                            .decode(salt)
                            .map_err(|_| malformed("salt is not padded base64"))?,
                        hash: STD
                            .decode(d)
                            .map_err(|_| malformed("hash is not padded base64"))?,
                    }
                }
                _ => return Err(malformed("wrong number of '$' fields")),
            }
        }
        Scheme::Hmac => {
            let parts: Vec<&str> = hash.split('$').collect();
            let [_, alg, mac, key] = parts[..] else {
                return Err(malformed("expected 4 fields separated by '$'"));
            };
            let digest = match alg.strip_prefix("hmac-") {
                Some("md4") => Digest::Md4,
                Some("md5") => Digest::Md5,
                Some("sha1") => Digest::Sha1,
                Some("sha224") => Digest::Sha224,
                Some("sha256") => Digest::Sha256,
                Some("sha384") => Digest::Sha384,
                Some("sha512") => Digest::Sha512,
                _ => return Err(malformed("unknown HMAC digest")),
            };
            Kind::Hmac {
                digest,
                hex_mac: STD
                    .decode(mac)
                    .map_err(|_| malformed("mac is not padded base64"))?,
                key: STD
                    .decode(key)
                    .map_err(|_| malformed("key is not padded base64"))?,
            }
        }
    };
    Ok(LegacyHash { scheme, kind })
}

/// Kratos' scrypt bounds (`validateScryptParams`: N ≤ 2^17, 1 ≤ r ≤ 8, 1 ≤ p ≤ 10) and this
/// host's memory (128 × N × r bytes) and work (N × r × p) bounds.
fn scrypt_bounds(scheme: Scheme, n: u64, r: u64, p: u64) -> Result<(u32, u32), Unverifiable> {
    if !(1..=8).contains(&r) || !(1..=10).contains(&p) || n > (1 << 17) {
        return Err(Unverifiable::Malformed(
            scheme,
            "out of Kratos' bounds (N ≤ 131072, r 1-8, p 1-10)",
        ));
    }
    let kib = 128 * n * r / 1024;
    if kib > u64::from(MAX_MEMORY_KIB) {
        return Err(Unverifiable::OverCost(
            scheme,
            format!("memory {kib} KiB is over {MAX_MEMORY_KIB} KiB"),
        ));
    }
    if n * r * p > MAX_SCRYPT_WORK {
        return Err(Unverifiable::OverCost(
            scheme,
            format!("N × r × p = {} is over {MAX_SCRYPT_WORK}", n * r * p),
        ));
    }
    // Both fit: r ≤ 8, p ≤ 10.
    Ok((r as u32, p as u32))
}

/// `fmt.Sscanf(s, "k1=%d,k2=%d,...")`: the keys in order, each `key=<digits>`; text after the
/// last number is ignored, as Go does.
fn scan(s: &str, keys: &[&str]) -> Option<Vec<u64>> {
    let mut rest = s;
    let mut out = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(',')?;
        }
        rest = rest.strip_prefix(key)?.strip_prefix('=')?;
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        out.push(rest.get(..n)?.parse().ok()?);
        rest = rest.get(n..)?;
    }
    Some(out)
}

impl LegacyHash {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether `password` (its UTF-8 bytes as typed) matches, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match &self.kind {
            Kind::Argon2 {
                algorithm,
                m,
                t,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = argon2::Params::new(*m, *t, *p, Some(hash.len())) else {
                    return false;
                };
                let a = argon2::Argon2::new(*algorithm, argon2::Version::V0x13, params);
                let mut out = vec![0u8; hash.len()];
                if a.hash_password_into(password, salt, &mut out).is_err() {
                    return false;
                }
                ct_eq(&out, hash)
            }
            Kind::Bcrypt { cost, salt, hash } => {
                // Go's bcrypt keys Blowfish with the password and its NUL terminator, of which
                // the first 72 bytes count; Kratos refuses longer passwords for bcrypt.
                if password.len() > 72 {
                    return false;
                }
                let mut key = Vec::with_capacity(password.len() + 1);
                key.extend_from_slice(password);
                key.push(0);
                key.truncate(72);
                // `bcrypt` asserts 1..=72 key bytes and cost < 32: both hold here.
                let out = bcrypt::bcrypt(*cost, *salt, &key);
                ct_eq(&out[..23], hash)
            }
            Kind::Pbkdf2 {
                prf,
                rounds,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                prf.pbkdf2(password, salt, *rounds, &mut out);
                ct_eq(&out, hash)
            }
            Kind::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, hash.len()) else {
                    return false;
                };
                let mut out = vec![0u8; hash.len()];
                if scrypt::scrypt(password, salt, &params, &mut out).is_err() {
                    return false;
                }
                ct_eq(&out, hash)
            }
            Kind::FirebaseScrypt {
                log_n,
                r,
                p,
                salt,
                hash,
                separator,
                signer_key,
            } => {
                use aes::cipher::{KeyIvInit as _, StreamCipher as _};
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, 32) else {
                    return false;
                };
                let mut salted = salt.clone();
                salted.extend_from_slice(separator);
                let mut key = [0u8; 32];
                if scrypt::scrypt(password, &salted, &params, &mut key).is_err() {
                    return false;
                }
                let mut block = signer_key.clone();
                let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into());
                cipher.apply_keystream(&mut block);
                ct_eq(&block, hash)
            }
            Kind::Ssha { digest, salt, hash } => ct_eq(&digest.hash(&[password, salt]), hash),
            Kind::Templated {
                digest,
                template,
                salt,
                hash,
            } => {
                let computed = match template {
                    None => digest.hash(&[password]),
                    Some(t) => digest.hash(&[&fill_template(t, salt, password)]),
                };
                ct_eq(&computed, hash)
            }
            Kind::Md5Crypt { salt, hash } => {
                ct_eq(crypt::md5_crypt(password, salt).as_bytes(), hash.as_bytes())
            }
            Kind::ShaCrypt {
                sha512,
                rounds,
                salt,
                hash,
            } => crypt::sha_crypt(password, salt, *rounds, *sha512)
                .is_some_and(|c| ct_eq(c.as_bytes(), hash.as_bytes())),
            Kind::Hmac {
                digest,
                hex_mac,
                key,
            } => {
                let mac = hex::encode(digest.hmac(key, password));
                ct_eq(mac.as_bytes(), hex_mac)
            }
        }
    }
}

/// `strings.NewReplacer("{SALT}", salt, "{PASSWORD}", password)`: one left-to-right pass.
fn fill_template(template: &[u8], salt: &[u8], password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + salt.len() + password.len());
    let mut i = 0;
    while i < template.len() {
        let rest = &template[i..];
        if rest.starts_with(b"{SALT}") {
            out.extend_from_slice(salt);
            i += 6;
        } else if rest.starts_with(b"{PASSWORD}") {
            out.extend_from_slice(password);
            i += 10;
        } else {
            out.push(template[i]);
            i += 1;
        }
    }
    out
}

/// crypt(3)'s base64 alphabet `./0-9A-Za-z`.
fn is_crypt64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// Equal length and equal bytes, the bytes compared in constant time (the length of a stored
/// hash is no secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether `password` matches the legacy hash `stored`; false for anything [`parse`] refuses.
pub fn verify(stored: &str, password: &[u8]) -> bool {
    parse(stored).is_ok_and(|h| h.verify(password))
}

#[cfg(test)]
mod tests;
