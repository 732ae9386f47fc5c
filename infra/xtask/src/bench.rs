//! `cargo xtask bench`: per host, client_credentials, discovery and JWKS throughput and latency
//! under `hey` on loopback, against the npm package `oidc-provider` configured equivalently
//! (`infra/bench/peer.mjs`) in the same run; plus each function's wasm size, raw and gzipped.
//!
//! Prints one table and writes it as markdown to `target/bench.md`. Targets are reported, not
//! asserted: client_credentials ≥ 5× the peer on native, ≥ 2× on the Spin test host, ≥ 1× on
//! workerd; discovery and JWKS ≥ 10× the peer on native; each function ≤ 1 MiB gzipped.
//!
//! Local workerd throughput is capped by Miniflare's plumbing, not by the Worker, so the
//! Cloudflare rows also give the ratio to an empty JS Worker on the same runtime in the same run:
//! the runner's catch-all Worker, which answers any path no function serves with a static 404.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::host::{self, Host, Running};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Only these hosts (default: all), e.g. `--hosts native,spin`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub hosts: Vec<Host>,
    /// Seconds of load per measurement (plus one second of warm-up per endpoint).
    #[arg(long, default_value_t = 5)]
    pub seconds: u32,
    /// Concurrent connections `hey` keeps open.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u32,
    /// A new TCP connection per request (`hey -disable-keepalive`).
    #[arg(long)]
    pub disable_keepalive: bool,
    /// Measure the artefacts already built instead of building them first.
    #[arg(long)]
    pub no_build: bool,
}

/// The bench client, created through the admin API on each host and configured in the peer.
const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-secret-123456";
const TOKEN_BODY: &str = "grant_type=client_credentials&scope=read";
const WARM_UP_SECONDS: u32 = 1;
const MIB: u64 = 1024 * 1024;
/// A path no Cloudflare route matches: the runner's catch-all JS Worker answers it (404).
const EMPTY_WORKER_PATH: &str = "/__edgeid_bench_empty";

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.seconds == 0 || args.concurrency == 0 {
        bail!("--seconds and --concurrency must be at least 1");
    }
    let hosts = if args.hosts.is_empty() {
        Host::ALL.to_vec()
    } else {
        args.hosts.clone()
    };
    install_hey()?;
    npm_install_peer()?;
    let mut built = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    if !args.no_build {
        for &h in &hosts {
            match crate::install(h).and_then(|()| crate::build(&[h])) {
                Ok(()) => built.push(h),
                Err(e) => failures.push((h.name().into(), format!("build: {e:#}"))),
            }
        }
    }

    let started = Instant::now();
    let load_avg_start = load_average();
    println!("bench: peer (oidc-provider)");
    let peer = measure_peer(&args).context("measuring the oidc-provider peer")?;

    let mut results = Vec::new();
    for &h in &hosts {
        if failures.iter().any(|(name, _)| name == h.name()) {
            continue;
        }
        println!("bench: {}", h.name());
        match measure_host(h, &args) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("xtask: bench on {} failed: {e:#}", h.name());
                failures.push((h.name().into(), format!("{e:#}")));
            }
        }
    }
    let sizes = sizes(&built);

    let report = Report {
        args: &args,
        peer: &peer,
        results: &results,
        sizes: &sizes,
        failures: &failures,
        load_avg: (load_avg_start, load_average()),
        elapsed: started.elapsed(),
    }
    .render();
    println!("\n{report}");
    let out = host::repo_root().join("target").join("bench.md");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    println!("written to {}", out.display());
    if !failures.is_empty() {
        bail!("{} host(s) could not be measured", failures.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What is measured

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ClientCredentials,
    Discovery,
    Jwks,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [
        Endpoint::ClientCredentials,
        Endpoint::Discovery,
        Endpoint::Jwks,
    ];

    fn label(self) -> &'static str {
        match self {
            Endpoint::ClientCredentials => "token (client_credentials)",
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "JWKS",
        }
    }

    /// The reported (not asserted) throughput target against the peer.
    fn target(self, host: Host) -> Option<f64> {
        match (host, self) {
            (Host::Native, Endpoint::ClientCredentials) => Some(5.0),
            (Host::Spin, Endpoint::ClientCredentials) => Some(2.0),
            (Host::Cloudflare, Endpoint::ClientCredentials) => Some(1.0),
            (Host::Native, Endpoint::Discovery | Endpoint::Jwks) => Some(10.0),
            _ => None,
        }
    }
}

/// The three URLs of a provider, read from its discovery document.
struct Urls {
    token: String,
    discovery: String,
    jwks: String,
}

impl Urls {
    fn of(&self, e: Endpoint) -> &str {
        match e {
            Endpoint::ClientCredentials => &self.token,
            Endpoint::Discovery => &self.discovery,
            Endpoint::Jwks => &self.jwks,
        }
    }
}

/// One `hey` run, parsed from its summary.
#[derive(Debug, Clone, Default)]
struct Load {
    rps: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    /// Responses with the expected status.
    ok: u64,
    /// Other statuses and transport errors.
    bad: u64,
}

struct HostResult {
    host: Host,
    loads: Vec<(Endpoint, Load)>,
    /// Cloudflare only: the runner's catch-all JS Worker on the same workerd.
    empty_worker: Option<Load>,
}

fn measure_peer(args: &BenchArgs) -> anyhow::Result<Vec<(Endpoint, Load)>> {
    let port = host::free_port()?;
    let dir = bench_dir();
    let log_path =
        std::env::temp_dir().join(format!("edgeid-bench-peer-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(dir.join("node_modules").join(".bin").join("node"))
        .arg("peer.mjs")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(&dir)
        .env("NODE_ENV", "production")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting infra/bench/peer.mjs")?;
    let mut running = Running {
        child,
        base_url: format!("http://127.0.0.1:{port}"),
    };
    host::wait_ready(
        &running.base_url,
        &mut running.child,
        Duration::from_secs(60),
    )
    .with_context(|| format!("peer log: {}", log_path.display()))?;
    let loads = measure_endpoints(&running.base_url, args)?;
    drop(running);
    let _ = std::fs::remove_file(&log_path);
    Ok(loads)
}

fn measure_host(h: Host, args: &BenchArgs) -> anyhow::Result<HostResult> {
    let state = host::cache_dir().join("bench").join(h.name());
    let _ = std::fs::remove_dir_all(&state);
    let listen = SocketAddr::from(([127, 0, 0, 1], host::free_port()?));
    let opts = crate::options(listen, state.clone());
    let running = crate::start(h, &opts)?;
    create_client(&running.base_url, &opts.admin_token)?;
    let loads = measure_endpoints(&running.base_url, args)?;
    let empty_worker = if h == Host::Cloudflare {
        let url = format!("{}{EMPTY_WORKER_PATH}", running.base_url);
        let status = status_of(ureq::get(&url))?;
        if status != 404 {
            bail!("{url} answered {status}, not the catch-all Worker's 404");
        }
        let _ = hey(&url, None, WARM_UP_SECONDS, args, 404)?;
        Some(hey(&url, None, args.seconds, args, 404)?)
    } else {
        None
    };
    drop(running);
    let _ = std::fs::remove_dir_all(&state);
    Ok(HostResult {
        host: h,
        loads,
        empty_worker,
    })
}

/// Reads the provider's URLs from discovery, checks that the bench client gets a token, then
/// warms up and measures each endpoint.
fn measure_endpoints(base_url: &str, args: &BenchArgs) -> anyhow::Result<Vec<(Endpoint, Load)>> {
    let discovery = format!("{base_url}/.well-known/openid-configuration");
    let doc: serde_json::Value = ureq::get(&discovery).call()?.body_mut().read_json()?;
    // Keep each path but aim at the loopback address hey connects to.
    let local = |field: &str| -> anyhow::Result<String> {
        let url = doc[field]
            .as_str()
            .with_context(|| format!("discovery has no {field}"))?;
        Ok(format!("{base_url}{}", path_of(url)))
    };
    let urls = Urls {
        token: local("token_endpoint")?,
        discovery,
        jwks: local("jwks_uri")?,
    };

    let body = token_request(&urls.token)?;
    if !body["access_token"].is_string() {
        bail!("{} returned no access_token: {body}", urls.token);
    }

    let mut out = Vec::new();
    for e in Endpoint::ALL {
        let token = (e == Endpoint::ClientCredentials).then_some(TOKEN_BODY);
        let _ = hey(urls.of(e), token, WARM_UP_SECONDS, args, 200)?;
        let load = hey(urls.of(e), token, args.seconds, args, 200)?;
        println!(
            "  {:<28} {:>9.0} req/s  p50 {}  p99 {}{}",
            e.label(),
            load.rps,
            ms(load.p50),
            ms(load.p99),
            if load.bad > 0 {
                format!("  ({} bad of {})", load.bad, load.ok + load.bad)
            } else {
                String::new()
            }
        );
        out.push((e, load));
    }
    Ok(out)
}

/// The path (and query) of an absolute URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn basic_auth() -> String {
    use base64::Engine as _;
    let pair = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn token_request(url: &str) -> anyhow::Result<serde_json::Value> {
    let mut resp = ureq::post(url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("authorization", &basic_auth())
        .header("content-type", "application/x-www-form-urlencoded")
        .send(TOKEN_BODY)
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.body_mut().read_to_string()?;
    if status != 200 {
        bail!("POST {url}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

fn create_client(base_url: &str, admin_token: &str) -> anyhow::Result<()> {
    let url = format!("{base_url}/admin/clients");
    let mut resp = ureq::post(&url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("authorization", &format!("Bearer {admin_token}"))
        .send_json(serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_types": ["client_credentials"],
            "scope": "read",
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .with_context(|| format!("POST {url}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!(
            "POST {url}: {status}: {}",
            resp.body_mut().read_to_string().unwrap_or_default()
        );
    }
    Ok(())
}

fn status_of(req: ureq::RequestBuilder<ureq::typestate::WithoutBody>) -> anyhow::Result<u16> {
    Ok(req
        .config()
        .http_status_as_error(false)
        .build()
        .call()?
        .status()
        .as_u16())
}

// ---------------------------------------------------------------------------------------------
// hey

/// Installs Debian's `hey` when it is missing (`apt-get update` only if the first try fails).
fn install_hey() -> anyhow::Result<()> {
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
fn hey(
    url: &str,
    form: Option<&str>,
    seconds: u32,
    args: &BenchArgs,
    expect: u16,
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
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    parse_hey(&String::from_utf8_lossy(&out.stdout), expect)
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

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

// ---------------------------------------------------------------------------------------------
// The peer

fn bench_dir() -> PathBuf {
    host::repo_root().join("infra").join("bench")
}

/// `npm install` in `infra/bench` unless `node_modules` came from this very `package.json` (a
/// stamp inside `node_modules` keeps a copy). No lockfile: it would carry registry host names.
fn npm_install_peer() -> anyhow::Result<()> {
    let dir = bench_dir();
    let manifest =
        std::fs::read_to_string(dir.join("package.json")).context("infra/bench/package.json")?;
    let stamp = dir.join("node_modules").join(".edgeid-package.json");
    let node = dir.join("node_modules").join(".bin").join("node");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(manifest.as_str()) && node.is_file()
    {
        return Ok(());
    }
    if !host::on_path("npm") {
        bail!("npm is not on PATH: install Node.js and npm first");
    }
    host::run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
            .current_dir(&dir)
            .env("CI", "true"),
    )?;
    std::fs::write(&stamp, manifest).with_context(|| format!("{}", stamp.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sizes

struct Size {
    function: String,
    host: Host,
    file: PathBuf,
    raw: u64,
    gzipped: u64,
    /// Built by this run (else left from an earlier build).
    fresh: bool,
}

/// Each function's Spin component and Cloudflare Worker wasm, wherever they were built.
fn sizes(built: &[Host]) -> Vec<Size> {
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
fn gzipped_len(file: &Path) -> anyhow::Result<u64> {
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

// ---------------------------------------------------------------------------------------------
// The report

struct Report<'a> {
    args: &'a BenchArgs,
    peer: &'a [(Endpoint, Load)],
    results: &'a [HostResult],
    sizes: &'a [Size],
    failures: &'a [(String, String)],
    load_avg: (Option<String>, Option<String>),
    elapsed: Duration,
}

impl Report<'_> {
    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## Benchmark (`cargo xtask bench`)\n");
        let mut rows = vec![row([
            "host",
            "endpoint",
            "req/s",
            "p50",
            "p99",
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
                "",
                "",
                "",
                &bad_note(load),
            ]));
        }
        for r in self.results {
            for (e, load) in &r.loads {
                let peer = self.peer.iter().find(|(pe, _)| pe == e).map(|(_, l)| l.rps);
                let ratio = peer.filter(|p| *p > 0.0).map(|p| load.rps / p);
                let target = match (e.target(r.host), ratio) {
                    (Some(t), Some(x)) => {
                        format!("≥ {t}× {}", if x >= t { "met" } else { "missed" })
                    }
                    (Some(t), None) => format!("≥ {t}×"),
                    _ => String::new(),
                };
                let mut note = bad_note(load);
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
                    "",
                    "",
                    "",
                    &bad_note(empty),
                ]));
            }
        }
        for (host, err) in self.failures {
            let first = err.lines().next().unwrap_or_default();
            rows.push(row([host, "(not measured)", "", "", "", "", "", "", first]));
        }
        s.push_str(&table(&rows));

        let _ = writeln!(s, "\n### wasm sizes\n");
        let mut size_rows = vec![row([
            "function",
            "host",
            "raw",
            "gzip -9",
            "≤ 1 MiB gzipped",
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
                if z.gzipped <= MIB { "yes" } else { "NO" },
                &format!("`{}`", rel.display()),
                if z.fresh {
                    ""
                } else {
                    "not rebuilt by this run"
                },
            ]));
        }
        if self.sizes.is_empty() {
            size_rows.push(row(["(no wasm built)", "", "", "", "", "", ""]));
        }
        s.push_str(&table(&size_rows));

        let a = self.args;
        let _ = writeln!(s, "\n### Conditions\n");
        let notes = [
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
            "native: the `edgeid` binary (cargo profile `native`: opt-level 3, thin LTO), SQLite file with \
             `journal_mode=WAL`, `synchronous=NORMAL`"
                .into(),
            "spin: the components under the Spin-compatible test host (wasmtime; `spin up` when on PATH), \
             Spin SQLite and key-value as SQLite files with `journal_mode=WAL`, `synchronous=NORMAL`"
                .into(),
            "cloudflare: the Workers in one Miniflare/workerd instance (`infra/cloudflare/runner.mjs`), D1 and KV \
             persisted as local SQLite files (workerd's settings); local workerd is capped by Miniflare's \
             plumbing, so compare with the empty JS Worker on the same runtime"
                .into(),
            format!(
                "peer: oidc-provider {} on Node {} (`infra/bench/peer.mjs`, NODE_ENV=production), in-memory \
                 adapter; RFC 9068 JWT access tokens signed ES256 through a resource server \
                 (`resourceIndicators`, `accessTokenFormat: 'jwt'`); JWKS with one ES256 and one RS256 key, as edgeid's",
                peer_version(),
                run_text(&bench_dir().join("node_modules/.bin/node").to_string_lossy(), &["--version"]),
            ),
            "targets are reported, not asserted; expect noise on a shared machine, and check with \
             `--disable-keepalive` too"
                .into(),
        ];
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
        s
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
    let numeric = |i: usize| {
        rows.iter()
            .skip(1)
            .filter_map(|r| r.get(i))
            .all(|c| c.is_empty() || c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-'))
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

fn load_average() -> Option<String> {
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
fn run_text(program: &str, args: &[&str]) -> String {
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

    #[test]
    fn path_of_keeps_path_and_query() {
        assert_eq!(path_of("http://localhost:8791/jwks"), "/jwks");
        assert_eq!(
            path_of("https://a.example/.well-known/jwks.json?x=1"),
            "/.well-known/jwks.json?x=1"
        );
        assert_eq!(path_of("http://a.example"), "/");
    }
}
