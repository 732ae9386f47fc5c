//! Small cryptographic building blocks: digests, constant-time comparison, random tokens and
//! sealing of private keys at rest.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ports::{PortError, Rng};

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| format!("base64url: {e}"))
}

/// SHA-256 as lowercase hex: how client secrets and the admin token are stored and compared.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Compares two secrets' digests in constant time.
pub fn digest_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A random, URL-safe token of `bytes` bytes of entropy.
pub fn random_token(rng: &impl Rng, bytes: usize) -> Result<String, PortError> {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf)?;
    Ok(b64url(&buf))
}

/// A rand_core 0.6 RNG for the crates that want one (RSA key generation), seeded from the Rng
/// port: ChaCha20 keyed with 32 fresh bytes is a CSPRNG.
pub fn seeded_rng(rng: &impl Rng) -> Result<rand_chacha::ChaCha20Rng, PortError> {
    use rand_core::SeedableRng as _;
    let mut seed = [0u8; 32];
    rng.fill(&mut seed)?;
    Ok(rand_chacha::ChaCha20Rng::from_seed(seed))
}

/// The key-encryption key: seals private signing keys before they reach SQL (DESIGN.md).
pub struct Kek(XChaCha20Poly1305);

impl Kek {
    /// Parses base64url (padding optional) of exactly 32 bytes.
    pub fn parse(raw: &str) -> Result<Kek, String> {
        let bytes = b64url_decode(raw.trim())
            .map_err(|_| "key_encryption_key is not base64url".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!(
                "key_encryption_key must be 32 bytes, got {}",
                bytes.len()
            ));
        }
        XChaCha20Poly1305::new_from_slice(&bytes)
            .map(Kek)
            .map_err(|_| "key_encryption_key has the wrong length".to_owned())
    }

    /// Seals `plaintext`, binding it to `context` (the key id) so a sealed key cannot be moved
    /// to another row. Output: base64url(nonce || ciphertext).
    pub fn seal(
        &self,
        rng: &impl Rng,
        context: &str,
        plaintext: &[u8],
    ) -> Result<String, PortError> {
        let mut nonce = [0u8; 24];
        rng.fill(&mut nonce)?;
        let ct = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| PortError::other("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(b64url(&out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, String> {
        // The caller takes ownership of the plaintext (a private key) and zeroizes it.
        let bytes = b64url_decode(sealed)?;
        if bytes.len() < 24 + 16 {
            return Err("sealed value too short".into());
        }
        let (nonce, ct) = bytes.split_at(24);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| format!("cannot open the sealed key {context}: wrong key_encryption_key?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;

    #[test]
    fn seal_round_trips_and_is_bound_to_its_context() {
        let rng = SeededRng::new(7);
        let kek = Kek::parse(&b64url(&[9u8; 32])).unwrap();
        let sealed = kek.seal(&rng, "kid-1", b"secret key").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"secret key");
        assert!(kek.open("kid-2", &sealed).is_err());
        let other = Kek::parse(&b64url(&[8u8; 32])).unwrap();
        assert!(other.open("kid-1", &sealed).is_err());
    }

    #[test]
    fn kek_must_be_32_bytes() {
        assert!(Kek::parse(&b64url(&[1u8; 16])).is_err());
        assert!(Kek::parse("not base64 !").is_err());
    }
}
