//! The real-browser tests (`tests/browser`): Debian's Chromium and ChromeDriver, driven over
//! WebDriver against each host after its black-box suite.

use std::process::Command;

use crate::host;

/// Installs `chromium` and `chromium-driver` from Debian's packages unless `chromedriver` is
/// already on `PATH` (idempotent; `sudo` only when not root).
pub fn install() -> anyhow::Result<()> {
    if host::on_path("chromedriver") {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        host::run(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "chromium", "chromium-driver"])
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `cargo test -p edgeid-browser-tests` in the suite's target directory; `extra` goes before
/// the test binary's own arguments (for example `--no-run`).
pub fn cargo_test(extra: &[&str]) -> Command {
    let mut cmd = host::cargo("target");
    cmd.args(["test", "--no-fail-fast", "-p", "edgeid-browser-tests"])
        .args(extra);
    cmd
}
