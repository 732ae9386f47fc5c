//! `edgeid-spin-host --manifest spin.toml --listen 127.0.0.1:3000 --state-dir .spin
//!   [--runtime-config-file FILE] [--sqlite @file.sql]...`
//!
//! Stands in for `spin up` where the Spin CLI cannot be installed; see the library docs.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use edgeid_spin_host::server::{Host, Options, Reuse};

/// Serve a Spin application (spin_manifest_version = 2) over HTTP, like `spin up`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The application manifest.
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where the SQLite files live (`sqlite_db.db`, `sqlite_key_value.db`), like `.spin/`.
    #[arg(long, default_value = ".spin")]
    state_dir: PathBuf,
    /// SQL run on the default database before serving: `@file.sql` or a statement. Repeatable.
    #[arg(long)]
    sqlite: Vec<String>,
    /// Spin runtime config: `[sqlite_database.<label>]` tables (type "spin", a file path).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Requests one WASIp3 instance serves before it is retired (Spin's default).
    #[arg(long, default_value_t = 128)]
    max_instance_reuse_count: usize,
    /// Requests one WASIp3 instance serves at once (Spin's default).
    #[arg(long, default_value_t = 16)]
    max_instance_concurrent_reuse_count: usize,
    /// Milliseconds an idle WASIp3 instance is kept for the next request (Spin: 1 s).
    #[arg(long, default_value_t = 1000)]
    idle_instance_timeout_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = Options {
        manifest: args.manifest,
        listen: args.listen,
        state_dir: args.state_dir,
        sqlite: args.sqlite,
        runtime_config: args.runtime_config_file,
        reuse: Reuse {
            max_instance_reuse_count: args.max_instance_reuse_count,
            max_instance_concurrent_reuse_count: args.max_instance_concurrent_reuse_count,
            idle_instance_timeout: std::time::Duration::from_millis(args.idle_instance_timeout_ms),
        },
    };
    let host = Host::new(&opts, |name| std::env::var(name).ok())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(host.serve())
}
