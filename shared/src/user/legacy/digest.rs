//! The digests, HMACs and PBKDF2 PRFs the legacy formats name.

use hmac::Hmac;

/// A hash function a legacy format names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Digest {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_384,
}

impl Digest {
    pub(super) fn len(self) -> usize {
        match self {
            Digest::Md4 | Digest::Md5 => 16,
            Digest::Sha1 => 20,
            Digest::Sha224 | Digest::Sha3_224 => 28,
            Digest::Sha256 => 32,
            Digest::Sha384 | Digest::Sha3_384 => 48,
            Digest::Sha512 => 64,
        }
    }

    pub(super) fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Digest::Md4 => run::<md4::Md4>(parts),
            Digest::Md5 => run::<md5::Md5>(parts),
            Digest::Sha1 => run::<sha1::Sha1>(parts),
            Digest::Sha224 => run::<sha2::Sha224>(parts),
            Digest::Sha256 => run::<sha2::Sha256>(parts),
            Digest::Sha384 => run::<sha2::Sha384>(parts),
            Digest::Sha512 => run::<sha2::Sha512>(parts),
            Digest::Sha3_224 => run::<sha3::Sha3_224>(parts),
            Digest::Sha3_384 => run::<sha3::Sha3_384>(parts),
        }
    }

    pub(super) fn hmac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        fn run<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length.
            let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Digest::Md4 => run::<Hmac<md4::Md4>>(key, msg),
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, msg),
            Digest::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
            Digest::Sha224 => run::<Hmac<sha2::Sha224>>(key, msg),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, msg),
            Digest::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
            Digest::Sha3_224 => run::<Hmac<sha3::Sha3_224>>(key, msg),
            Digest::Sha3_384 => run::<Hmac<sha3::Sha3_384>>(key, msg),
        }
    }

    pub(super) fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        use pbkdf2::pbkdf2_hmac;
        match self {
            Digest::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, out),
            Digest::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
            Digest::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, out),
            Digest::Sha3_224 => pbkdf2_hmac::<sha3::Sha3_224>(password, salt, rounds, out),
            Digest::Sha3_384 => pbkdf2_hmac::<sha3::Sha3_384>(password, salt, rounds, out),
            // Not a PBKDF2 PRF Kratos maps to (`getPseudorandomFunctionForPbkdf2`).
            _ => pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
        }
    }
}
