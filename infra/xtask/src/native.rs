//! The native host: the `edgeid` binary with embedded SQLite.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::host::{self, HostOptions, Running};

/// The cargo profile for the native binary (release with thin LTO and opt-level 3).
pub const PROFILE: &str = "native";

pub fn binary() -> PathBuf {
    host::cache_dir()
        .join("target")
        .join(PROFILE)
        .join("edgeid")
}

pub fn build() -> anyhow::Result<()> {
    host::run(host::cargo("target").args(["build", "--profile", PROFILE, "-p", "edgeid-cli"]))
}

pub fn start(opts: &HostOptions) -> anyhow::Result<Running> {
    let (log, log_path) = host::log_file(opts, "edgeid.log")?;
    let mut cmd = Command::new(binary());
    cmd.args([
        "serve",
        "--listen",
        &opts.listen.to_string(),
        "--issuer",
        &opts.issuer,
    ])
    .arg("--data")
    .arg(&opts.state_dir)
    .env("EDGEID_ADMIN_TOKEN", &opts.admin_token)
    .envs(opts.env.iter().map(|(k, v)| (k, v)))
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    if !opts.key_encryption_key.is_empty() {
        cmd.env("EDGEID_KEY_ENCRYPTION_KEY", &opts.key_encryption_key);
    } else {
        cmd.env_remove("EDGEID_KEY_ENCRYPTION_KEY");
    }
    let mut child = cmd.spawn()?;
    let base_url = format!("http://{}", opts.listen);
    if let Err(e) = host::wait_ready(&base_url, &mut child, Duration::from_secs(120)) {
        let _ = child.kill();
        anyhow::bail!("{e:#} (log: {})", log_path.display());
    }
    Ok(Running { child, base_url })
}
