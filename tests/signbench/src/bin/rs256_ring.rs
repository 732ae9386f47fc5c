//! RS256 with ring 0.17: `RsaKeyPair::from_pkcs8` (validates the key, precomputes its
//! Montgomery constants) and one RSASSA-PKCS1-v1_5 signature (CRT, checked before release).
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

fn main() {
    let Ok(key) = RsaKeyPair::from_pkcs8(edgeid_signbench::RS256_PKCS8) else {
        std::process::exit(1)
    };
    let rng = ring::rand::SystemRandom::new();
    let mut sig = vec![0u8; key.public().modulus_len()];
    if key
        .sign(&RSA_PKCS1_SHA256, &rng, edgeid_signbench::INPUT, &mut sig)
        .is_err()
    {
        std::process::exit(1)
    }
    edgeid_signbench::check(&sig, 256);
}
