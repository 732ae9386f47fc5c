//! The Cloudflare host: each function built by worker-build into a Worker, all of them served on
//! one local origin by `infra/cloudflare/runner.mjs` (one Miniflare/workerd instance, routes by
//! path, one shared D1 database and KV namespace).
//!
//! Everything is fetched from the package registries: worker-build would download wasm-bindgen,
//! wasm-opt and esbuild from elsewhere, so it is pointed at copies from crates.io
//! (`wasm-bindgen-cli`) and npm (`binaryen`, wrangler's `esbuild`) instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::host::{HostOptions, Running, cache_dir, on_path, repo_root, run, wait_ready};

/// The functions deployed as Workers, each with `infra/cloudflare/wrangler.<name>.jsonc`.
pub const FUNCTIONS: [&str; 7] = [
    "discovery",
    "authorize",
    "token",
    "userinfo",
    "login",
    "admin",
    "recovery",
];

/// The worker-build release that matches the `worker` crate (0.8.x).
const WORKER_BUILD_VERSION: &str = "0.8.7";

/// Workers start in seconds, but the runner first loads wrangler and applies the migrations:
/// generous, for a loaded CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Installs what building and running the Workers needs; skips whatever is already there.
pub fn install() -> anyhow::Result<()> {
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    crate::wasm_cc::install()?;

    if tool_version("worker-build").as_deref() != Some(WORKER_BUILD_VERSION) {
        run(Command::new("cargo").args([
            "install",
            "worker-build",
            "--version",
            WORKER_BUILD_VERSION,
            "--locked",
        ]))?;
    }

    // wasm-bindgen's CLI must match the library exactly. Not `--locked`: its published lockfile
    // pins a crate version the index no longer has.
    let bindgen = wasm_bindgen_version()?;
    if tool_version("wasm-bindgen").as_deref() != Some(bindgen.as_str()) {
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &bindgen]))?;
    }

    npm_install()
}

/// Builds every function into `functions/<name>/build/` (`index.js` + `index_bg.wasm`) and
/// prints the wasm sizes.
pub fn build() -> anyhow::Result<()> {
    let worker_build = cargo_bin("worker-build");
    for (tool, path) in [
        ("worker-build", &worker_build),
        ("wasm-bindgen", &cargo_bin("wasm-bindgen")),
        ("wasm-opt", &node_bin("wasm-opt")),
        ("esbuild", &node_bin("esbuild")),
    ] {
        if !path.is_file() {
            bail!(
                "{tool} is missing at {}: run the Cloudflare install step first",
                path.display()
            );
        }
    }
    for name in FUNCTIONS {
        let dir = repo_root().join("functions").join(name);
        run(Command::new(&worker_build)
            .arg("--release")
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", cache_dir().join("target-cf"))
            .env("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen"))
            .env("WASM_OPT_BIN", node_bin("wasm-opt"))
            .env("ESBUILD_BIN", node_bin("esbuild")))
        .with_context(|| format!("building the {name} Worker"))?;
    }
    for name in FUNCTIONS {
        let wasm = repo_root()
            .join("functions")
            .join(name)
            .join("build/index_bg.wasm");
        let raw = fs::metadata(&wasm)
            .with_context(|| format!("{}", wasm.display()))?
            .len();
        match crate::host::gzipped_size(&wasm) {
            Some(gz) => println!("cloudflare {name}: {raw} bytes wasm, {gz} gzipped"),
            None => println!("cloudflare {name}: {raw} bytes wasm"),
        }
    }
    Ok(())
}

/// Starts the runner on `opts.listen` and waits until discovery answers.
/// The runner's output goes to `<state_dir>/cloudflare.log`.
pub fn start(opts: &HostOptions) -> anyhow::Result<Running> {
    let node = node_bin("node");
    let runner = cloudflare_dir().join("runner.mjs");
    if !node.is_file() {
        bail!(
            "{} is missing: run the Cloudflare install step first",
            node.display()
        );
    }
    fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;
    let log_path = opts.state_dir.join("cloudflare.log");
    let log = fs::File::create(&log_path).with_context(|| format!("{}", log_path.display()))?;

    let child = Command::new(&node)
        .arg(&runner)
        .arg("--host")
        .arg(opts.listen.ip().to_string())
        .arg("--port")
        .arg(opts.listen.port().to_string())
        .arg("--state")
        .arg(&opts.state_dir)
        .current_dir(cloudflare_dir())
        .env("EDGEID_ISSUER", &opts.issuer)
        .env("EDGEID_ADMIN_TOKEN", &opts.admin_token)
        .env("EDGEID_KEY_ENCRYPTION_KEY", &opts.key_encryption_key)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawning {} {}", node.display(), runner.display()))?;

    let mut running = Running {
        child,
        base_url: format!("http://{}", opts.listen),
    };
    if let Err(err) = wait_ready(&running.base_url, &mut running.child, READY_TIMEOUT) {
        let tail = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(30).collect();
        eprintln!("--- last lines of {}:", log_path.display());
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        return Err(err.context(format!(
            "cloudflare host failed; log: {}",
            log_path.display()
        )));
    }
    Ok(running)
}

fn cloudflare_dir() -> PathBuf {
    repo_root().join("infra").join("cloudflare")
}

/// A tool from `infra/cloudflare/node_modules` (Node 22, wrangler, wasm-opt, esbuild).
fn node_bin(name: &str) -> PathBuf {
    cloudflare_dir()
        .join("node_modules")
        .join(".bin")
        .join(name)
}

/// Where `cargo install` puts binaries.
fn cargo_bin(name: &str) -> PathBuf {
    let root = std::env::var_os("CARGO_INSTALL_ROOT")
        .or_else(|| std::env::var_os("CARGO_HOME"))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    root.join("bin").join(name)
}

/// The version a cargo-installed tool reports (`worker-build 0.8.7` prints `0.8.7`,
/// `wasm-bindgen --version` prints `wasm-bindgen 0.2.130`), if it runs at all.
fn tool_version(name: &str) -> Option<String> {
    let out = Command::new(cargo_bin(name))
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .map(str::to_owned)
}

/// The wasm-bindgen version in the workspace's `Cargo.lock` (created if missing).
fn wasm_bindgen_version() -> anyhow::Result<String> {
    let lock_path = repo_root().join("Cargo.lock");
    if !lock_path.is_file() {
        run(Command::new("cargo")
            .arg("generate-lockfile")
            .current_dir(repo_root()))?;
    }
    let lock =
        fs::read_to_string(&lock_path).with_context(|| format!("{}", lock_path.display()))?;
    let mut versions: Vec<&str> = lock
        .split("[[package]]")
        .filter(|pkg| pkg.lines().any(|l| l.trim() == r#"name = "wasm-bindgen""#))
        .filter_map(|pkg| {
            pkg.lines()
                .find_map(|l| l.trim().strip_prefix("version = "))
                .map(|v| v.trim_matches('"'))
        })
        .collect();
    versions.sort_unstable();
    versions.dedup();
    match versions.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("no wasm-bindgen in {}", lock_path.display()),
        many => bail!(
            "several wasm-bindgen versions in {}: {many:?}",
            lock_path.display()
        ),
    }
}

/// `npm install` in `infra/cloudflare` unless `node_modules` was installed from this very
/// `package.json` (a stamp inside `node_modules` keeps a copy of it).
fn npm_install() -> anyhow::Result<()> {
    let dir = cloudflare_dir();
    let manifest =
        fs::read_to_string(dir.join("package.json")).context("infra/cloudflare/package.json")?;
    let stamp = dir.join("node_modules").join(".edgeid-package.json");
    let installed = fs::read_to_string(&stamp).ok();
    if installed.as_deref() == Some(manifest.as_str()) && node_bin("node").is_file() {
        return Ok(());
    }
    if !on_path("npm") {
        bail!("npm is not on PATH: install Node.js and npm (any recent version) first");
    }
    // `npm install`, not `npm ci`: a lockfile made here lacks workerd's other-platform packages.
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .env("CI", "true"))?;
    fs::write(&stamp, manifest).with_context(|| format!("{}", stamp.display()))?;
    Ok(())
}
