//! The Spin host: build the components for `wasm32-wasip2`, build the Spin-compatible test
//! host, and start either the real `spin up` (when the CLI is on `PATH`) or the test host on
//! the repository's `spin.toml`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::host::{
    HostOptions, Running, cache_dir, cargo, log_file, on_path, repo_root, run, wait_ready,
};

/// The components `spin.toml` serves, by crate name.
const COMPONENTS: [&str; 7] = [
    "edgeid-discovery",
    "edgeid-authorize",
    "edgeid-token",
    "edgeid-userinfo",
    "edgeid-login",
    "edgeid-admin",
    "edgeid-recovery",
];
const TARGET: &str = "wasm32-wasip2";
/// First start compiles ~1-2 MB of wasm with Cranelift (cached afterwards).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Adds the `wasm32-wasip2` target and the C compiler ring needs for it (no-ops when they
/// are installed).
pub fn install() -> anyhow::Result<()> {
    run(Command::new("rustup").args(["target", "add", TARGET]))?;
    crate::wasm_cc::install()
}

/// Builds the components and the test host.
///
/// Each build has its own target dir under the cache: the components' so CI's fresh clones
/// reuse it, the host's so its ~10-minute wasmtime build never holds the cargo lock that other
/// builds wait on.
pub fn build() -> anyhow::Result<()> {
    build_components()?;
    build_test_host()
}

/// `cargo build --release --target wasm32-wasip2 -p …` and copies the `.wasm` files to
/// `target/wasm32-wasip2/release/`, where `spin.toml`'s `source` paths point.
pub fn build_components() -> anyhow::Result<()> {
    let root = repo_root();
    let target_dir = cache_dir().join("target-spin");
    let mut cmd = cargo("target-spin");
    cmd.args(["build", "--release", "--target", TARGET]);
    for c in COMPONENTS {
        cmd.args(["-p", c]);
    }
    run(&mut cmd)?;

    let built = target_dir.join(TARGET).join("release");
    let dest = root.join("target").join(TARGET).join("release");
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    for c in COMPONENTS {
        let file = format!("{}.wasm", c.replace('-', "_"));
        std::fs::copy(built.join(&file), dest.join(&file))
            .with_context(|| format!("copying {file} to {}", dest.display()))?;
    }
    for c in COMPONENTS {
        let file = dest.join(format!("{}.wasm", c.replace('-', "_")));
        let raw = std::fs::metadata(&file)
            .with_context(|| format!("{}", file.display()))?
            .len();
        let name = c.trim_start_matches("edgeid-");
        match crate::host::gzipped_size(&file) {
            Some(gz) => println!("spin {name}: {raw} bytes wasm, {gz} gzipped"),
            None => println!("spin {name}: {raw} bytes wasm"),
        }
    }
    Ok(())
}

/// Builds `edgeid-spin-host` in release mode.
///
/// The workspace's release profile is tuned for small wasm (`opt-level = "s"`, fat LTO, one
/// codegen unit, `panic = "abort"`). For wasmtime that would multiply the build time and let
/// one panic in a connection task abort the whole host, so this build overrides them.
pub fn build_test_host() -> anyhow::Result<()> {
    let mut cmd = cargo("target-spinhost");
    cmd.args(["build", "--release", "-p", "edgeid-spin-host"]);
    host_profile(&mut cmd);
    run(&mut cmd)
}

/// The release-profile overrides the test host is built with; tests of the host
/// (`cargo test --release -p edgeid-spin-host`) need the same ones to reuse the build.
pub fn host_profile(cmd: &mut Command) -> &mut Command {
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_PROFILE_RELEASE_PANIC", "unwind")
}

/// `cargo test --release -p edgeid-spin-host` with the host's profile, so the tests reuse the
/// release build of wasmtime instead of compiling a debug one (and a debug Cranelift, which
/// compiles the ~1 MB components many times slower).
pub fn test_host_tests() -> Command {
    let mut cmd = cargo("target-spinhost");
    cmd.args(["test", "--release", "-p", "edgeid-spin-host"]);
    host_profile(&mut cmd);
    cmd
}

/// The test host binary built by [`build_test_host`].
pub fn test_host_binary() -> PathBuf {
    cache_dir()
        .join("target-spinhost")
        .join("release")
        .join("edgeid-spin-host")
}

/// The migrations in `dir` (`*.sql`), in file-name order (`0001_…`, `0002_…`).
fn migrations_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no migrations in {}", dir.display());
    }
    Ok(files)
}

/// The SQLite label of the credentials database (spin.toml; `edgeid::platform::spin`).
const CREDENTIALS_LABEL: &str = "credentials";

/// Writes `<state_dir>/runtime-config.toml`, which puts the `credentials` database in the
/// state directory (`infra/spin/runtime-config.toml` puts it in `.spin/` for a manual
/// `spin up`; an absolute path keeps every state directory self-contained), and applies the
/// credentials migrations to it: `spin up --sqlite` only reaches `default`. Idempotent.
fn credentials_database(root: &Path, state_dir: &Path) -> anyhow::Result<PathBuf> {
    let state_dir = std::path::absolute(state_dir)
        .with_context(|| format!("resolving {}", state_dir.display()))?;
    let db_path = state_dir.join(format!("{CREDENTIALS_LABEL}.db"));
    let db = rusqlite::Connection::open(&db_path)
        .with_context(|| format!("opening {}", db_path.display()))?;
    for file in migrations_in(&root.join("infra/migrations/credentials"))? {
        let sql = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        db.execute_batch(&sql)
            .with_context(|| format!("applying {} to {}", file.display(), db_path.display()))?;
    }
    drop(db);

    let config_path = state_dir.join("runtime-config.toml");
    let db_toml = serde_json::to_string(&db_path.display().to_string())?; // a TOML basic string
    std::fs::write(
        &config_path,
        format!(
            "# Written by `cargo xtask` for this state directory.\n\
             [sqlite_database.{CREDENTIALS_LABEL}]\ntype = \"spin\"\npath = {db_toml}\n"
        ),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}

/// Starts the application on `opts.listen` and waits until discovery answers.
///
/// Uses `spin up` when the Spin CLI is installed, else the test host (build it first with
/// [`build`]); either way with a runtime config defining the `credentials` database. The
/// migrations are idempotent, so they are applied on every start: the main ones to `default`
/// with `--sqlite @file`, the credentials ones by [`credentials_database`]. The process's
/// output goes to `<state_dir>/spin.log`.
pub fn start(opts: &HostOptions) -> anyhow::Result<Running> {
    let root = repo_root();
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;

    let real_spin = on_path("spin");
    let mut cmd = if real_spin {
        let mut cmd = Command::new("spin");
        cmd.arg("up");
        cmd
    } else {
        let bin = test_host_binary();
        if !bin.is_file() {
            bail!("{} is not built (run the spin build first)", bin.display());
        }
        Command::new(bin)
    };
    cmd.current_dir(&root)
        .arg("--listen")
        .arg(opts.listen.to_string())
        .arg("--state-dir")
        .arg(&opts.state_dir);
    if !real_spin {
        cmd.arg("--manifest").arg(root.join("spin.toml"));
    }
    cmd.arg("--runtime-config-file")
        .arg(credentials_database(&root, &opts.state_dir)?);
    // Spin's local `default` database in WAL mode, as the README's `spin up` line has it.
    let mut wal = std::ffi::OsString::from("@");
    wal.push(root.join("infra/spin/wal.sql").as_os_str());
    cmd.arg("--sqlite").arg(wal);
    for file in migrations_in(&root.join("infra").join("migrations"))? {
        let mut arg = std::ffi::OsString::from("@");
        arg.push(file.as_os_str());
        cmd.arg("--sqlite").arg(arg);
    }
    cmd.env("SPIN_VARIABLE_ISSUER", &opts.issuer)
        .env("SPIN_VARIABLE_ADMIN_TOKEN", &opts.admin_token)
        .env("SPIN_VARIABLE_KEY_ENCRYPTION_KEY", &opts.key_encryption_key)
        .envs(opts.env.iter().map(|(k, v)| (k, v)));

    let (log, log_path) = log_file(opts, "spin.log")?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);

    let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let mut running = Running {
        child,
        base_url: format!("http://{}", opts.listen),
    };
    if let Err(e) = wait_ready(&running.base_url, &mut running.child, READY_TIMEOUT) {
        return Err(e.context(format!(
            "Spin host failed to start; log: {}",
            log_path.display()
        )));
    }
    Ok(running)
}
