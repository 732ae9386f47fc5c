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

mod load;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::host::{self, Host, Running};
use load::{Load, hey, install_hey};
use report::{Report, load_average, ms, sizes, us};

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
                Err(e) => {
                    eprintln!("xtask: building {} failed: {e:#}", h.name());
                    failures.push((h.name().into(), "build failed (its output is above)".into()));
                }
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
    let loads = measure_endpoints(&running.base_url, running.child.id(), args)?;
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
    let server = running.child.id();
    let loads = measure_endpoints(&running.base_url, server, args)?;
    let empty_worker = if h == Host::Cloudflare {
        let url = format!("{}{EMPTY_WORKER_PATH}", running.base_url);
        let status = status_of(ureq::get(&url))?;
        if status != 404 {
            bail!("{url} answered {status}, not the catch-all Worker's 404");
        }
        let _ = hey(&url, None, WARM_UP_SECONDS, args, 404, server)?;
        Some(hey(&url, None, args.seconds, args, 404, server)?)
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
fn measure_endpoints(
    base_url: &str,
    server: u32,
    args: &BenchArgs,
) -> anyhow::Result<Vec<(Endpoint, Load)>> {
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
        let _ = hey(urls.of(e), token, WARM_UP_SECONDS, args, 200, server)?;
        let load = hey(urls.of(e), token, args.seconds, args, 200, server)?;
        println!(
            "  {:<28} {:>9.0} req/s  p50 {}  p99 {}  CPU {}/req{}",
            e.label(),
            load.rps,
            ms(load.p50),
            ms(load.p99),
            us(load.cpu),
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

#[cfg(test)]
mod tests {
    use super::*;

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
