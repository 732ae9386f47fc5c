//! `cargo xtask bench`: per host, client_credentials, discovery and JWKS throughput, latency and
//! server CPU per request under `hey` on loopback, and the CPU of a complete sign-in
//! (authorize → login → code → token with an RS256 ID token → userinfo, [`signin`]), each against
//! the npm package `oidc-provider` set up for the same work (`infra/bench/peer.mjs`); plus each
//! function's wasm size, raw and gzipped.
//!
//! One run on a shared machine is not a figure (issue 12, item 6): every (peer, host) pair is
//! measured `--rounds` times (default 3), the two alternating which goes first, and the report
//! gives the median and the spread (min–max) of each figure, and of the ratio to the peer
//! measured in the same round. All providers are started once and stay up for every round.
//!
//! Prints the tables and writes them as markdown to `target/bench.md`, with issue 12's targets
//! next to the figures (met / not met); they are reported, not asserted.
//!
//! Local workerd throughput is capped by Miniflare's plumbing, not by the Worker, so the
//! Cloudflare rows also give the ratio to an empty JS Worker on the same runtime in the same run:
//! the runner's catch-all Worker, which answers any path no function serves with a static 404.

mod load;
mod report;
mod sign;
mod signin;

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
    /// Rounds per (peer, host) pair, alternating which is measured first; the report gives the
    /// median and the spread (min–max).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Worker threads (one account each) of the sign-in bench; 0 skips it. Its phases run
    /// `--seconds` each.
    #[arg(long, default_value_t = 4)]
    pub signin_workers: u32,
    /// `sign`: the wasm signing micro-benchmark instead (fresh instance per iteration).
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// Each signer candidate in a fresh wasm instance per iteration (issue 12).
    Sign(sign::SignArgs),
}

/// The bench client, created through the admin API on each host and configured in the peer.
const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-secret-123456";
const TOKEN_BODY: &str = "grant_type=client_credentials&scope=read";
const WARM_UP_SECONDS: u32 = 1;
/// A path no Cloudflare route matches: the runner's catch-all JS Worker answers it (404).
const EMPTY_WORKER_PATH: &str = "/__edgeid_bench_empty";

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(BenchWhat::Sign(sign)) = &args.what {
        return sign::run_sign(sign);
    }
    if args.seconds == 0 || args.concurrency == 0 || args.rounds == 0 {
        bail!("--seconds, --concurrency and --rounds must be at least 1");
    }
    let hosts = if args.hosts.is_empty() {
        Host::ALL.to_vec()
    } else {
        args.hosts.clone()
    };
    install_hey()?;
    npm_install_peer()?;
    let run_started = std::time::SystemTime::now();
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

    // Variants with a build of their own (beyond their host's, built above).
    let variants: Vec<Variant> = variants(&hosts);
    if !args.no_build {
        for v in &variants {
            if let Some(build) = v.build
                && built.contains(&v.host)
                && let Err(e) = build()
            {
                eprintln!("xtask: building {} failed: {e:#}", v.label);
                failures.push((v.label.into(), "build failed (its output is above)".into()));
            }
        }
    }

    let started = Instant::now();
    let load_avg_start = load_average();
    println!("bench: starting the peer (oidc-provider)");
    let peer = start_peer(&args).context("starting the oidc-provider peer")?;
    if let Some(e) = &peer.signin_error {
        failures.push(("oidc-provider (peer)".into(), e.clone()));
    }
    let mut providers = Vec::new();
    for v in variants {
        if failures
            .iter()
            .any(|(name, _)| name == v.host.name() || name == v.label)
        {
            continue;
        }
        println!("bench: starting {}", v.label);
        match Provider::start(&v, &args) {
            Ok(p) => {
                if let Some(e) = &p.signin_error {
                    failures.push((v.label.to_owned(), e.clone()));
                }
                providers.push((v, p));
            }
            Err(e) => {
                eprintln!("xtask: starting {} failed: {e:#}", v.label);
                failures.push((v.label.to_owned(), format!("{e:#}")));
            }
        }
    }

    let mut results: Vec<VariantResult> = providers
        .iter()
        .map(|(v, _)| VariantResult {
            variant: v.clone(),
            pairs: Vec::new(),
        })
        .collect();
    // One pass over every provider before the rounds, so none is measured cold (JIT, caches,
    // compiled components) in round 1.
    println!("bench: warming up");
    for p in std::iter::once(&peer).chain(providers.iter().map(|(_, p)| p)) {
        if let Err(e) = p.warm_up(&args) {
            eprintln!("xtask: warming up {} failed: {e:#}", p.base_url);
        }
    }
    for round in 0..args.rounds {
        for ((v, ours), result) in providers.iter().zip(&mut results) {
            // Alternate which of the pair goes first, so a drift in the machine's load
            // favours neither.
            let peer_first = round % 2 == 0;
            let one = |p: &Provider, label: &str| {
                println!("bench: round {}/{}: {label}", round + 1, args.rounds);
                p.measure(&args)
            };
            let (peer_m, ours_m) = if peer_first {
                let a = one(&peer, "oidc-provider (peer)");
                (a, one(ours, v.label))
            } else {
                let b = one(ours, v.label);
                (one(&peer, "oidc-provider (peer)"), b)
            };
            match (peer_m, ours_m) {
                (Ok(peer), Ok(ours)) => result.pairs.push(Pair {
                    round: round + 1,
                    peer_first,
                    peer,
                    ours,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("xtask: round {} of {} failed: {e:#}", round + 1, v.label);
                    failures.push((v.label.to_owned(), format!("round {}: {e:#}", round + 1)));
                }
            }
        }
    }
    drop(providers);
    drop(peer);
    results.retain(|r| !r.pairs.is_empty());
    let sizes = sizes(run_started);

    let report = Report {
        args: &args,
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
        bail!("{} measurement(s) failed (see above)", failures.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What is measured

/// What a variant's figures are checked against (issue 12's targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Native,
    /// The spin-sdk 5.2 build (a fresh instance per request).
    SpinWasip2,
    /// The spin-sdk 7 build (instances reused, as Spin ≥ 4.1 does).
    SpinWasip3,
    Workerd,
}

/// One way of running a host: a row group of the report.
#[derive(Debug, Clone)]
struct Variant {
    label: &'static str,
    host: Host,
    kind: Kind,
    /// Extra environment for the host's process.
    env: &'static [(&'static str, &'static str)],
    /// How it ran and where it kept its state (the report's conditions).
    conditions: &'static str,
    /// Spin: serve the WASIp3 build (`HostOptions::spin_wasip3`).
    spin_wasip3: bool,
    /// Builds this variant's artefacts after its host's build (`None`: the host's build is all).
    build: Option<fn() -> anyhow::Result<()>>,
    /// Starts it instead of `crate::start(host, ..)` (keys are provisioned after either).
    start: Option<fn(&host::HostOptions) -> anyhow::Result<Running>>,
}

/// The variants of `hosts`, in report order.
fn variants(hosts: &[Host]) -> Vec<Variant> {
    let mut out = Vec::new();
    for &h in hosts {
        match h {
            Host::Native => out.push(Variant {
                label: "native",
                host: h,
                kind: Kind::Native,
                env: &[],
                spin_wasip3: false,
                build: None,
                start: None,
                conditions: "the `edgeid` binary (cargo profile `native`: opt-level 3, thin LTO), \
                    one thread per CPU; SQLite file with `journal_mode=WAL`, `synchronous=NORMAL`",
            }),
            Host::Spin if host::on_path("spin") => out.push(Variant {
                label: "spin (spin up)",
                host: h,
                kind: Kind::SpinWasip2,
                env: &[],
                spin_wasip3: false,
                build: None,
                start: None,
                conditions: "the WASIp2 components under `spin up`; Spin's default SQLite and \
                    key-value files",
            }),
            Host::Spin => {
                out.push(Variant {
                    label: "spin",
                    host: h,
                    kind: Kind::SpinWasip2,
                    env: &[],
                    spin_wasip3: false,
                    build: None,
                    start: None,
                    conditions: "the WASIp2 components (spin-sdk 5.2) under the Spin-compatible \
                        test host (wasmtime, `tests/spin-host`), a fresh instance per request; \
                        Spin SQLite and key-value as SQLite files with `journal_mode=WAL`, \
                        `synchronous=NORMAL` (the test host's default)",
                });
                out.push(Variant {
                    label: "spin (Spin's SQLite defaults)",
                    host: h,
                    kind: Kind::SpinWasip2,
                    env: &[("EDGEID_SPIN_HOST_SQLITE", "spin")],
                    spin_wasip3: false,
                    build: None,
                    start: None,
                    conditions: "as `spin`, but the test host leaves `journal_mode` and \
                        `synchronous` alone (`EDGEID_SPIN_HOST_SQLITE=spin`), as `spin up` does: \
                        the journal mode the database file records, `synchronous=FULL`",
                });
                // WASIp3 (issue 12, item 4): the spin-sdk 7 build, with Spin 4's reuse.
                out.push(Variant {
                    label: "spin (WASIp3)",
                    host: h,
                    kind: Kind::SpinWasip3,
                    env: &[],
                    spin_wasip3: true,
                    build: Some(crate::spin::build_wasip3),
                    start: None,
                    conditions: "the WASIp3 components (spin-sdk 7, `wasi:http@0.3.0`, \
                        `target/spin-wasip3/`) under the test host, instances reused as Spin \
                        ≥ 4.1 reuses them (up to 128 requests each, 16 at once); SQLite as `spin`",
                });
            }
            Host::Cloudflare => out.push(Variant {
                label: "cloudflare",
                host: h,
                kind: Kind::Workerd,
                env: &[],
                spin_wasip3: false,
                build: None,
                start: None,
                conditions: "the Workers in one Miniflare/workerd instance \
                    (`infra/cloudflare/runner.mjs`); D1 and KV persisted as local SQLite files by \
                    Miniflare (its settings); local workerd is capped by Miniflare's plumbing, so \
                    compare with the empty JS Worker on the same runtime",
            }),
        }
    }
    out
}

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
}

/// A provider's URLs, read from its discovery document (paths kept, aimed at the loopback
/// address the bench connects to).
struct Urls {
    token: String,
    discovery: String,
    jwks: String,
    authorize: String,
    userinfo: String,
}

impl Urls {
    fn of(&self, e: Endpoint) -> &str {
        match e {
            Endpoint::ClientCredentials => &self.token,
            Endpoint::Discovery => &self.discovery,
            Endpoint::Jwks => &self.jwks,
        }
    }

    fn read(base_url: &str) -> anyhow::Result<Urls> {
        let discovery = format!("{base_url}/.well-known/openid-configuration");
        let doc: serde_json::Value = ureq::get(&discovery).call()?.body_mut().read_json()?;
        let local = |field: &str| -> anyhow::Result<String> {
            let url = doc[field]
                .as_str()
                .with_context(|| format!("discovery has no {field}"))?;
            Ok(format!("{base_url}{}", path_of(url)))
        };
        Ok(Urls {
            token: local("token_endpoint")?,
            jwks: local("jwks_uri")?,
            authorize: local("authorization_endpoint")?,
            userinfo: local("userinfo_endpoint")?,
            discovery,
        })
    }
}

/// One provider's figures in one round.
struct Measurement {
    loads: Vec<(Endpoint, Load)>,
    /// `None` with `--signin-workers 0`; an error when the sign-in bench failed (the rest of
    /// the round still counts).
    signin: Option<Result<signin::SignIn, String>>,
    /// Cloudflare only: the runner's catch-all JS Worker on the same workerd.
    empty_worker: Option<Load>,
}

/// The peer and a host measured back to back in one round.
struct Pair {
    /// 1-based.
    round: u32,
    /// Whether the peer was measured before the host.
    peer_first: bool,
    peer: Measurement,
    ours: Measurement,
}

struct VariantResult {
    variant: Variant,
    pairs: Vec<Pair>,
}

/// A started provider, ready to be measured.
struct Provider {
    /// Always `Some` until dropped.
    running: Option<Running>,
    base_url: String,
    server: u32,
    urls: Urls,
    /// Sign-in accounts, one per worker.
    accounts: Vec<String>,
    /// edgeid's admin token: each round measures one argon2id hash through the admin API.
    admin_token: Option<String>,
    /// Cloudflare: the empty Worker's URL.
    empty_worker: Option<String>,
    /// Removed on drop (after the process is stopped).
    state: Option<PathBuf>,
    /// Why its sign-ins are skipped.
    signin_error: Option<String>,
}

impl Drop for Provider {
    /// Stops the process (`Running`'s drop), then removes its state.
    fn drop(&mut self) {
        drop(self.running.take());
        if let Some(dir) = &self.state {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Provider {
    /// Starts an edgeid host with fresh state, registers the bench clients, creates the
    /// sign-in accounts (measuring one argon2id hash on the way) and checks both flows once.
    fn start(v: &Variant, args: &BenchArgs) -> anyhow::Result<Provider> {
        let dir_name: String = v
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let state = host::cache_dir().join("bench").join(dir_name);
        let _ = std::fs::remove_dir_all(&state);
        let listen = SocketAddr::from(([127, 0, 0, 1], host::free_port()?));
        let mut opts = crate::options(listen, state.clone());
        opts.spin_wasip3 = v.spin_wasip3;
        opts.env = v
            .env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let running = match v.start {
            Some(start) => {
                std::fs::create_dir_all(&opts.state_dir)?;
                let running = start(&opts)?;
                host::provision_keys(&running.base_url, &opts.admin_token)?;
                running
            }
            None => crate::start(v.host, &opts)?,
        };
        let server = running.child.id();
        let base = running.base_url.clone();
        create_client(&base, &opts.admin_token)?;
        let urls = Urls::read(&base)?;
        let empty_worker = if v.host == Host::Cloudflare {
            let url = format!("{base}{EMPTY_WORKER_PATH}");
            let status = status_of(ureq::get(&url))?;
            if status != 404 {
                bail!("{url} answered {status}, not the catch-all Worker's 404");
            }
            Some(url)
        } else {
            None
        };
        let accounts = if args.signin_workers > 0 {
            signin::create_rp(&base, &opts.admin_token)?;
            let workers = usize::try_from(args.signin_workers).unwrap_or(1);
            // Creates the accounts (and warms the admin path up); each round measures again.
            signin::argon2_cost(&base, &opts.admin_token, server, workers)?.0
        } else {
            Vec::new()
        };
        let mut p = Provider {
            running: Some(running),
            base_url: base,
            server,
            urls,
            accounts,
            admin_token: Some(opts.admin_token.clone()),
            empty_worker,
            state: Some(state),
            signin_error: None,
        };
        p.check()?;
        Ok(p)
    }

    /// A client_credentials token and, with accounts, one sign-in: fail before any round.
    /// A failed sign-in does not stop the rest: this provider's sign-ins are skipped and the
    /// failure goes to `signin_error` (and the report).
    fn check(&mut self) -> anyhow::Result<()> {
        let body = token_request(&self.urls.token)?;
        if !body["access_token"].is_string() {
            bail!("{} returned no access_token: {body}", self.urls.token);
        }
        if !self.accounts.is_empty()
            && let Err(e) = signin::check(&self.signin_target())
        {
            eprintln!(
                "xtask: a sign-in on {} failed, skipping its sign-ins: {e:#}",
                self.base_url
            );
            self.signin_error = Some(format!("sign-in: {e:#}"));
            self.accounts.clear();
        }
        Ok(())
    }

    fn signin_target(&self) -> signin::Target<'_> {
        signin::Target {
            authorize: self.urls.authorize.clone(),
            token: self.urls.token.clone(),
            userinfo: self.urls.userinfo.clone(),
            base_url: &self.base_url,
            server: self.server,
            accounts: &self.accounts,
        }
    }

    /// Each endpoint under load for the warm-up time, and a few sign-ins.
    fn warm_up(&self, args: &BenchArgs) -> anyhow::Result<()> {
        for e in Endpoint::ALL {
            let token = (e == Endpoint::ClientCredentials).then_some(TOKEN_BODY);
            let _ = hey(
                self.urls.of(e),
                token,
                WARM_UP_SECONDS,
                args,
                200,
                self.server,
            )?;
        }
        if !self.accounts.is_empty() {
            for _ in 0..3 {
                signin::check(&self.signin_target())?;
            }
        }
        Ok(())
    }

    /// One round: warm-up and measurement of each endpoint, the empty Worker, the sign-ins.
    fn measure(&self, args: &BenchArgs) -> anyhow::Result<Measurement> {
        let server = self.server;
        let mut loads = Vec::new();
        for e in Endpoint::ALL {
            let token = (e == Endpoint::ClientCredentials).then_some(TOKEN_BODY);
            let url = self.urls.of(e);
            let _ = hey(url, token, WARM_UP_SECONDS, args, 200, server)?;
            let load = hey(url, token, args.seconds, args, 200, server)?;
            print_load(e.label(), &load);
            loads.push((e, load));
        }
        let empty_worker = match &self.empty_worker {
            Some(url) => {
                let _ = hey(url, None, WARM_UP_SECONDS, args, 404, server)?;
                let load = hey(url, None, args.seconds, args, 404, server)?;
                print_load("empty JS Worker", &load);
                Some(load)
            }
            None => None,
        };
        let signin = (!self.accounts.is_empty()).then(|| {
            // The argon2id hash right before the sign-ins, under the same conditions.
            let argon2 = match &self.admin_token {
                Some(token) => {
                    signin::argon2_cost(&self.base_url, token, server, self.accounts.len())
                        .map(|(_, estimate)| estimate)
                }
                None => Ok(None),
            };
            let r = argon2.and_then(|argon2| {
                let mut s = signin::run(&self.signin_target(), args.seconds)?;
                s.argon2 = argon2;
                Ok(s)
            });
            match &r {
                Ok(s) => println!(
                    "  {:<28} {:>9} sign-ins  A {}/sign-in  B {}/token  C {}/userinfo  argon2id {}{}",
                    "sign-in",
                    s.login.count,
                    us(s.login.cpu),
                    us(s.token.cpu),
                    us(s.userinfo.cpu),
                    us(s.argon2),
                    if s.failed > 0 {
                        format!(
                            "  ({} failed: {})",
                            s.failed,
                            s.first_error.as_deref().unwrap_or("")
                        )
                    } else {
                        String::new()
                    }
                ),
                Err(e) => println!("  sign-in failed: {e:#}"),
            }
            r.map_err(|e| format!("{e:#}"))
        });
        Ok(Measurement {
            loads,
            signin,
            empty_worker,
        })
    }
}

fn print_load(label: &str, load: &Load) {
    println!(
        "  {:<28} {:>9.0} req/s  p50 {}  p99 {}  CPU {}/req{}",
        label,
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
}

/// Starts `infra/bench/peer.mjs` with NODE_ENV=production and checks it like a host.
fn start_peer(args: &BenchArgs) -> anyhow::Result<Provider> {
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
        // The `debug` package oidc-provider logs through stays off.
        .env_remove("DEBUG")
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
    let urls = Urls::read(&running.base_url)?;
    let workers = usize::try_from(args.signin_workers).unwrap_or(1);
    let mut p = Provider {
        base_url: running.base_url.clone(),
        server: running.child.id(),
        running: Some(running),
        urls,
        accounts: if workers > 0 {
            signin::peer_accounts(workers)
        } else {
            Vec::new()
        },
        admin_token: None,
        empty_worker: None,
        state: None,
        signin_error: None,
    };
    p.check()
        .with_context(|| format!("peer log: {}", log_path.display()))?;
    Ok(p)
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
