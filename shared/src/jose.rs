//! JOSE: signing keys, their public JWKs, and compact JWS framing (RFC 7515, 7517, 7518).
//!
//! ES256 signs with `p256` 0.14 directly (4x less CPU in wasm than through jwt-compact's p256
//! 0.13, TOOLCHAIN.md); RS256 signs through jwt-compact's `Rsa` algorithm. The JWS is framed
//! here because the signing port is async (a host may sign with WebCrypto), which
//! jwt-compact's synchronous `Algorithm::sign` cannot express.

use std::fmt;

use jwt_compact::Algorithm as _;
use jwt_compact::AlgorithmSignature as _;
use p256::ecdsa::signature::Signer as _;
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

/// A private signing key with its key id, kept as stored (before sealing): the raw scalar
/// for P-256, PKCS#8 DER for RSA. It is parsed only where it signs, so a signing port with
/// its own crypto (and its own key cache) never pays for a parse it does not use.
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

/// A parsed key, ready to sign.
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
        let private = match &material {
            KeyMaterial::Es256(k) => k.to_bytes().to_vec(),
            KeyMaterial::Rs256(k) => k
                .to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|e| PortError::other(format!("PKCS#8 encoding: {e}")))?,
        };
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
        match self.alg {
            Alg::ES256 => p256::ecdsa::SigningKey::from_slice(&self.private)
                .map(KeyMaterial::Es256)
                .map_err(|e| PortError::other(format!("P-256 key {}: {e}", self.kid))),
            Alg::RS256 => rsa::RsaPrivateKey::from_pkcs8_der(&self.private)
                .map(|k| KeyMaterial::Rs256(Box::new(k)))
                .map_err(|e| PortError::other(format!("RSA key {}: {e}", self.kid))),
        }
    }

    /// The public JWK of this key (parses it).
    pub fn public_jwk(&self) -> Result<Jwk, PortError> {
        Ok(public_jwk(&self.kid, &self.parse()?))
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

/// The software signer: the default of [`Ports::sign`].
pub fn software_sign(key: &PrivateKey, signing_input: &[u8]) -> Result<Vec<u8>, PortError> {
    match &key.parse()? {
        // RFC 7518 §3.4: the JWS signature is R || S, 32 bytes each.
        KeyMaterial::Es256(k) => {
            let sig: p256::ecdsa::Signature = k.sign(signing_input);
            Ok(sig.to_bytes().to_vec())
        }
        // RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256.
        KeyMaterial::Rs256(k) => Ok(jwt_compact::alg::Rsa::rs256()
            .sign(k, signing_input)
            .as_bytes()
            .to_vec()),
    }
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
    match alg {
        Alg::ES256 => {
            use p256::ecdsa::signature::Verifier as _;
            let (x, y) = (field(&jwk.x)?, field(&jwk.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err("bad EC key".into());
            }
            // SEC 1 §2.3.3 uncompressed point: 0x04 || X || Y.
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let key =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| "bad EC key")?;
            let sig =
                p256::ecdsa::Signature::from_slice(&signature).map_err(|_| "bad signature")?;
            key.verify(input.as_bytes(), &sig)
                .map_err(|_| "signature does not verify")?;
        }
        Alg::RS256 => {
            let n = rsa::BigUint::from_bytes_be(&field(&jwk.n)?);
            let e = rsa::BigUint::from_bytes_be(&field(&jwk.e)?);
            let key = rsa::RsaPublicKey::new(n, e).map_err(|_| "bad RSA key")?;
            let rs = jwt_compact::alg::Rsa::rs256();
            let sig = jwt_compact::alg::RsaSignature::try_from_slice(&signature)
                .map_err(|_| "bad signature")?;
            if !rs.verify_signature(&sig, &key, input.as_bytes()) {
                return Err("signature does not verify".into());
            }
        }
    }
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

    #[test]
    fn a_corrupt_private_key_is_an_error_not_a_panic() {
        let key = PrivateKey::from_private_bytes("k", Alg::RS256, vec![1, 2, 3]);
        assert!(software_sign(&key, b"x").is_err());
        let key = PrivateKey::from_private_bytes("k", Alg::ES256, vec![0; 32]);
        assert!(software_sign(&key, b"x").is_err());
    }
}
