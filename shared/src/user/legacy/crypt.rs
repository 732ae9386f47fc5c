//! The crypt(3) family as Kratos stores it (`$md5-crypt$`, `$sha256-crypt$`, `$sha512-crypt$`:
//! `hash_comparator.go` rewrites them to `$1$`, `$5$`, `$6$` for `github.com/go-crypt/crypt`).
//!
//! SHA-crypt is Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" (the `sha-crypt` crate);
//! MD5-crypt is Poul-Henning Kamp's FreeBSD algorithm, written out here because no maintained
//! crate of the RustCrypto family implements it (it is 30 lines of MD5 calls).

use md5::{Digest as _, Md5};

/// crypt(3)'s base64 alphabet.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt of `password` with `salt` (at most 8 bytes count): the 22 characters after the
/// salt's `$`.
pub(super) fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$1$";
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    let mut out = String::with_capacity(22);
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put(
            (u32::from(fin[a]) << 16) | (u32::from(fin[b]) << 8) | u32::from(fin[c]),
            4,
        );
    }
    put(u32::from(fin[11]), 2);
    out
}

/// SHA-256-crypt (`sha512 == false`) or SHA-512-crypt of `password`: the encoded hash after the
/// salt's `$`. `None` for rounds the algorithm refuses (it takes 1,000 to 999,999,999).
pub(super) fn sha_crypt(password: &[u8], salt: &[u8], rounds: u32, sha512: bool) -> Option<String> {
    // Drepper's spec: at most 16 salt bytes count; fewer than 1,000 rounds mean 1,000.
    let salt = &salt[..salt.len().min(16)];
    let rounds = usize::try_from(rounds.max(1000)).ok()?;
    if sha512 {
        let params = sha_crypt::Sha512Params::new(rounds).ok()?;
        sha_crypt::sha512_crypt_b64(password, salt, &params).ok()
    } else {
        let params = sha_crypt::Sha256Params::new(rounds).ok()?;
        sha_crypt::sha256_crypt_b64(password, salt, &params).ok()
    }
}
