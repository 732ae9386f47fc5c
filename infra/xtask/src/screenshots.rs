//! `cargo xtask screenshots`: regenerates the console screenshots the README shows
//! (`docs/screenshots/*.png`) by running the console's browser tests against a fresh native
//! host with `EDGEID_SCREENSHOTS` set (tests/browser/tests/console.rs takes them).

use anyhow::{Context as _, bail};

use crate::host::{self, Host};

pub fn run() -> anyhow::Result<()> {
    crate::browser::install().context("installing chromium and chromedriver")?;
    crate::build(&[Host::Native])?;
    let port = host::free_port()?;
    let state = std::env::temp_dir().join(format!("edgeid-screenshots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let opts = crate::options(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        state.clone(),
    );
    let running = crate::start(Host::Native, &opts)?;
    let dir = host::repo_root().join("docs/screenshots");
    std::fs::create_dir_all(&dir)?;
    let status = crate::browser::cargo_test(&["--test", "console", "--", "issue11_"])
        .env("BASE_URL", &running.base_url)
        .env("EDGEID_ADMIN_TOKEN", &opts.admin_token)
        .env("EDGEID_SCREENSHOTS", &dir)
        .status()
        .context("running the console browser tests")?;
    drop(running);
    let _ = std::fs::remove_dir_all(&state);
    if !status.success() {
        bail!("the console browser tests failed: no screenshots trusted");
    }
    println!("screenshots written to {}", dir.display());
    Ok(())
}
