//! ring's ES256 key loading alone (`EcdsaKeyPair::from_pkcs8`), to split the es256_ring row
//! into loading and signing. ring always checks the stored public key by deriving it.
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

fn main() {
    let rng = ring::rand::SystemRandom::new();
    let Ok(key) = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        edgeid_signbench::ES256_PKCS8,
        &rng,
    ) else {
        std::process::exit(1)
    };
    edgeid_signbench::check(key.public_key().as_ref(), 65);
}
