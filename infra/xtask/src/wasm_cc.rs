//! The C toolchain the wasm builds need: `ring` (edgeid's signer, issue 12) compiles C for
//! `wasm32-wasip2` and `wasm32-unknown-unknown`, which takes a clang with the wasm backend and
//! an llvm-ar. `.cargo/config.toml` points `CC_wasm32_*`/`AR_wasm32_*` at Debian's `clang-19`
//! and `llvm-ar-19` (environment values win).

use std::process::Command;

use anyhow::bail;

use crate::host::{on_path, run};

/// Installs `clang-19` and `llvm-19` with apt-get unless both tools are on `PATH`, or unless
/// the environment names other ones (idempotent; `sudo` only when not root).
pub fn install() -> anyhow::Result<()> {
    let named = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    let cc = named("CC_wasm32_wasip2", "clang-19");
    let ar = named("AR_wasm32_wasip2", "llvm-ar-19");
    if on_path(&cc) && on_path(&ar) {
        return Ok(());
    }
    if (cc, ar) != ("clang-19".to_owned(), "llvm-ar-19".to_owned()) || !on_path("apt-get") {
        bail!(
            "the wasm builds need a clang with the wasm backend and llvm-ar (ring's C code): \
             install clang-19 and llvm-19, or set CC_wasm32_wasip2/AR_wasm32_wasip2 and \
             CC_wasm32_unknown_unknown/AR_wasm32_unknown_unknown to the ones you have"
        );
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "clang-19",
        "llvm-19",
    ])
}
