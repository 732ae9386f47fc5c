//! ES256 with ring 0.17 from PKCS#8 (ring checks the stored public key against the private
//! one: a fixed-base multiplication with its static tables) and one signature.
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

fn main() {
    let rng = ring::rand::SystemRandom::new();
    let Ok(key) = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        edgeid_signbench::ES256_PKCS8,
        &rng,
    ) else {
        std::process::exit(1)
    };
    let Ok(sig) = key.sign(&rng, edgeid_signbench::INPUT) else {
        std::process::exit(1)
    };
    edgeid_signbench::check(sig.as_ref(), 64);
}
