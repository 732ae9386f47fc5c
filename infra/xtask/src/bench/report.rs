//! The report: one table of throughput and latency per host and endpoint against the peer,
//! the wasm sizes, and the conditions the figures were measured under.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::bail;

use super::load::Load;
use super::{BenchArgs, Endpoint, HostResult, TOKEN_BODY, WARM_UP_SECONDS, bench_dir};
use crate::host::{self, Host};

const MIB: u64 = 1024 * 1024;

pub(super) struct Size {
    function: String,
    host: Host,
    file: PathBuf,
    raw: u64,
    gzipped: u64,
    /// Built by this run (else left from an earlier build).
    fresh: bool,
}

/// Each function's Spin component and Cloudflare Worker wasm, wherever they were built.
pub(super) fn sizes(built: &[Host]) -> Vec<Size> {
    let root = host::repo_root();
    let mut out = Vec::new();
    for function in function_names(&root) {
        let spin = root
            .join("target/wasm32-wasip2/release")
            .join(format!("edgeid_{function}.wasm"));
        let fdir = root.join("functions").join(&function);
        let cloudflare = [fdir.join("build"), fdir.join("build").join("worker")]
            .into_iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "wasm"));
        for (h, file) in [(Host::Spin, Some(spin)), (Host::Cloudflare, cloudflare)] {
            let Some(file) = file.filter(|f| f.is_file()) else {
                continue;
            };
            if let (Ok(meta), Ok(gzipped)) = (std::fs::metadata(&file), gzipped_len(&file)) {
                let fresh = built.contains(&h);
                out.push(Size {
                    function: function.clone(),
                    host: h,
                    raw: meta.len(),
                    gzipped,
                    file,
                    fresh,
                });
            }
        }
    }
    out
}

fn function_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("functions"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `gzip -9 -c FILE | wc -c`.
/// Issue 12's size targets per function, gzipped: discovery links no argon2, no pages and no
/// mail; token and userinfo no login pages; nothing is above 450 KiB (and all under 1 MiB).
pub(super) fn size_target(function: &str) -> u64 {
    match function {
        "discovery" => 150 * 1024,
        "token" | "userinfo" => 300 * 1024,
        _ => 450 * 1024,
    }
    .min(MIB)
}

pub(super) fn gzipped_len(file: &Path) -> anyhow::Result<u64> {
    let out = Command::new("gzip")
        .arg("-9")
        .arg("-c")
        .arg(file)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("gzip {} failed", file.display());
    }
    Ok(out.stdout.len() as u64)
}
pub(super) struct Report<'a> {
    pub(super) args: &'a BenchArgs,
    pub(super) peer: &'a [(Endpoint, Load)],
    pub(super) results: &'a [HostResult],
    pub(super) sizes: &'a [Size],
    pub(super) failures: &'a [(String, String)],
    pub(super) load_avg: (Option<String>, Option<String>),
    pub(super) elapsed: Duration,
}

impl Report<'_> {
    pub(super) fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## Benchmark (`cargo xtask bench`)\n");
        let mut rows = vec![row([
            "host",
            "endpoint",
            "req/s",
            "p50",
            "p99",
            "server CPU/req",
            "peer req/s",
            "ours/peer",
            "target",
            "note",
        ])];
        for (e, load) in self.peer {
            rows.push(row([
                "oidc-provider (peer)",
                e.label(),
                &format!("{:.0}", load.rps),
                &ms(load.p50),
                &ms(load.p99),
                &us(load.cpu),
                "",
                "",
                "",
                &bad_note(load),
            ]));
        }
        for r in self.results {
            for (e, load) in &r.loads {
                let peer_load = self.peer.iter().find(|(pe, _)| pe == e).map(|(_, l)| l);
                let peer = peer_load.map(|l| l.rps);
                let ratio = peer.filter(|p| *p > 0.0).map(|p| load.rps / p);
                let target = match (e.target(r.host), ratio) {
                    (Some(t), Some(x)) => {
                        format!("≥ {t}× {}", if x >= t { "met" } else { "missed" })
                    }
                    (Some(t), None) => format!("≥ {t}×"),
                    _ => String::new(),
                };
                let mut note = bad_note(load);
                if let (Some(ours), Some(theirs)) = (load.cpu, peer_load.and_then(|l| l.cpu))
                    && !ours.is_zero()
                {
                    let x = theirs.as_secs_f64() / ours.as_secs_f64();
                    push_note(&mut note, &format!("peer/ours CPU per request: {x:.2}×"));
                }
                if let Some(empty) = r.empty_worker.as_ref().filter(|l| l.rps > 0.0) {
                    push_note(
                        &mut note,
                        &format!("{:.2}× the empty JS Worker", load.rps / empty.rps),
                    );
                }
                rows.push(row([
                    r.host.name(),
                    e.label(),
                    &format!("{:.0}", load.rps),
                    &ms(load.p50),
                    &ms(load.p99),
                    &us(load.cpu),
                    &peer.map_or_else(String::new, |p| format!("{p:.0}")),
                    &ratio.map_or_else(|| "-".into(), |x| format!("{x:.2}×")),
                    &target,
                    &note,
                ]));
            }
            if let Some(empty) = &r.empty_worker {
                rows.push(row([
                    r.host.name(),
                    "empty JS Worker (baseline)",
                    &format!("{:.0}", empty.rps),
                    &ms(empty.p50),
                    &ms(empty.p99),
                    &us(empty.cpu),
                    "",
                    "",
                    "",
                    &bad_note(empty),
                ]));
            }
        }
        for (host, err) in self.failures {
            // The whole error went to stderr; the table keeps its gist.
            let first = err.lines().next().unwrap_or_default();
            let first = match first.char_indices().nth(100) {
                Some((cut, _)) => format!("{}… (details above)", &first[..cut]),
                None => first.to_owned(),
            };
            let first = first.as_str();
            rows.push(row([
                host,
                "(not measured)",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                first,
            ]));
        }
        s.push_str(&table(&rows));

        let _ = writeln!(s, "\n### wasm sizes\n");
        let mut size_rows = vec![row([
            "function",
            "host",
            "raw",
            "gzip -9",
            "target (gzipped)",
            "met",
            "file",
            "note",
        ])];
        for z in self.sizes {
            let rel = z.file.strip_prefix(host::repo_root()).unwrap_or(&z.file);
            size_rows.push(row([
                &z.function,
                z.host.name(),
                &kib(z.raw),
                &kib(z.gzipped),
                &format!("≤ {}", kib(size_target(&z.function))),
                if z.gzipped <= size_target(&z.function) {
                    "yes"
                } else {
                    "NO"
                },
                &format!("`{}`", rel.display()),
                if z.fresh {
                    ""
                } else {
                    "not rebuilt by this run"
                },
            ]));
        }
        if self.sizes.is_empty() {
            size_rows.push(row(["(no wasm built)", "", "", "", "", "", "", ""]));
        }
        s.push_str(&table(&size_rows));

        let a = self.args;
        let _ = writeln!(s, "\n### Conditions\n");
        let mut notes = vec![
            format!("date: {}; commit: {}", run_text("date", &["-u", "+%Y-%m-%d %H:%M UTC"]), commit()),
            format!(
                "load: `hey -z {}s -c {}{}` per measurement after {WARM_UP_SECONDS} s of warm-up, loopback, \
                 HTTP/1.1 {}; client_credentials is `POST` with `client_secret_basic` and `{TOKEN_BODY}`",
                a.seconds,
                a.concurrency,
                if a.disable_keepalive { " -disable-keepalive" } else { "" },
                if a.disable_keepalive { "with a new connection per request" } else { "keep-alive" },
            ),
            format!(
                "machine: {} CPUs shared by the load tool, the server and anything else running; \
                 load average (1/5/15 min) {} at the start, {} at the end; bench took {} s",
                std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
                self.load_avg.0.as_deref().unwrap_or("?"),
                self.load_avg.1.as_deref().unwrap_or("?"),
                self.elapsed.as_secs(),
            ),
            format!(
                "peer: oidc-provider {} on Node {} (`infra/bench/peer.mjs`, NODE_ENV=production), in-memory \
                 adapter; RFC 9068 JWT access tokens signed ES256 through a resource server \
                 (`resourceIndicators`, `accessTokenFormat: 'jwt'`); JWKS with one ES256 and one RS256 key, as edgeid's",
                peer_version(),
                run_text(&bench_dir().join("node_modules/.bin/node").to_string_lossy(), &["--version"]),
            ),
            "server CPU/req: user + system CPU time of the server's process tree (from /proc, \
             clock-tick resolution) over the run, divided by the responses; steadier than req/s when \
             other work shares the machine"
                .into(),
            "targets are reported, not asserted; expect noise on a shared machine, and check with \
             `--disable-keepalive` too"
                .into(),
        ];
        let hosts = self.results.iter().map(|r| r.host);
        notes.splice(
            3..3,
            hosts.map(|h| format!("{}: {}", h.name(), conditions(h))),
        );
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
        s
    }
}

/// How `host` ran and where it kept its state.
fn conditions(host: Host) -> &'static str {
    match host {
        Host::Native => {
            "the `edgeid` binary (cargo profile `native`: opt-level 3, thin LTO), one thread per CPU; \
             SQLite file with `journal_mode=WAL`, `synchronous=NORMAL`"
        }
        Host::Spin if host::on_path("spin") => {
            "the components under `spin up`; Spin's default SQLite and key-value files"
        }
        Host::Spin => {
            "the components under the Spin-compatible test host (wasmtime, `tests/spin-host`); Spin \
             SQLite and key-value as SQLite files with `journal_mode=WAL`, `synchronous=NORMAL`"
        }
        Host::Cloudflare => {
            "the Workers in one Miniflare/workerd instance (`infra/cloudflare/runner.mjs`); D1 and KV \
             persisted as local SQLite files by Miniflare (its settings); local workerd is capped by \
             Miniflare's plumbing, so compare with the empty JS Worker on the same runtime"
        }
    }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// A markdown table with padded columns, readable as plain text too.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
            .max(3)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    // Right-align a column whose every filled cell is a number (or `-`).
    let numeric = |i: usize| {
        let mut cells = rows
            .iter()
            .skip(1)
            .filter_map(|r| r.get(i))
            .filter(|c| !c.is_empty())
            .peekable();
        cells.peek().is_some()
            && cells.all(|c| c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-'))
    };
    let mut s = String::new();
    for (n, r) in rows.iter().enumerate() {
        s.push('|');
        for (i, w) in widths.iter().enumerate() {
            let c = r.get(i).map_or("", String::as_str);
            let pad = w.saturating_sub(c.chars().count());
            if numeric(i) && n > 0 {
                let _ = write!(s, " {}{c} |", " ".repeat(pad));
            } else {
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            }
        }
        s.push('\n');
        if n == 0 {
            s.push('|');
            for (i, w) in widths.iter().enumerate() {
                let dashes = "-".repeat(*w);
                if numeric(i) {
                    let _ = write!(s, " {}: |", &dashes[1..]);
                } else {
                    let _ = write!(s, " {dashes} |");
                }
            }
            s.push('\n');
        }
    }
    s
}

fn bad_note(load: &Load) -> String {
    if load.bad == 0 {
        String::new()
    } else {
        format!(
            "{} of {} responses unexpected or failed",
            load.bad,
            load.ok + load.bad
        )
    }
}

fn push_note(note: &mut String, more: &str) {
    if !note.is_empty() {
        note.push_str("; ");
    }
    note.push_str(more);
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

pub(super) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn commit() -> String {
    let root = host::repo_root();
    let head = run_text(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = Command::new("git")
        .args(["-C", &root.to_string_lossy(), "status", "--porcelain"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

/// The oidc-provider version installed in `infra/bench`.
fn peer_version() -> String {
    let path = bench_dir().join("node_modules/oidc-provider/package.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// A command's trimmed stdout, or `?`.
pub(super) fn run_text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

pub(super) fn us(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{} µs", d.as_micros()))
}

pub(super) fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}
