//! The floor: a command that does nothing (std's start-up and the `wasi:cli/run` call only).
fn main() {
    std::hint::black_box(edgeid_signbench::INPUT);
}
