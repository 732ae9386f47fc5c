//! ring's RS256 key loading alone (`RsaKeyPair::from_pkcs8`: validation and Montgomery
//! constants), to split the rs256_ring row into loading and signing.
fn main() {
    let Ok(key) = ring::signature::RsaKeyPair::from_pkcs8(edgeid_signbench::RS256_PKCS8) else {
        std::process::exit(1)
    };
    edgeid_signbench::check(&vec![0; key.public().modulus_len()], 256);
}
