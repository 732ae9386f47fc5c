//! RS256 with rsa 0.9 as edgeid signed up to issue 12 (jwt-compact's `Rsa::rs256`):
//! `from_pkcs8_der` and a blinded RSASSA-PKCS1-v1_5 signature. Digit width by the
//! `u64_digit` feature.
use rsa::pkcs8::DecodePrivateKey as _;
use sha2::Digest as _;

fn main() {
    let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_der(edgeid_signbench::RS256_PKCS8) else {
        std::process::exit(1)
    };
    let digest = sha2::Sha256::digest(edgeid_signbench::INPUT);
    let Ok(sig) = key.sign_with_rng(
        &mut rand_core::OsRng,
        rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        &digest,
    ) else {
        std::process::exit(1)
    };
    edgeid_signbench::check(&sig, 256);
}
