//! ES256 with p256 0.14 from the scalar alone: no public-key derivation, one RFC 6979
//! signature (ecdsa's hazmat entry point, which `SigningKey::sign` calls too).
use ecdsa::signature::digest::Digest as _;

/// The digest ES256 uses (RFC 7518 §3.4), as p256's ECDSA names it.
type Sha256 = <p256::NistP256 as ecdsa::DigestAlgorithm>::Digest;

fn main() {
    let Ok(d) = p256::NonZeroScalar::try_from(edgeid_signbench::ES256_SCALAR) else {
        std::process::exit(1)
    };
    let z = Sha256::digest(edgeid_signbench::INPUT);
    let (sig, _) =
        ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, Sha256>(&d, z.as_slice(), &[]);
    edgeid_signbench::check(&sig.to_bytes(), 64);
}
