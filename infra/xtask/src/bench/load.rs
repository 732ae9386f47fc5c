//! The load tool: Debian's `hey`, run for a bounded time, its summary parsed; plus the CPU time
//! the server spent meanwhile.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{BenchArgs, basic_auth, report::run_text};
use crate::host;

/// One `hey` run, parsed from its summary.
#[derive(Debug, Clone, Default)]
pub(super) struct Load {
    pub(super) rps: f64,
    pub(super) p50: Option<Duration>,
    pub(super) p99: Option<Duration>,
    /// Responses with the expected status.
    pub(super) ok: u64,
    /// Other statuses and transport errors.
    pub(super) bad: u64,
    /// CPU time (user + system) the server's process tree spent per response: steadier than
    /// req/s on a shared machine.
    pub(super) cpu: Option<Duration>,
}

/// Installs Debian's `hey` when it is missing (`apt-get update` only if the first try fails).
pub(super) fn install_hey() -> anyhow::Result<()> {
    if host::on_path("hey") {
        return Ok(());
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "hey"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if install().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    host::run(Command::new("apt-get").arg("update"))?;
    host::run(
        Command::new("apt-get")
            .args(["install", "-y", "hey"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing the load tool `hey` (Debian package hey)")
}

/// `hey -z {seconds}s` against `url`: a GET, or a client_credentials POST when `form` is given.
/// `server` is the pid whose process tree serves it (for CPU time per request).
pub(super) fn hey(
    url: &str,
    form: Option<&str>,
    seconds: u32,
    args: &BenchArgs,
    expect: u16,
    server: u32,
) -> anyhow::Result<Load> {
    let mut cmd = Command::new("hey");
    cmd.arg("-z")
        .arg(format!("{seconds}s"))
        .arg("-c")
        .arg(args.concurrency.to_string());
    if args.disable_keepalive {
        cmd.arg("-disable-keepalive");
    }
    if let Some(body) = form {
        cmd.args([
            "-m",
            "POST",
            "-T",
            "application/x-www-form-urlencoded",
            "-d",
            body,
        ]);
        cmd.arg("-H")
            .arg(format!("authorization: {}", basic_auth()));
    }
    cmd.arg(url).stdin(Stdio::null()).stderr(Stdio::inherit());
    let cpu_before = tree_cpu(server);
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let cpu_after = tree_cpu(server);
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    let mut load = parse_hey(&String::from_utf8_lossy(&out.stdout), expect)?;
    let responses = u32::try_from(load.ok + load.bad).unwrap_or(u32::MAX);
    if let (Some(before), Some(after)) = (cpu_before, cpu_after)
        && responses > 0
    {
        load.cpu = Some(after.saturating_sub(before) / responses);
    }
    Ok(load)
}

/// User + system CPU time of `pid` and its live descendants (workerd runs under the Cloudflare
/// runner's Node), from `/proc`. `None` where `/proc` is not Linux's.
pub(super) fn tree_cpu(pid: u32) -> Option<Duration> {
    // (pid, ppid, utime + stime in clock ticks) of every process.
    let stats: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // Fields after the parenthesised command name, which may itself contain spaces.
            let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let field = |n: usize| rest.get(n - 3)?.parse::<u64>().ok();
            let ppid = u32::try_from(field(4)?).ok()?;
            Some((p, ppid, field(14)? + field(15)?))
        })
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while let Some(&p) = tree.get(i) {
        tree.extend(stats.iter().filter(|s| s.1 == p).map(|s| s.0));
        i += 1;
    }
    let ticks: u64 = stats
        .iter()
        .filter(|s| tree.contains(&s.0))
        .map(|s| s.2)
        .sum();
    let per_second = clock_ticks_per_second();
    Some(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// `getconf CLK_TCK` (100 on every common Linux build).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        run_text("getconf", &["CLK_TCK"])
            .parse()
            .unwrap_or(100)
            .max(1)
    })
}

/// Reads `Requests/sec`, the 50% and 99% latency lines, the status code distribution and the
/// error distribution from hey's summary.
fn parse_hey(summary: &str, expect: u16) -> anyhow::Result<Load> {
    let mut load = Load::default();
    let mut rps = None;
    let mut section = "";
    for line in summary.lines() {
        let line = line.trim();
        if line.ends_with(':') && !line.contains('\t') {
            section = line;
            continue;
        }
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("50% in ") {
            load.p50 = secs(v);
        } else if let Some(v) = line.strip_prefix("99% in ") {
            load.p99 = secs(v);
        } else if let Some(rest) = line.strip_prefix('[') {
            // `[200]\t1234 responses` or `[17]\tPost "...": dial tcp ...` (count first).
            let Some((key, rest)) = rest.split_once(']') else {
                continue;
            };
            let count = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            match section {
                "Status code distribution:" if key.parse::<u16>().ok() == Some(expect) => {
                    load.ok += count
                }
                "Status code distribution:" => load.bad += count,
                "Error distribution:" => load.bad += key.parse::<u64>().unwrap_or(1),
                _ => {}
            }
        }
    }
    load.rps = rps.with_context(|| format!("no Requests/sec in hey's output:\n{summary}"))?;
    Ok(load)
}

fn secs(v: &str) -> Option<Duration> {
    v.trim()
        .strip_suffix("secs")?
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}
#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "
Summary:
  Total:\t5.0034 secs
  Requests/sec:\t10543.1234

Latency distribution:
  10% in 0.0010 secs
  50% in 0.0025 secs
  99% in 0.0100 secs

Status code distribution:
  [200]\t52734 responses
  [500]\t3 responses

Error distribution:
  [2]\tPost \"http://127.0.0.1:1/oauth2/token\": context deadline exceeded
";

    #[test]
    fn parses_hey_summary() {
        let load = parse_hey(SUMMARY, 200).expect("a complete summary");
        assert!((load.rps - 10543.1234).abs() < 1e-6);
        assert_eq!(load.p50, Some(Duration::from_micros(2500)));
        assert_eq!(load.p99, Some(Duration::from_millis(10)));
        assert_eq!((load.ok, load.bad), (52734, 5));
    }
}
