//! `cargo xtask`: build, test, bench and run edgeid on every host.
//!
//! - `cargo xtask up [--host native|spin|cloudflare] [--listen ADDR]`
//! - `cargo xtask test` — installs what the tests need (idempotently), runs the unit and flow
//!   tests, then the black-box suite against every host, and prints `N passed, N failed`.
//! - `cargo xtask bench [--rounds N]` — throughput, server CPU per request and complete
//!   sign-ins per host against the `oidc-provider` peer in alternating rounds (median and
//!   spread), issue 12's targets, and wasm sizes.
//! - `cargo xtask fuzz [--seconds N] [--target T]` — runs the libFuzzer targets in
//!   `tests/fuzz` for N seconds each and prints the executions per target.

mod bench;
mod browser;
mod cloudflare;
mod deploy;
mod first_admin;
mod fuzz;
mod host;
mod native;
mod screenshots;
mod spin;
mod test;
mod wasm_cc;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use host::{Host, HostOptions, Running};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run edgeid locally on one host until interrupted.
    Up {
        #[arg(long, value_enum, default_value = "native")]
        host: Host,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the host keeps its state (default: .edgeid/<host> in the repository).
        #[arg(long)]
        state_dir: Option<std::path::PathBuf>,
        /// Spin: serve the WASIp3 build (spin-sdk 7, reused instances) instead of the default.
        #[arg(long)]
        wasip3: bool,
    },
    /// Build every artefact (native binary, Spin components, Workers).
    Build {
        #[arg(long, value_enum)]
        host: Vec<Host>,
        /// Spin: the WASIp3 build instead (spin-sdk 7, `wasi:http@0.3.0`, for Spin >= 4.1) into
        /// target/spin-wasip3/ with its manifest.
        #[arg(long)]
        wasip3: bool,
    },
    /// Install what the tests need, then run all tests on all hosts.
    Test {
        /// Only these hosts (default: all).
        #[arg(long, value_enum)]
        host: Vec<Host>,
        /// Skip installing tools (they must already be present).
        #[arg(long)]
        no_install: bool,
        /// With the Spin host, the suite also runs against the WASIp3 build; this skips it.
        #[arg(long)]
        no_wasip3: bool,
    },
    /// Measure throughput, CPU per request, sign-ins and sizes against the oidc-provider peer.
    Bench(bench::BenchArgs),
    /// Deploy to your own account: `deploy cloudflare --issuer https://HOST` (see --help).
    Deploy(deploy::DeployArgs),
    /// Fuzz every parser of untrusted input (libFuzzer targets in tests/fuzz).
    Fuzz(fuzz::FuzzArgs),
    /// Regenerate the console screenshots in docs/screenshots (browser tests on native).
    Screenshots,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up {
            host,
            listen,
            state_dir,
            wasip3,
        } => up(host, listen, state_dir, wasip3),
        Command::Build { host, wasip3 } => {
            let hosts = if host.is_empty() {
                Host::ALL.to_vec()
            } else {
                host
            };
            if wasip3 {
                build_wasip3(&hosts)
            } else {
                build(&hosts)
            }
        }
        Command::Test {
            host,
            no_install,
            no_wasip3,
        } => test::run(
            &if host.is_empty() {
                Host::ALL.to_vec()
            } else {
                host
            },
            !no_install,
            !no_wasip3,
        ),
        Command::Bench(args) => bench::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Screenshots => screenshots::run(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn install(host: Host) -> anyhow::Result<()> {
    match host {
        Host::Native => Ok(()),
        Host::Spin => spin::install(),
        Host::Cloudflare => cloudflare::install(),
    }
}

pub fn build(hosts: &[Host]) -> anyhow::Result<()> {
    for host in hosts {
        match host {
            Host::Native => native::build()?,
            Host::Spin => spin::build()?,
            Host::Cloudflare => cloudflare::build()?,
        }
    }
    Ok(())
}

/// `build --wasip3`: the WASIp3 build exists only for Spin.
fn build_wasip3(hosts: &[Host]) -> anyhow::Result<()> {
    if hosts != [Host::Spin] {
        anyhow::bail!("--wasip3 is a Spin build: use `build --host spin --wasip3`");
    }
    spin::build_wasip3()
}

/// Starts `host`, waits until it answers, and provisions signing keys when it has none.
pub fn start(host: Host, opts: &HostOptions) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&opts.state_dir)?;
    let running = match host {
        Host::Native => native::start(opts)?,
        Host::Spin => spin::start(opts)?,
        Host::Cloudflare => cloudflare::start(opts)?,
    };
    host::provision_keys(&running.base_url, &opts.admin_token)?;
    Ok(running)
}

/// Options for a host on `listen`, honouring `EDGEID_ADMIN_TOKEN` and
/// `EDGEID_KEY_ENCRYPTION_KEY`; the issuer is derived from the listen address.
pub fn options(listen: SocketAddr, state_dir: std::path::PathBuf) -> HostOptions {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    HostOptions {
        listen,
        issuer: env("EDGEID_ISSUER").unwrap_or_else(|| format!("http://{listen}")),
        admin_token: env("EDGEID_ADMIN_TOKEN").unwrap_or_else(|| host::random_token(32)),
        key_encryption_key: env("EDGEID_KEY_ENCRYPTION_KEY")
            .unwrap_or_else(|| host::random_token(32)),
        state_dir,
        env: Vec::new(),
        spin_wasip3: false,
    }
}

fn up(
    host: Host,
    listen: SocketAddr,
    state_dir: Option<std::path::PathBuf>,
    wasip3: bool,
) -> anyhow::Result<()> {
    install(host)?;
    if wasip3 {
        build_wasip3(&[host])?;
    } else {
        build(&[host])?;
    }
    let state_dir =
        state_dir.unwrap_or_else(|| host::repo_root().join(".edgeid").join(host.name()));
    let mut opts = options(listen, state_dir);
    opts.spin_wasip3 = wasip3;
    // Secrets stay the same across restarts on the same state (unless given in the
    // environment): sealed keys must keep opening, and the admin token keeps working.
    let given = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if !given("EDGEID_ADMIN_TOKEN") {
        opts.admin_token =
            host::persistent_secret(&opts.state_dir.join("admin-token"), &opts.admin_token)?;
    }
    if !given("EDGEID_KEY_ENCRYPTION_KEY") {
        opts.key_encryption_key = host::persistent_secret(
            &opts.state_dir.join("key-encryption-key"),
            &opts.key_encryption_key,
        )?;
    }
    let mut running = start(host, &opts)?;
    println!("edgeid ({}) on {}", host.name(), running.base_url);
    println!(
        "  discovery:   {}/.well-known/openid-configuration",
        running.base_url
    );
    println!("  admin token: {}", opts.admin_token);
    // The console's first admin (issue 11): created on a store without one, through the
    // admin API, so every host takes the same path.
    let mut api = first_admin::http_api(&running.base_url, &opts.admin_token);
    match first_admin::ensure(&mut api, &first_admin::email_from_env()) {
        Ok(found) => {
            for line in found.lines(&opts.issuer) {
                println!("{line}");
            }
        }
        Err(e) => println!("  console:     {}/ (no first admin: {e:#})", opts.issuer),
    }
    println!(
        "  try:         EDGEID_URL={} EDGEID_TOKEN={} cargo run -q -p edgeid-cli -- client list",
        running.base_url, opts.admin_token
    );
    let status = running.child.wait()?;
    anyhow::bail!("host exited: {status}")
}
