//! JOSE: signing keys, their public JWKs, and compact JWS framing (RFC 7515, 7517, 7518).
//!
//! Signatures and their verification go through `ring` 0.17 on every host (issue 12): its
//! P-256 uses static base-point tables and 32-bit limbs on wasm, so a fresh wasm instance (a
//! Spin request) pays no table building, and its RSA is the fastest pure-wasm RS256 measured
//! (`cargo xtask bench sign`). `p256` and `rsa` remain for key generation (ring cannot draw
//! from the [`Rng`] port: its random source is sealed) and the public JWK. The JWS is framed
//! here because the signing port is async (a host may sign with WebCrypto).
//!
//! ring draws its ECDSA nonces' randomness (hedged with the private key) and nothing else from
//! the host's CSPRNG through `getrandom` itself, not through the [`Rng`] port: the one place
//! the core is not sans-IO, and a signature's bytes are the only thing it changes.

use std::fmt;

use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};

use crate::crypto::{b64url, sha256};
use crate::ports::{PortError, Ports, Rng};

/// JWS algorithms edgeid signs with (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    RS256,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::RS256, Alg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "ES256" => Some(Alg::ES256),
            "RS256" => Some(Alg::RS256),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RSA modulus size. 2048 bits is what RS256 relying parties universally accept.
pub const RSA_BITS: usize = 2048;

/// A private signing key with its key id, kept as stored (before sealing): PKCS#8 v1 DER
/// (RFC 5958) for both algorithms; for P-256 its ECPrivateKey carries the public key
/// (RFC 5915 §3), so ring loads it without another parse. Keys stored before issue 12 hold the
/// raw 32-byte P-256 scalar: they still load (deriving the public key on every load), and
/// [`PrivateKey::upgraded`] re-encodes them, which key rotation does. It is parsed only where
/// it signs, so a signing port with its own crypto (and its own key cache) never pays for a
/// parse it does not use.
pub struct PrivateKey {
    pub kid: String,
    pub alg: Alg,
    private: zeroize::Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// A parsed key in the pure-Rust crates: what key generation makes and the public JWK is read
/// from (signing goes through [`Signer`]).
pub enum KeyMaterial {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::RsaPrivateKey>),
}

impl PrivateKey {
    /// Generates a key and its public JWK. RSA generation is slow in wasm (~0.4-1.8 s): only
    /// the admin API and the CLI call this, never a user-facing path (DESIGN.md).
    pub fn generate(alg: Alg, rng: &impl Rng) -> Result<(PrivateKey, Jwk), PortError> {
        let material = match alg {
            Alg::ES256 => loop {
                let mut scalar = zeroize::Zeroizing::new([0u8; 32]);
                rng.fill(scalar.as_mut())?;
                // Fails only for zero or a scalar >= the group order (probability ~2^-32).
                if let Ok(key) = p256::ecdsa::SigningKey::from_slice(scalar.as_ref()) {
                    break KeyMaterial::Es256(key);
                }
            },
            Alg::RS256 => {
                let mut seeded = crate::crypto::seeded_rng(rng)?;
                let key = rsa::RsaPrivateKey::new(&mut seeded, RSA_BITS)
                    .map_err(|e| PortError::other(format!("RSA key generation: {e}")))?;
                KeyMaterial::Rs256(Box::new(key))
            }
        };
        let kid = thumbprint(&material);
        let private = pkcs8(&material)?;
        let jwk = public_jwk(&kid, &material);
        Ok((
            PrivateKey {
                kid,
                alg,
                private: zeroize::Zeroizing::new(private),
            },
            jwk,
        ))
    }

    pub fn from_private_bytes(kid: &str, alg: Alg, bytes: Vec<u8>) -> PrivateKey {
        PrivateKey {
            kid: kid.to_owned(),
            alg,
            private: zeroize::Zeroizing::new(bytes),
        }
    }

    /// The private part as stored (sealed before it reaches SQL).
    pub fn private_bytes(&self) -> &[u8] {
        &self.private
    }

    pub fn parse(&self) -> Result<KeyMaterial, PortError> {
        let bad =
            |e: &dyn fmt::Display| PortError::other(format!("{} key {}: {e}", self.alg, self.kid));
        match self.alg {
            Alg::ES256 if self.is_raw_scalar() => {
                p256::ecdsa::SigningKey::from_slice(&self.private).map_err(|e| bad(&e))
            }
            Alg::ES256 => {
                p256::ecdsa::SigningKey::from_pkcs8_der(&self.private).map_err(|e| bad(&e))
            }
            Alg::RS256 => {
                return rsa::RsaPrivateKey::from_pkcs8_der(&self.private)
                    .map(|k| KeyMaterial::Rs256(Box::new(k)))
                    .map_err(|e| bad(&e));
            }
        }
        .map(KeyMaterial::Es256)
    }

    /// A P-256 key in the form stored before issue 12 (the raw scalar, not PKCS#8).
    pub fn is_raw_scalar(&self) -> bool {
        self.alg == Alg::ES256 && self.private.len() == 32
    }

    /// This key in today's stored form when it is in an older one (a raw P-256 scalar), so
    /// it can be re-sealed once instead of deriving its public key on every load.
    pub fn upgraded(&self) -> Result<Option<PrivateKey>, PortError> {
        if !self.is_raw_scalar() {
            return Ok(None);
        }
        Ok(Some(PrivateKey {
            kid: self.kid.clone(),
            alg: self.alg,
            private: zeroize::Zeroizing::new(pkcs8(&self.parse()?)?),
        }))
    }

    /// The public JWK of this key (parses it).
    pub fn public_jwk(&self) -> Result<Jwk, PortError> {
        Ok(public_jwk(&self.kid, &self.parse()?))
    }
}

/// The stored form (PKCS#8 v1; for P-256 with the public key, RFC 5915 §3).
fn pkcs8(material: &KeyMaterial) -> Result<Vec<u8>, PortError> {
    // p256 and rsa use different pkcs8 crate versions: one error type each.
    let failed = |e: &dyn fmt::Display| PortError::other(format!("PKCS#8 encoding: {e}"));
    match material {
        KeyMaterial::Es256(k) => k
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| failed(&e)),
        KeyMaterial::Rs256(k) => k
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| failed(&e)),
    }
}

/// The public JWK (RFC 7517 §4, RFC 7518 §6): public members only, plus `kid`, `use`, `alg`.
pub fn public_jwk(kid: &str, material: &KeyMaterial) -> Jwk {
    let (kty, crv, x, y, n, e) = public_members(material);
    let alg = match material {
        KeyMaterial::Es256(_) => Alg::ES256,
        KeyMaterial::Rs256(_) => Alg::RS256,
    };
    Jwk {
        kty,
        crv,
        x,
        y,
        n,
        e,
        kid: kid.to_owned(),
        r#use: "sig".into(),
        alg,
    }
}

/// A public JSON Web Key as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    pub kid: String,
    pub r#use: String,
    pub alg: Alg,
}

type PublicMembers = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn public_members(material: &KeyMaterial) -> PublicMembers {
    match material {
        KeyMaterial::Es256(k) => {
            let point = k.verifying_key().to_sec1_point(false);
            let coord = |c: Option<&p256::FieldBytes>| c.map(|b| b64url(b));
            (
                "EC".into(),
                Some("P-256".into()),
                coord(point.x()),
                coord(point.y()),
                None,
                None,
            )
        }
        KeyMaterial::Rs256(k) => {
            let n = b64url(&k.n().to_bytes_be());
            let e = b64url(&k.e().to_bytes_be());
            ("RSA".into(), None, None, None, Some(n), Some(e))
        }
    }
}

/// The key id: the RFC 7638 JWK thumbprint (SHA-256 over the required members in
/// lexicographic order), so a kid names exactly one key.
fn thumbprint(material: &KeyMaterial) -> String {
    let (kty, crv, x, y, n, e) = public_members(material);
    let canonical = match kty.as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            crv.unwrap_or_default(),
            x.unwrap_or_default(),
            y.unwrap_or_default()
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            e.unwrap_or_default(),
            n.unwrap_or_default()
        ),
    };
    b64url(&sha256(canonical.as_bytes()))
}

/// A key loaded into ring, ready to sign; a host that keeps instances (native threads) may
/// cache it by `kid`, which names exactly one key (RFC 7638 thumbprint).
pub enum Signer {
    Es256(ring::signature::EcdsaKeyPair),
    Rs256(ring::signature::RsaKeyPair),
}

impl Signer {
    pub fn load(key: &PrivateKey) -> Result<Signer, PortError> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING as ES256, EcdsaKeyPair, RsaKeyPair};
        let rejected =
            |e: ring::error::KeyRejected| PortError::other(format!("key {}: {e}", key.kid));
        let rng = ring::rand::SystemRandom::new();
        match key.alg {
            // Stored before issue 12: the public key has to be derived first.
            Alg::ES256 if key.is_raw_scalar() => {
                // p256 directly rather than `key.parse()`, whose RSA arm would link the `rsa`
                // crate's key parser into every component that signs (issue 12, item 1).
                let k = p256::ecdsa::SigningKey::from_slice(key.private_bytes())
                    .map_err(|e| PortError::other(format!("ES256 key {}: {e}", key.kid)))?;
                let public = k.verifying_key().to_sec1_point(false);
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ES256,
                    key.private_bytes(),
                    public.as_bytes(),
                    &rng,
                )
                .map(Signer::Es256)
                .map_err(rejected)
            }
            Alg::ES256 => EcdsaKeyPair::from_pkcs8(&ES256, key.private_bytes(), &rng)
                .map(Signer::Es256)
                .map_err(rejected),
            Alg::RS256 => RsaKeyPair::from_pkcs8(key.private_bytes())
                .map(Signer::Rs256)
                .map_err(rejected),
        }
    }

    /// The raw JWS signature (RFC 7515 §5.1 step 5).
    pub fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, PortError> {
        let rng = ring::rand::SystemRandom::new();
        let failed = |_| PortError::other("signing failed");
        match self {
            // RFC 7518 §3.4: R || S, 32 bytes each — ring's FIXED encoding.
            Signer::Es256(k) => Ok(k
                .sign(&rng, signing_input)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            // RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256.
            Signer::Rs256(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &rng,
                    signing_input,
                    &mut sig,
                )
                .map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

/// Keys this instance (thread) loaded into ring, newest last, at most [`LOADED_KEYS`]. An entry
/// is reused only for the very same stored bytes, so it can never sign with other material than
/// asked for. On a WASIp2 host (a fresh instance per request) it saves the second load of a
/// request that signs twice with one key (an ES256 access token and ID token); where instances
/// are reused (Spin's WASIp3 build) it saves loading on every request after the first.
const LOADED_KEYS: usize = 4;

type Loaded = (zeroize::Zeroizing<Vec<u8>>, std::rc::Rc<Signer>);

thread_local! {
    static LOADED: std::cell::RefCell<Vec<Loaded>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The software signer: the default of [`Ports::sign`] (Spin; the in-memory tests). Loads the
/// key into ring unless this instance already did, then signs.
pub fn software_sign(key: &PrivateKey, signing_input: &[u8]) -> Result<Vec<u8>, PortError> {
    use subtle::ConstantTimeEq as _;
    let cached = LOADED.with(|l| {
        l.borrow()
            .iter()
            .find(|(bytes, _)| bool::from(bytes.as_slice().ct_eq(key.private_bytes())))
            .map(|(_, signer)| std::rc::Rc::clone(signer))
    });
    let signer = match cached {
        Some(signer) => signer,
        None => {
            let signer = std::rc::Rc::new(Signer::load(key)?);
            LOADED.with(|l| {
                let mut l = l.borrow_mut();
                if l.len() >= LOADED_KEYS {
                    l.remove(0);
                }
                l.push((
                    zeroize::Zeroizing::new(key.private_bytes().to_vec()),
                    std::rc::Rc::clone(&signer),
                ));
            });
            signer
        }
    };
    signer.sign(signing_input)
}

/// Signs `claims` as a compact JWS (RFC 7515 §7.1) with header `alg`, `kid` and `typ`.
pub async fn sign_jwt<P: Ports, C: Serialize>(
    ports: &P,
    key: &PrivateKey,
    typ: &str,
    claims: &C,
) -> Result<String, PortError> {
    let header = serde_json::json!({ "alg": key.alg, "kid": key.kid, "typ": typ });
    let header = serde_json::to_vec(&header).map_err(PortError::other)?;
    let claims = serde_json::to_vec(claims).map_err(PortError::other)?;
    let mut jws = format!("{}.{}", b64url(&header), b64url(&claims));
    let signature = ports.sign(key, jws.as_bytes()).await?;
    jws.push('.');
    jws.push_str(&b64url(&signature));
    Ok(jws)
}

/// A compact JWS whose signature verified against one of our published keys.
#[derive(Debug, Clone)]
pub struct Verified {
    pub alg: Alg,
    pub kid: String,
    pub typ: Option<String>,
    pub claims: serde_json::Value,
}

/// Verifies a compact JWS (RFC 7515 §5.2) signed by one of edgeid's own keys, looked up by
/// `kid` among `keys`. Only ES256 and RS256 are accepted: `alg: none` and every other value
/// are refused (OIDC Core §3.1.3.7 step 6 for ID tokens). Claims are not checked here.
pub fn verify(token: &str, keys: &[Jwk]) -> Result<Verified, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS".into());
    };
    let header: serde_json::Value = serde_json::from_slice(&crate::crypto::b64url_decode(h)?)
        .map_err(|e| format!("header: {e}"))?;
    let alg = header["alg"]
        .as_str()
        .and_then(Alg::parse)
        .ok_or("unsupported alg")?;
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwk = keys.iter().find(|k| k.kid == kid).ok_or("unknown kid")?;
    let signature = crate::crypto::b64url_decode(sig)?;
    let input = &token[..h.len() + 1 + p.len()];
    let field = |v: &Option<String>| -> Result<Vec<u8>, String> {
        crate::crypto::b64url_decode(v.as_deref().ok_or("incomplete JWK")?)
    };
    let verified = match alg {
        Alg::ES256 => {
            let (x, y) = (field(&jwk.x)?, field(&jwk.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err("bad EC key".into());
            }
            // SEC 1 §2.3.3 uncompressed point: 0x04 || X || Y.
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, sec1)
                .verify(input.as_bytes(), &signature)
        }
        Alg::RS256 => ring::signature::RsaPublicKeyComponents {
            n: field(&jwk.n)?,
            e: field(&jwk.e)?,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &signature,
        ),
    };
    verified.map_err(|_| "signature does not verify")?;
    let claims = serde_json::from_slice(&crate::crypto::b64url_decode(p)?)
        .map_err(|e| format!("claims: {e}"))?;
    Ok(Verified {
        alg,
        kid: kid.to_owned(),
        typ: header["typ"].as_str().map(str::to_owned),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;
    use p256::ecdsa::signature::Verifier as _;

    #[test]
    fn es256_signature_verifies_and_key_round_trips() {
        let rng = SeededRng::new(1);
        let (key, jwk) = PrivateKey::generate(Alg::ES256, &rng).unwrap();
        let sig = software_sign(&key, b"input").unwrap();
        assert_eq!(sig.len(), 64);
        let KeyMaterial::Es256(k) = key.parse().unwrap() else {
            panic!("ES256 key")
        };
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        k.verifying_key().verify(b"input", &sig).unwrap();

        let again =
            PrivateKey::from_private_bytes(&key.kid, Alg::ES256, key.private_bytes().to_vec());
        assert_eq!(again.public_jwk().unwrap(), jwk);
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        let rng = SeededRng::new(2);
        let (key, jwk) = PrivateKey::generate(Alg::ES256, &rng).unwrap();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.x.unwrap(),
            jwk.y.unwrap()
        );
        assert_eq!(key.kid, b64url(&sha256(canonical.as_bytes())));
    }

    /// A compact JWS over `claims` signed by the software signer.
    fn jws(key: &PrivateKey, claims: &str) -> String {
        let header = format!(r#"{{"alg":"{}","kid":"{}"}}"#, key.alg, key.kid);
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(claims.as_bytes())
        );
        let sig = software_sign(key, input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(&sig))
    }

    #[test]
    fn issue12_es256_keys_are_stored_as_pkcs8_carrying_the_public_key() {
        let (key, jwk) = PrivateKey::generate(Alg::ES256, &SeededRng::new(3)).unwrap();
        assert!(!key.is_raw_scalar());
        // ring's own PKCS#8 loader takes it as it is: no public-key derivation by us.
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            key.private_bytes(),
            &rng,
        )
        .unwrap();
        use ring::signature::KeyPair as _;
        let point = pair.public_key().as_ref();
        assert_eq!(b64url(&point[1..33]), jwk.x.clone().unwrap());
        assert_eq!(b64url(&point[33..]), jwk.y.clone().unwrap());
        let verified = verify(&jws(&key, r#"{"sub":"a"}"#), &[jwk]).unwrap();
        assert_eq!(verified.claims["sub"], "a");
        assert!(key.upgraded().unwrap().is_none());
    }

    #[test]
    fn issue12_a_raw_scalar_key_stored_before_issue_12_still_signs_and_upgrades() {
        let (key, jwk) = PrivateKey::generate(Alg::ES256, &SeededRng::new(4)).unwrap();
        let KeyMaterial::Es256(k) = key.parse().unwrap() else {
            panic!("ES256 key")
        };
        let legacy = PrivateKey::from_private_bytes(&key.kid, Alg::ES256, k.to_bytes().to_vec());
        assert!(legacy.is_raw_scalar());
        assert_eq!(legacy.public_jwk().unwrap(), jwk);
        verify(
            &jws(&legacy, r#"{"sub":"old"}"#),
            std::slice::from_ref(&jwk),
        )
        .unwrap();

        let upgraded = legacy
            .upgraded()
            .unwrap()
            .expect("a raw scalar is upgraded");
        assert!(!upgraded.is_raw_scalar());
        assert_eq!(upgraded.private_bytes(), key.private_bytes());
        verify(&jws(&upgraded, r#"{"sub":"new"}"#), &[jwk]).unwrap();
    }

    #[test]
    fn issue12_rs256_signatures_verify_and_a_tampered_one_does_not() {
        let (key, jwk) = PrivateKey::generate(Alg::RS256, &SeededRng::new(5)).unwrap();
        let token = jws(&key, r#"{"sub":"r"}"#);
        assert_eq!(
            verify(&token, std::slice::from_ref(&jwk)).unwrap().alg,
            Alg::RS256
        );
        let tampered = token.replacen(".ey", ".eX", 1);
        assert!(verify(&tampered, &[jwk]).is_err());
    }

    #[test]
    fn issue12_a_loaded_key_is_reused_only_for_the_same_stored_bytes() {
        let (key, jwk) = PrivateKey::generate(Alg::ES256, &SeededRng::new(6)).unwrap();
        verify(&jws(&key, "{}"), std::slice::from_ref(&jwk)).unwrap();
        // Same kid, other bytes: loaded afresh (and refused), never served from the cache.
        let corrupt = PrivateKey::from_private_bytes(&key.kid, Alg::ES256, vec![0; 40]);
        assert!(software_sign(&corrupt, b"x").is_err());
        let (other, other_jwk) = PrivateKey::generate(Alg::ES256, &SeededRng::new(7)).unwrap();
        let renamed =
            PrivateKey::from_private_bytes(&key.kid, Alg::ES256, other.private_bytes().to_vec());
        let token = jws(&renamed, "{}");
        assert!(verify(&token, std::slice::from_ref(&jwk)).is_err());
        let other_jwk = Jwk {
            kid: key.kid.clone(),
            ..other_jwk
        };
        verify(&token, &[other_jwk]).unwrap();
        // More keys than the cache holds still sign.
        for seed in 10..16 {
            let (k, j) = PrivateKey::generate(Alg::ES256, &SeededRng::new(seed)).unwrap();
            verify(&jws(&k, "{}"), &[j]).unwrap();
        }
    }

    #[test]
    fn a_corrupt_private_key_is_an_error_not_a_panic() {
        let key = PrivateKey::from_private_bytes("k", Alg::RS256, vec![1, 2, 3]);
        assert!(software_sign(&key, b"x").is_err());
        let key = PrivateKey::from_private_bytes("k", Alg::ES256, vec![0; 32]);
        assert!(software_sign(&key, b"x").is_err());
    }
}
