//! What every host launcher shares: the options a host starts with, readiness, key provisioning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The hosts edgeid runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    Native,
    Spin,
    Cloudflare,
}

impl Host {
    pub const ALL: [Host; 3] = [Host::Native, Host::Spin, Host::Cloudflare];

    pub fn name(self) -> &'static str {
        match self {
            Host::Native => "native",
            Host::Spin => "spin",
            Host::Cloudflare => "cloudflare",
        }
    }
}

/// How a host is started. Every host honours the same variables: issuer, admin token and
/// key-encryption key.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub listen: SocketAddr,
    /// `http://{listen}` unless given.
    pub issuer: String,
    pub admin_token: String,
    /// base64url (no padding) of 32 bytes.
    pub key_encryption_key: String,
    /// Where the host keeps its databases. Created if missing.
    pub state_dir: PathBuf,
    /// Extra environment for the host's process (e.g. the bench's
    /// `EDGEID_SPIN_HOST_SQLITE=spin` for the Spin test host).
    pub env: Vec<(String, String)>,
    /// Spin only: serve the WASIp3 build (`build --host spin --wasip3`) instead of spin.toml's.
    pub spin_wasip3: bool,
}

/// A started host: the process (killed on drop) and its base URL.
pub struct Running {
    pub child: Child,
    pub base_url: String,
}

impl Drop for Running {
    /// SIGTERM first so a host can stop its own children (the Cloudflare runner's workerd),
    /// SIGKILL if it has not exited after a few seconds.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository root (where the workspace `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The build cache kept outside the clone, so CI's fresh clones reuse it.
pub fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("edgeid")
}

/// Waits until `GET {base}/.well-known/openid-configuration` answers 200.
pub fn wait_ready(base_url: &str, child: &mut Child, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let url = format!("{base_url}/.well-known/openid-configuration");
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("host exited before it was ready: {status}");
        }
        if let Ok(resp) = ureq::get(&url).call()
            && resp.status() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("host at {base_url} not ready after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Provisions signing keys through the admin API when the store has none — the deploy step
/// DESIGN.md asks for (keys are never generated lazily on a user-facing path).
pub fn provision_keys(base_url: &str, admin_token: &str) -> anyhow::Result<()> {
    let auth = format!("Bearer {admin_token}");
    let keys: serde_json::Value = ureq::get(&format!("{base_url}/admin/keys"))
        .header("authorization", &auth)
        .call()
        .context("GET /admin/keys")?
        .body_mut()
        .read_json()?;
    let empty = keys["keys"].as_array().is_none_or(Vec::is_empty);
    if empty {
        ureq::post(&format!("{base_url}/admin/keys/rotate"))
            .header("authorization", &auth)
            .send_empty()
            .context("POST /admin/keys/rotate")?;
    }
    Ok(())
}

/// Runs a command to completion, failing with its name when it fails.
pub fn run(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("spawning {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Whether a program is on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A fresh random token, base64url without padding, never starting with `-` (it would read
/// as an option after `--token`).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    loop {
        let mut buf = vec![0u8; bytes];
        getrandom::fill(&mut buf).expect("the OS random source is available");
        let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf);
        if !s.starts_with('-') {
            return s;
        }
    }
}

/// Reads a secret kept in `path`, writing `value` there first if the file does not exist, so a
/// host restarted on the same state keeps opening its sealed keys.
pub fn persistent_secret(path: &Path, value: &str) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path)
        && !existing.trim().is_empty()
    {
        return Ok(existing.trim().to_owned());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(value.as_bytes())?;
    Ok(value.to_owned())
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `cargo` command with the build cache for `dir_name` (outside the clone, so fresh CI clones
/// reuse it; each host its own so their builds never wait on one cargo lock).
pub fn cargo(dir_name: &str) -> std::process::Command {
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(repo_root())
        .env("CARGO_TARGET_DIR", cache_dir().join(dir_name));
    cmd
}

/// Opens (truncating) a log file for a host's output.
pub fn log_file(opts: &HostOptions, name: &str) -> anyhow::Result<(std::fs::File, PathBuf)> {
    std::fs::create_dir_all(&opts.state_dir)?;
    let path = opts.state_dir.join(name);
    Ok((std::fs::File::create(&path)?, path))
}

/// The gzip -9 size of a file, when `gzip` is available.
pub fn gzipped_size(path: &std::path::Path) -> Option<u64> {
    if !on_path("gzip") {
        return None;
    }
    let out = std::process::Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}
