//! The floor plus 32 random bytes through ring's `SystemRandom` (getrandom 0.2, which imports
//! WASI preview 1: the component carries the preview-1 adapter, as edgeid's components
//! already do), to tell the adapter's share of the ring rows from the signing.
use ring::rand::SecureRandom as _;

fn main() {
    let mut bytes = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        std::process::exit(1)
    }
    edgeid_signbench::check(&bytes, 32);
}
