//! `cargo xtask bench sign`: the wasm signing micro-benchmark (issue 12, items 2 and 5).
//!
//! Each signer candidate is a WASI command in `tests/signbench` that loads the bench key from
//! its stored form and signs a 123-byte JWS signing input once. The runner
//! (`tests/spin-host/src/bin/signbench.rs`, the test host's wasmtime 48 and engine settings)
//! runs each in a FRESH instance per iteration, as Spin runs a WASIp2 component per request,
//! and reports the median thread CPU time per iteration. The candidates are built with the
//! release profile the components use (`opt-level = "s"`, fat LTO).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::host::{self, cache_dir, cargo, run};

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Fresh instances per candidate (the median is reported).
    #[arg(long, default_value_t = 300)]
    pub iterations: u32,
    /// Measure the candidates and runner already built.
    #[arg(long)]
    pub no_build: bool,
}

const TARGET: &str = "wasm32-wasip2";

/// (label, wasm file in the candidates' directory, what it does). Labels ending in
/// `@instantiate` are only instantiated.
const CANDIDATES: &[(&str, &str, &str)] = &[
    (
        "instantiate only@instantiate",
        "floor",
        "Store + instantiation + drop, no call (the floor)",
    ),
    (
        "empty main",
        "floor",
        "the floor plus wasi:cli/run of an empty main",
    ),
    (
        "empty main + 32 random bytes",
        "floor_random",
        "plus getrandom 0.2 through the WASI preview-1 adapter (ring's random source)",
    ),
    (
        "ES256 p256 0.14 (before issue 12)",
        "es256_p256",
        "SigningKey::from_slice(scalar) (derives the public key) + RFC 6979 sign",
    ),
    (
        "ES256 p256 0.14, scalar only",
        "es256_p256_scalar",
        "sign from the scalar (no public-key derivation), no precomputed tables",
    ),
    (
        "ES256 ring 0.17 load only",
        "es256_ring_load",
        "EcdsaKeyPair::from_pkcs8 (ring re-derives the public key to check it)",
    ),
    (
        "ES256 ring 0.17",
        "es256_ring",
        "from_pkcs8 + sign (edgeid's signer since issue 12)",
    ),
    (
        "RS256 rsa 0.9, u64_digit (before issue 12)",
        "rs256_rsa_u64",
        "from_pkcs8_der + blinded PKCS#1 v1.5 sign, 64-bit digits (rsa's default)",
    ),
    (
        "RS256 rsa 0.9, 32-bit digits",
        "rs256_rsa",
        "the same without u64_digit",
    ),
    (
        "RS256 ring 0.17 load only",
        "rs256_ring_load",
        "RsaKeyPair::from_pkcs8 (key validation, Montgomery constants)",
    ),
    (
        "RS256 ring 0.17",
        "rs256_ring",
        "from_pkcs8 + PKCS#1 v1.5 sign (edgeid's signer since issue 12)",
    ),
];

/// Where the candidates are copied after building (the `u64_digit` build overwrites
/// `rs256_rsa.wasm` in the target directory).
fn candidates_dir() -> PathBuf {
    cache_dir().join("signbench")
}

fn runner() -> PathBuf {
    cache_dir()
        .join("target-spinhost")
        .join("release")
        .join("signbench")
}

fn build() -> anyhow::Result<()> {
    crate::spin::install()?;
    let built = cache_dir()
        .join("target-signbench")
        .join(TARGET)
        .join("release");
    let dest = candidates_dir();
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let copy = |from: &str, to: &str| -> anyhow::Result<()> {
        let (from, to) = (built.join(from), dest.join(to));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(())
    };
    let candidates = |features: &[&str]| {
        let mut cmd = cargo("target-signbench");
        cmd.args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            "edgeid-signbench",
        ]);
        cmd.args(features);
        cmd
    };
    run(&mut candidates(&[
        "--features",
        "u64_digit",
        "--bin",
        "rs256_rsa",
    ]))?;
    copy("rs256_rsa.wasm", "rs256_rsa_u64.wasm")?;
    run(&mut candidates(&[]))?;
    for (_, file, _) in CANDIDATES {
        if *file != "rs256_rsa_u64" {
            copy(&format!("{file}.wasm"), &format!("{file}.wasm"))?;
        }
    }
    // The runner shares the test host's target directory and profile: only its own binary
    // compiles, wasmtime is reused.
    let mut cmd = cargo("target-spinhost");
    cmd.args([
        "build",
        "--release",
        "-p",
        "edgeid-spin-host",
        "--bin",
        "signbench",
    ]);
    crate::spin::host_profile(&mut cmd);
    run(&mut cmd)
}

pub fn run_sign(args: &SignArgs) -> anyhow::Result<()> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    if !args.no_build {
        build()?;
    }
    let dir = candidates_dir();
    let mut cmd = Command::new(runner());
    cmd.arg("--iterations").arg(args.iterations.to_string());
    for (label, file, _) in CANDIDATES {
        cmd.arg(format!(
            "{label}={}",
            dir.join(format!("{file}.wasm")).display()
        ));
    }
    println!(
        "bench sign: {} fresh instances per candidate",
        args.iterations
    );
    let load_before = super::report::load_average().unwrap_or_default();
    let out = cmd
        .output()
        .with_context(|| format!("running {}", runner().display()))?;
    if !out.status.success() {
        bail!(
            "the signbench runner failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = render(
        &String::from_utf8_lossy(&out.stdout),
        args.iterations,
        &dir,
        (
            load_before,
            super::report::load_average().unwrap_or_default(),
        ),
    )?;
    println!("\n{report}");
    let path = host::repo_root().join("target").join("bench-sign.md");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("written to {}", path.display());
    Ok(())
}

/// One markdown table from the runner's lines (`label, n, median, p10, p90, wall median`).
fn render(
    lines: &str,
    iterations: u32,
    dir: &Path,
    load: (String, String),
) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for line in lines.lines() {
        let cells: Vec<&str> = line.split('\t').collect();
        let [label, _n, median, p10, p90, wall] = cells[..] else {
            bail!("unexpected runner output: {line:?}");
        };
        let (file, what) = CANDIDATES
            .iter()
            .find(|(l, ..)| l.trim_end_matches("@instantiate") == label)
            .map(|(_, f, w)| (*f, *w))
            .unwrap_or(("", ""));
        let size = std::fs::metadata(dir.join(format!("{file}.wasm")))
            .map(|m| format!("{:.0}", m.len() as f64 / 1024.0))
            .unwrap_or_default();
        rows.push([
            label.to_owned(),
            median.to_owned(),
            format!("{p10} – {p90}"),
            wall.to_owned(),
            size,
            what.to_owned(),
        ]);
    }
    let mut out = String::new();
    writeln!(
        out,
        "Signing in a fresh wasm instance per iteration (wasmtime 48.0.8, pooling allocator, \
         wasm32-wasip2, release profile); median of {iterations} iterations; CPU = the runner \
         thread's CPU time; load average {} → {}.\n",
        load.0, load.1
    )?;
    writeln!(
        out,
        "| candidate | CPU µs (median) | CPU µs p10 – p90 | wall µs (median) | KiB | what one iteration does |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---|")?;
    for r in rows {
        writeln!(out, "| {} |", r.join(" | "))?;
    }
    Ok(out)
}
