//! ES256 with p256 0.14 as edgeid signed up to issue 12: `SigningKey::from_slice` on the raw
//! scalar (derives the public key: a base-point multiplication without precomputed
//! tables) and an RFC 6979 signature (another one).
use p256::ecdsa::signature::Signer as _;

fn main() {
    let Ok(key) = p256::ecdsa::SigningKey::from_slice(edgeid_signbench::ES256_SCALAR) else {
        std::process::exit(1)
    };
    let sig: p256::ecdsa::Signature = key.sign(edgeid_signbench::INPUT);
    edgeid_signbench::check(&sig.to_bytes(), 64);
}
