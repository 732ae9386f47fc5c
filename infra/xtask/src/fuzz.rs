//! `cargo xtask fuzz [--seconds N] [--target T]`: coverage-guided fuzzing of every parser of
//! untrusted input (issue 9), with libFuzzer on stable Rust.
//!
//! The targets live in `tests/fuzz` (its own workspace, `fuzz_targets/*.rs`, seeds in
//! `tests/fuzz/corpus/<target>/`). They link libFuzzer through the `libfuzzer-sys` crate (a
//! pinned dependency, built from source with the system C++ compiler), and are instrumented
//! with the stable SanitizerCoverage flags that cargo-fuzz passes (`-C passes=sancov-module`
//! and `-C llvm-args=-sanitizer-coverage-*`) minus any sanitizer, so neither nightly nor
//! cargo-fuzz is needed and nothing is installed. Each target runs for N seconds; a panic, an
//! input slower than [`TIMEOUT_SECONDS`] or over the memory limit fails the command and
//! leaves the input under `~/.cache/edgeid/fuzz-target/artifacts/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::host;

/// Every target in `tests/fuzz/Cargo.toml`, with the largest input it is given: the form
/// target gets a whole body (the 16,000-token scope attack is ~64 KiB).
pub const TARGETS: &[(&str, usize)] = &[
    ("form", 70 * 1024),
    ("cookie", 16 * 1024),
    ("basic_auth", 8 * 1024),
    ("jwt", 16 * 1024),
    ("sealed", 8 * 1024),
    ("redirect_uri", 8 * 1024),
    ("admin_json", 16 * 1024),
    ("legacy_hash", 2 * 1024),
];

/// One input must finish within this (libFuzzer `-timeout`): a slow input is a finding.
pub const TIMEOUT_SECONDS: u64 = 10;

#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Only this target (default: all).
    #[arg(long)]
    target: Option<String>,
}

/// The outcome of one target's run.
#[derive(Debug)]
pub struct Outcome {
    pub target: &'static str,
    pub executions: u64,
    pub ok: bool,
}

pub fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let targets: Vec<(&'static str, usize)> = match &args.target {
        None => TARGETS.to_vec(),
        Some(t) => {
            let found = TARGETS.iter().find(|(name, _)| name == t);
            vec![*found.with_context(|| {
                let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
                format!("no fuzz target {t:?}; targets: {}", names.join(", "))
            })?]
        }
    };
    let outcomes = fuzz(&targets, args.seconds)?;
    report(&outcomes)
}

/// The short run `cargo xtask test` makes: every target for `seconds`.
pub fn smoke(seconds: u64) -> anyhow::Result<Vec<Outcome>> {
    fuzz(TARGETS, seconds)
}

/// Prints the executions per target and fails when any target found something.
pub fn report(outcomes: &[Outcome]) -> anyhow::Result<()> {
    println!();
    println!("{:<14} {:>14}  result", "fuzz target", "executions");
    for o in outcomes {
        let result = if o.ok { "ok" } else { "FAILED" };
        println!("{:<14} {:>14}  {result}", o.target, o.executions);
    }
    let total: u64 = outcomes.iter().map(|o| o.executions).sum();
    println!("{:<14} {:>14}", "total", total);
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| o.target)
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (inputs in {})",
            failed.join(", "),
            artifacts_dir().display()
        );
    }
    Ok(())
}

fn fuzz(targets: &[(&'static str, usize)], seconds: u64) -> anyhow::Result<Vec<Outcome>> {
    build()?;
    let bin_dir = target_dir().join(host_triple()?).join("release");
    let mut outcomes = Vec::new();
    for (target, max_len) in targets {
        outcomes.push(run_target(&bin_dir, target, *max_len, seconds)?);
    }
    Ok(outcomes)
}

fn fuzz_dir() -> PathBuf {
    host::repo_root().join("tests").join("fuzz")
}

fn target_dir() -> PathBuf {
    host::cache_dir().join("fuzz-target")
}

fn artifacts_dir() -> PathBuf {
    target_dir().join("artifacts")
}

/// The stable flags cargo-fuzz uses for `--sanitizer none` (SanitizerCoverage feeding
/// libFuzzer: edge counters, the PC table and comparison tracing), plus `--cfg fuzzing`.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";

/// Builds every target. `--target` is explicit so the flags reach only the targets' code,
/// not build scripts or proc macros (as cargo-fuzz does).
fn build() -> anyhow::Result<()> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(fuzz_dir())
        .env("CARGO_TARGET_DIR", target_dir())
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["build", "--release", "--bins", "--target", &host_triple()?]);
    host::run(&mut cmd).context("building the fuzz targets")
}

fn host_triple() -> anyhow::Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host")
}

fn run_target(
    bin_dir: &std::path::Path,
    target: &'static str,
    max_len: usize,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    // New inputs go to the working corpus in the cache (kept between runs, so coverage
    // accumulates); the seeds in the repository are only read.
    let corpus = target_dir().join("corpus").join(target);
    let seeds = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(artifacts_dir())?;
    println!("xtask: fuzzing {target} for {seconds} s");
    let output = Command::new(bin_dir.join(target))
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg("-rss_limit_mb=2048")
        .arg(format!("-max_len={max_len}"))
        .arg("-print_final_stats=1")
        .arg(format!(
            "-artifact_prefix={}/{target}-",
            artifacts_dir().display()
        ))
        .arg(&corpus)
        .arg(&seeds)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running fuzz target {target}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let executions = executions(&log);
    let ok = output.status.success();
    if !ok {
        // The whole report: the panic message, the input's path and how to reproduce it.
        eprintln!("{log}");
        eprintln!("xtask: fuzz target {target} failed: {}", output.status);
    }
    Ok(Outcome {
        target,
        executions,
        ok,
    })
}

/// libFuzzer's count of executed inputs: `stat::number_of_executed_units: N` (with
/// `-print_final_stats=1`), else the `Done N runs in ...` line.
fn executions(log: &str) -> u64 {
    let stat = log.lines().find_map(|l| {
        l.strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    });
    stat.or_else(|| {
        log.lines().find_map(|l| {
            l.strip_prefix("Done ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
    })
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_execution_counts() {
        let log = "#2\tINITED cov: 10\nDone 272342 runs in 6 second(s)\n\
                   stat::number_of_executed_units: 272343\nstat::peak_rss_mb: 40\n";
        assert_eq!(executions(log), 272_343);
        assert_eq!(executions("Done 12 runs in 1 second(s)\n"), 12);
        assert_eq!(executions("==1== ERROR: libFuzzer: deadly signal\n"), 0);
    }

    #[test]
    fn every_target_has_a_seed_corpus_and_a_source() {
        for (t, _) in TARGETS {
            let seeds = fuzz_dir().join("corpus").join(t);
            let n = std::fs::read_dir(&seeds).map_or(0, Iterator::count);
            assert!(n > 0, "no seeds in {}", seeds.display());
            let src = fuzz_dir().join("fuzz_targets").join(format!("{t}.rs"));
            assert!(src.is_file(), "{}", src.display());
        }
    }
}
