//! `cargo xtask test`: install, unit and flow tests, then the black-box suite on every host.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use anyhow::Context as _;

use crate::host::{self, Host};

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
    }
}

/// Seconds per fuzz target in the test run (seven targets: under a minute with the build
/// cached).
const FUZZ_SMOKE_SECONDS: u64 = 5;

/// `wasip3`: with the Spin host, the suite runs a second time on the WASIp3 build (built
/// here too), served with Spin's instance reuse by the test host.
pub fn run(hosts: &[Host], install: bool, wasip3: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Wall time per phase, printed with the summary: CI has a time budget (docs/testing.md).
    let mut phases: Vec<(&str, std::time::Duration)> = Vec::new();
    let mut mark = std::time::Instant::now();
    let mut phase = |name: &'static str, phases: &mut Vec<(&str, std::time::Duration)>| {
        phases.push((name, mark.elapsed()));
        mark = std::time::Instant::now();
    };
    if install {
        for h in hosts {
            crate::install(*h).with_context(|| format!("installing tools for {}", h.name()))?;
        }
        crate::browser::install().context("installing chromium and chromedriver")?;
    }
    phase("install tools", &mut phases);
    let mut rows: Vec<(String, Counts)> = Vec::new();

    let unit = cargo_test(
        host::cargo("target").args([
            "test",
            "-p",
            "edgeid",
            "--features",
            "native",
            "-p",
            "edgeid-cli",
            "-p",
            "xtask",
            "-p",
            "edgeid-sidecar",
        ]),
        &[],
    )?;
    rows.push(("unit + flow (core, cli, xtask, sidecar)".into(), unit));
    phase("unit + flow tests", &mut phases);
    // Every fuzz target for a few seconds: a panic or a slow input on the seeds or nearby
    // fails here (`cargo xtask fuzz` runs them longer).
    let fuzzed = crate::fuzz::smoke(FUZZ_SMOKE_SECONDS)?;
    let _ = crate::fuzz::report(&fuzzed);
    let failed = fuzzed.iter().filter(|o| !o.ok).count() as u64;
    rows.push((
        "fuzz smoke (targets)".into(),
        Counts {
            passed: fuzzed.len() as u64 - failed,
            failed,
        },
    ));
    phase("fuzz smoke", &mut phases);
    crate::build(hosts)?;
    let wasip3 = wasip3 && hosts.contains(&Host::Spin);
    if wasip3 {
        crate::spin::build_wasip3()?;
    }
    phase("build hosts", &mut phases);
    if hosts.contains(&Host::Spin) {
        // After the build: the host's end-to-end tests run the real components.
        let c = cargo_test(&mut crate::spin::test_host_tests(), &[])?;
        rows.push(("spin test host".into(), c));
    }
    if hosts.contains(&Host::Cloudflare) {
        // `wrangler deploy --dry-run` per Worker and the deploy script's refusals: everything
        // up to the point that needs a Cloudflare account.
        let (passed, failed) = crate::deploy::check();
        rows.push((
            "cloudflare deploy, up to the account".into(),
            Counts { passed, failed },
        ));
    }
    phase("spin host tests, deploy checks", &mut phases);
    // Build the suite once; each host run below only executes it.
    host::run(host::cargo("target").args(["test", "-p", "edgeid-suite", "--no-run"]))?;
    host::run(&mut crate::browser::cargo_test(&["--no-run"]))?;
    phase("build suite", &mut phases);

    let mut runs: Vec<(Host, bool)> = hosts.iter().map(|h| (*h, false)).collect();
    if wasip3 {
        runs.push((Host::Spin, true));
    }
    for (h, p3) in &runs {
        let name = if *p3 {
            format!("{} (wasip3)", h.name())
        } else {
            h.name().to_owned()
        };
        let port = host::free_port()?;
        let state = std::env::temp_dir().join(format!(
            "edgeid-test-{}{}-{}",
            h.name(),
            if *p3 { "-wasip3" } else { "" },
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&state);
        let mut opts = crate::options(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            state.clone(),
        );
        opts.spin_wasip3 = *p3;
        let (counts, browser) = match crate::start(*h, &opts) {
            Ok(running) => {
                let env = [
                    ("BASE_URL", running.base_url.as_str()),
                    ("EDGEID_ADMIN_TOKEN", opts.admin_token.as_str()),
                ];
                let c = cargo_test(
                    host::cargo("target").args(["test", "--no-fail-fast", "-p", "edgeid-suite"]),
                    &env,
                )?;
                // Headless Chromium on the same host, after the suite (about a minute).
                let b = cargo_test(&mut crate::browser::cargo_test(&[]), &env)?;
                drop(running);
                (c, b)
            }
            Err(e) => {
                eprintln!("xtask: {name} host failed to start: {e:#}");
                let failed = Counts {
                    passed: 0,
                    failed: 1,
                };
                (failed, Counts::default())
            }
        };
        if counts.failed == 0 && browser.failed == 0 {
            let _ = std::fs::remove_dir_all(&state);
        } else {
            eprintln!(
                "xtask: {} state and logs kept in {}",
                h.name(),
                state.display()
            );
        }
        rows.push((format!("black-box suite on {name}"), counts));
        rows.push((format!("browser tests on {name}"), browser));
        phase(if *p3 { "spin (wasip3)" } else { h.name() }, &mut phases);
    }

    round_trips(hosts, &mut rows)?;
    phase("round trips", &mut phases);

    let mut total = Counts::default();
    println!();
    println!("{:<36} {:>7} {:>7}", "tests", "passed", "failed");
    for (name, c) in &rows {
        println!("{name:<36} {:>7} {:>7}", c.passed, c.failed);
        total += *c;
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    println!();
    for (name, took) in &phases {
        println!("{name:<36} {:>5} s", took.as_secs());
    }
    println!("{:<36} {:>5} s", "total", started.elapsed().as_secs());
    if total.failed > 0 {
        anyhow::bail!("{} tests failed", total.failed);
    }
    Ok(())
}

/// Issue 10's move between hosts, black box: a fresh native host is the source, every other
/// host under test the target, all sharing one key-encryption key and admin token (sealed
/// keys and TOTP secrets move as they are). `tests/suite/tests/issue10_round_trip.rs` exports
/// the source through the admin API, imports it into the target and checks that passwords,
/// client secrets, `sub` and pre-move tokens hold there.
fn round_trips(hosts: &[Host], rows: &mut Vec<(String, Counts)>) -> anyhow::Result<()> {
    if !hosts.contains(&Host::Native) {
        return Ok(());
    }
    let base = std::env::temp_dir().join(format!("edgeid-round-trip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut source_opts = crate::options(
        std::net::SocketAddr::from(([127, 0, 0, 1], host::free_port()?)),
        base.join("native"),
    );
    source_opts.key_encryption_key = host::random_token(32);
    let source = crate::start(Host::Native, &source_opts)?;
    for target in hosts.iter().filter(|h| **h != Host::Native) {
        let mut opts = crate::options(
            std::net::SocketAddr::from(([127, 0, 0, 1], host::free_port()?)),
            base.join(target.name()),
        );
        opts.admin_token = source_opts.admin_token.clone();
        opts.key_encryption_key = source_opts.key_encryption_key.clone();
        let counts = match crate::start(*target, &opts) {
            Ok(running) => {
                let env = [
                    ("BASE_URL", source.base_url.as_str()),
                    ("TARGET_BASE_URL", running.base_url.as_str()),
                    ("EDGEID_ADMIN_TOKEN", opts.admin_token.as_str()),
                ];
                let c = cargo_test(
                    host::cargo("target").args([
                        "test",
                        "-p",
                        "edgeid-suite",
                        "--test",
                        "issue10_round_trip",
                    ]),
                    &env,
                )?;
                drop(running);
                c
            }
            Err(e) => {
                eprintln!("xtask: {} host failed to start: {e:#}", target.name());
                Counts {
                    passed: 0,
                    failed: 1,
                }
            }
        };
        rows.push((format!("round trip native -> {}", target.name()), counts));
    }
    drop(source);
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}

/// Runs a `cargo test` command, echoing its output, and sums its `test result:` lines.
/// A test binary that fails to build or crashes counts as one failure.
fn cargo_test(cmd: &mut std::process::Command, envs: &[(&str, &str)]) -> anyhow::Result<Counts> {
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("{cmd:?}"))?;
    let mut counts = Counts::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                counts += parse_result(rest);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && counts.failed == 0 {
        counts.failed = 1;
    }
    Ok(counts)
}

/// Parses `ok. 12 passed; 0 failed; 0 ignored; ...`.
fn parse_result(rest: &str) -> Counts {
    let mut c = Counts::default();
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let n = |w: &[&str]| {
            w.iter()
                .rev()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        if words.last() == Some(&"passed") {
            c.passed = n(&words);
        } else if words.last() == Some(&"failed") {
            c.failed = n(&words);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_test_summary() {
        let c = parse_result(
            "ok. 12 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s",
        );
        assert_eq!((c.passed, c.failed), (12, 3));
    }
}
