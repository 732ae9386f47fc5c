//! `cargo xtask deploy cloudflare`: deploys the Workers to the user's own Cloudflare account
//! through `infra/cloudflare/deploy.mjs` (wrangler per function, routes on the issuer's
//! hostname, remote D1 migrations, secrets), after installing the tools and building the
//! Workers. `infra/cloudflare/DEPLOY.md` is the guide.
//!
//! [`check`] exercises that path up to the point that needs an account: a dry run that bundles
//! every Worker, the refusals of a real deploy, and a real deploy that stops at an unreachable
//! API — with sentinel secrets that must never show up in any output or file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::host::{self, Host, repo_root};

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Where to deploy (Cloudflare is the one host deployed from here; Spin deploys with
    /// `spin deploy`/SpinKube from spin.toml).
    #[arg(value_enum)]
    target: Target,
    /// The issuer: `https://HOST`, a proxied hostname in your zone. Optional with --dry-run
    /// (then https://id.example.com).
    #[arg(long)]
    issuer: Option<String>,
    /// The zone the routes go to (default: wrangler finds the zone of the issuer's host).
    #[arg(long)]
    zone: Option<String>,
    /// JSON file with the D1 and KV ids: `{"d1": {"edgeid": ID}, "kv": {"KV": ID}}`.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// Where the deploy-ready configs (and dry-run bundles) go (default:
    /// infra/cloudflare/.deploy).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Upload no secrets: keep the values the deployed Workers already have.
    #[arg(long)]
    keep_secrets: bool,
    /// Bundle and check everything, print the remote steps, upload nothing (no account needed).
    #[arg(long)]
    dry_run: bool,
    /// Use the Workers already in functions/*/build instead of building them.
    #[arg(long)]
    no_build: bool,
    /// Instead of deploying, run the deploy path's own checks (what `cargo xtask test` runs).
    #[arg(long, conflicts_with_all = ["issuer", "zone", "ids", "out", "keep_secrets", "dry_run"])]
    check: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Target {
    Cloudflare,
}

/// The issuer the dry run and the checks use.
const EXAMPLE_ISSUER: &str = "https://id.example.com";
const EXAMPLE_HOST: &str = "id.example.com";
const EXAMPLE_ZONE: &str = "example.com";

/// A key-encryption key (base64url of 32 bytes, as the core parses it) that is easy to spot.
const KEK_SENTINEL: &str = "SentinelKeyEncryptionKey-edgeid-deploycheck";

pub fn run(args: DeployArgs) -> anyhow::Result<()> {
    let Target::Cloudflare = args.target;
    crate::install(Host::Cloudflare)?;
    if !args.no_build {
        crate::build(&[Host::Cloudflare])?;
    }
    if args.check {
        let (passed, failed) = check();
        ensure!(
            failed == 0,
            "deploy checks: {passed} passed, {failed} failed"
        );
        return Ok(());
    }
    let issuer = match (args.issuer, args.dry_run) {
        (Some(issuer), _) => issuer,
        (None, true) => EXAMPLE_ISSUER.to_owned(),
        (None, false) => bail!("--issuer https://HOST is required (or try --dry-run first)"),
    };
    let mut cmd = deploy_mjs();
    cmd.arg("--issuer").arg(issuer);
    if let Some(zone) = args.zone {
        cmd.arg("--zone").arg(zone);
    }
    // deploy.mjs runs in infra/cloudflare: hand it paths that do not depend on our cwd.
    if let Some(ids) = args.ids {
        cmd.arg("--ids").arg(std::path::absolute(ids)?);
    }
    if let Some(out) = args.out {
        cmd.arg("--out").arg(std::path::absolute(out)?);
    }
    if args.keep_secrets {
        cmd.arg("--keep-secrets");
    }
    if args.dry_run {
        cmd.arg("--dry-run");
    }
    let status = cmd.status().context("running deploy.mjs")?;
    match status.code() {
        Some(0) => Ok(()),
        Some(2) => bail!("deploy.mjs refused (reasons above)"),
        _ => bail!("deploy.mjs failed: {status}"),
    }
}

/// Runs the deploy path's checks on the Workers already built, printing one line per check,
/// and returns `(passed, failed)`. Missing prerequisites (the npm packages, the built Workers)
/// are failures, never skips.
pub fn check() -> (u64, u64) {
    let dir = std::env::temp_dir().join(format!("edgeid-deploy-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut outcomes: Vec<(&str, anyhow::Result<()>)> = Vec::new();
    match Fixture::new(&dir) {
        Ok(fx) => {
            outcomes.push((
                "the issuer is https on a DNS host in the zone",
                fx.issuer_is_validated(),
            ));
            outcomes.push((
                "a dry run bundles every Worker with its routes and the issuer",
                fx.dry_run_bundles_every_function(),
            ));
            outcomes.push((
                "a real deploy refuses placeholder ids and a missing API token",
                fx.real_deploy_refuses_placeholders_and_missing_token(),
            ));
            outcomes.push((
                "a real deploy refuses missing secrets",
                fx.real_deploy_refuses_missing_secrets(),
            ));
            outcomes.push((
                "a real deploy goes as far as the account's API",
                fx.real_deploy_stops_at_the_api(),
            ));
        }
        Err(e) => outcomes.push(("prerequisites", Err(e))),
    }
    let mut counts = (0, 0);
    for (name, outcome) in &outcomes {
        match outcome {
            Ok(()) => {
                println!("deploy check: {name} ... ok");
                counts.0 += 1;
            }
            Err(e) => {
                println!("deploy check: {name} ... FAILED\n  {e:#}");
                counts.1 += 1;
            }
        }
    }
    if counts.1 == 0 {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("deploy check: output kept in {}", dir.display());
    }
    counts
}

/// `node deploy.mjs` with the pinned Node and none of the caller's Cloudflare credentials.
fn deploy_mjs() -> Command {
    let mut cmd = Command::new(node());
    cmd.arg(cloudflare_dir().join("deploy.mjs"))
        .current_dir(cloudflare_dir())
        .stdin(Stdio::null());
    cmd
}

fn cloudflare_dir() -> PathBuf {
    repo_root().join("infra").join("cloudflare")
}

fn node() -> PathBuf {
    cloudflare_dir().join("node_modules/.bin/node")
}

/// What the wrangler configs declare, read by wrangler's own JSONC reader; and the paths
/// routes.mjs gives each function.
const DESCRIBE_CONFIGS: &str = r#"
process.env.CI = "true";
process.env.WRANGLER_SEND_METRICS = "false";
const fs = await import("node:fs");
const { ROUTES } = await import("./routes.mjs");
const wrangler = await import("wrangler");
const out = {};
for (const file of fs.readdirSync(".").sort()) {
  const m = /^wrangler\.([a-z0-9-]+)\.jsonc$/.exec(file);
  if (!m) continue;
  const { rawConfig: c } = wrangler.experimental_readRawConfig({ config: file });
  out[m[1]] = {
    paths: ROUTES[m[1]] ?? null,
    secrets: c.secrets?.required ?? [],
    d1: (c.d1_databases ?? []).map((d) => d.database_name),
    kv: (c.kv_namespaces ?? []).map((k) => k.binding),
  };
}
console.log(JSON.stringify(out));
"#;

#[derive(Debug)]
struct Function {
    paths: Vec<String>,
    secrets: Vec<String>,
}

/// The functions as the configs declare them, sentinel secrets, and a fake ids file.
struct Fixture {
    dir: PathBuf,
    functions: BTreeMap<String, Function>,
    /// `EDGEID_SECRET_<NAME>` → a value that must never appear in output or files.
    secrets: BTreeMap<String, String>,
    ids_file: PathBuf,
}

impl Fixture {
    fn new(dir: &Path) -> anyhow::Result<Fixture> {
        ensure!(
            node().is_file(),
            "{} is missing: install the Cloudflare tools first (cargo xtask test does)",
            node().display()
        );
        std::fs::create_dir_all(dir)?;
        let out = Command::new(node())
            .args(["--input-type=module", "-e", DESCRIBE_CONFIGS])
            .current_dir(cloudflare_dir())
            .stdin(Stdio::null())
            .output()
            .context("reading the wrangler configs")?;
        ensure!(
            out.status.success(),
            "reading the wrangler configs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let described: Value = serde_json::from_slice(&out.stdout)?;
        let described = described
            .as_object()
            .context("the configs' description is not an object")?;
        ensure!(!described.is_empty(), "no wrangler.<function>.jsonc found");

        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut functions = BTreeMap::new();
        let mut ids = json!({ "d1": {}, "kv": {} });
        let mut secrets = BTreeMap::new();
        for (name, d) in described {
            ensure!(
                d["paths"].is_array(),
                "wrangler.{name}.jsonc has no paths in infra/cloudflare/routes.mjs"
            );
            let main = repo_root().join(format!("functions/{name}/build/index.js"));
            ensure!(
                main.is_file(),
                "{} is missing: build the Workers first (cargo xtask build --host cloudflare)",
                main.display()
            );
            for db in strings(&d["d1"]) {
                ids["d1"][db] = json!("3f2a1b4c-1111-4222-8333-444455556666");
            }
            for kv in strings(&d["kv"]) {
                ids["kv"][kv] = json!("0123456789abcdef0123456789abcdef");
            }
            for secret in strings(&d["secrets"]) {
                // Valid for every format check deploy.mjs makes (the key-encryption key is
                // base64url of 32 bytes), and unmistakable.
                let value = match secret.as_str() {
                    "KEY_ENCRYPTION_KEY" => KEK_SENTINEL.to_owned(),
                    _ => format!("sentinel-{secret}-edgeid-deploy-check"),
                };
                secrets.insert(format!("EDGEID_SECRET_{secret}"), value);
            }
            functions.insert(
                name.clone(),
                Function {
                    paths: strings(&d["paths"]),
                    secrets: strings(&d["secrets"]),
                },
            );
        }
        let ids_file = dir.join("ids.json");
        std::fs::write(&ids_file, serde_json::to_vec_pretty(&ids)?)?;
        Ok(Fixture {
            dir: dir.to_owned(),
            functions,
            secrets,
            ids_file,
        })
    }

    /// deploy.mjs with a clean environment: no credentials, ids or secrets from the caller,
    /// wrangler's logs in `logs` under our dir (so they can be searched for the sentinels).
    fn deploy(&self, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Output> {
        let mut cmd = deploy_mjs();
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if ["EDGEID_SECRET_", "EDGEID_D1_", "EDGEID_KV_", "CLOUDFLARE_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.args(args)
            .env("CI", "true")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", self.dir.join("logs"))
            .envs(envs.iter().copied());
        cmd.output().context("running deploy.mjs")
    }

    fn with_secrets(&self) -> Vec<(&str, &str)> {
        self.secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Fails if any sentinel secret is in `output`, or in any file under our dir.
    fn assert_no_secret_leaked(&self, output: &Output) -> anyhow::Result<()> {
        let text = combined(output);
        for (name, value) in &self.secrets {
            ensure!(!text.contains(value), "the value of {name} was printed");
        }
        for file in files_under(&self.dir)? {
            if file == self.ids_file {
                continue;
            }
            let bytes = std::fs::read(&file)?;
            for (name, value) in &self.secrets {
                ensure!(
                    !contains(&bytes, value.as_bytes()),
                    "the value of {name} was written to {}",
                    file.display()
                );
            }
        }
        Ok(())
    }

    fn issuer_is_validated(&self) -> anyhow::Result<()> {
        for (args, why) in [
            (
                &["--issuer", "http://id.example.com"][..],
                "must be https://",
            ),
            (&["--issuer", "https://id.example.com/tenant"], "no path"),
            (&["--issuer", "https://127.0.0.1"], "not an IP address"),
            (
                &["--issuer", EXAMPLE_ISSUER, "--zone", "example.org"],
                "does not contain the issuer's host",
            ),
        ] {
            let mut args = args.to_vec();
            args.push("--dry-run");
            let out = self.deploy(&args, &[])?;
            expect_refusal(&out, &[why]).with_context(|| format!("deploy.mjs {args:?}"))?;
        }
        Ok(())
    }

    fn dry_run_bundles_every_function(&self) -> anyhow::Result<()> {
        let out_dir = self.dir.join("dry-run");
        let out_arg = out_dir.to_string_lossy();
        let args = [
            "--issuer",
            EXAMPLE_ISSUER,
            "--zone",
            EXAMPLE_ZONE,
            "--dry-run",
            "--out",
            &out_arg,
        ];
        let out = self.deploy(&args, &self.with_secrets())?;
        let text = combined(&out);
        ensure!(
            out.status.success(),
            "the dry run failed ({}):\n{text}",
            out.status
        );
        for (name, function) in &self.functions {
            let bundle = out_dir.join(name);
            ensure!(
                bundle.join("index.js").is_file(),
                "no bundle for {name} in {}",
                bundle.display()
            );
            ensure!(
                files_under(&bundle)?
                    .iter()
                    .any(|f| f.extension().is_some_and(|e| e == "wasm")),
                "no wasm in the {name} bundle"
            );
            let config_path = out_dir.join(format!("wrangler.{name}.json"));
            let config: Value = serde_json::from_slice(
                &std::fs::read(&config_path).with_context(|| config_path.display().to_string())?,
            )?;
            let expected: Vec<Value> = function
                .paths
                .iter()
                .map(|p| json!({ "pattern": format!("{EXAMPLE_HOST}{p}"), "zone_name": EXAMPLE_ZONE }))
                .collect();
            ensure!(
                config["routes"] == Value::Array(expected.clone()),
                "{name}: routes {} instead of {}",
                config["routes"],
                Value::Array(expected)
            );
            ensure!(
                config["vars"]["ISSUER"] == EXAMPLE_ISSUER,
                "{name}: ISSUER is {}",
                config["vars"]["ISSUER"]
            );
            ensure!(
                config["workers_dev"] == false,
                "{name}: workers_dev is not false"
            );
            // wrangler read every secret from the file (and shows it hidden).
            for secret in &function.secrets {
                ensure!(
                    text.contains(&format!("env.{secret} (")),
                    "{name}: the dry run did not bind secret {secret}"
                );
            }
        }
        ensure!(
            text.contains("wrangler d1 migrations apply") && text.contains("--remote"),
            "the dry run does not show the remote migrations step:\n{text}"
        );
        self.assert_no_secret_leaked(&out)
    }

    fn real_deploy_refuses_placeholders_and_missing_token(&self) -> anyhow::Result<()> {
        let args = ["--issuer", EXAMPLE_ISSUER];
        let out = self.deploy(&args, &self.with_secrets())?;
        expect_refusal(
            &out,
            &[
                "CLOUDFLARE_API_TOKEN is not set",
                "CLOUDFLARE_ACCOUNT_ID is not set",
                "placeholder id",
                "wrangler d1 create edgeid",
                "EDGEID_D1_EDGEID_ID",
                "wrangler kv namespace create",
                "EDGEID_KV_ID",
            ],
        )?;
        self.assert_no_secret_leaked(&out)?;

        // Real ids alone are not enough without a token, and vice versa.
        let ids = self.ids_file.to_string_lossy();
        let out = self.deploy(
            &["--issuer", EXAMPLE_ISSUER, "--ids", &ids],
            &self.with_secrets(),
        )?;
        expect_refusal(&out, &["CLOUDFLARE_API_TOKEN is not set"])?;
        ensure!(
            !combined(&out).contains("placeholder"),
            "ids from --ids were not used"
        );
        let mut envs = self.with_secrets();
        envs.extend([
            ("CLOUDFLARE_API_TOKEN", "not-a-real-token"),
            ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
        ]);
        let out = self.deploy(&args, &envs)?;
        expect_refusal(&out, &["placeholder id"])?;
        ensure!(
            !combined(&out).contains("CLOUDFLARE_API_TOKEN is not set"),
            "the token was not seen"
        );
        self.assert_no_secret_leaked(&out)
    }

    fn real_deploy_refuses_missing_secrets(&self) -> anyhow::Result<()> {
        let ids = self.ids_file.to_string_lossy();
        let envs = [
            ("CLOUDFLARE_API_TOKEN", "not-a-real-token"),
            ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
        ];
        let out = self.deploy(&["--issuer", EXAMPLE_ISSUER, "--ids", &ids], &envs)?;
        let names: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
        expect_refusal(&out, &names)
    }

    /// With everything in place, a real deploy starts with the remote migrations and fails
    /// only because the API (here a closed local port) cannot be reached.
    fn real_deploy_stops_at_the_api(&self) -> anyhow::Result<()> {
        let ids = self.ids_file.to_string_lossy();
        let out_dir = self.dir.join("real");
        let out_arg = out_dir.to_string_lossy();
        let api = format!("http://127.0.0.1:{}/client/v4", host::free_port()?);
        let mut envs = self.with_secrets();
        envs.extend([
            ("CLOUDFLARE_API_TOKEN", "not-a-real-token"),
            ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
            ("CLOUDFLARE_API_BASE_URL", api.as_str()),
        ]);
        let args = ["--issuer", EXAMPLE_ISSUER, "--ids", &ids, "--out", &out_arg];
        let out = self.deploy(&args, &envs)?;
        let text = combined(&out);
        ensure!(
            out.status.code() == Some(1),
            "expected exit 1 at the unreachable API, got {}:\n{text}",
            out.status
        );
        ensure!(
            text.contains("$ wrangler d1 migrations apply edgeid --remote"),
            "the first remote step was not the migrations:\n{text}"
        );
        self.assert_no_secret_leaked(&out)
    }
}

/// deploy.mjs refused (exit 2) and said each of `reasons`.
fn expect_refusal(out: &Output, reasons: &[&str]) -> anyhow::Result<()> {
    let text = combined(out);
    ensure!(
        out.status.code() == Some(2),
        "expected a refusal (exit 2), got {}:\n{text}",
        out.status
    );
    for reason in reasons {
        ensure!(
            text.contains(reason),
            "the refusal does not say {reason:?}:\n{text}"
        );
    }
    Ok(())
}

fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_sentinel_anywhere_in_bytes() {
        assert!(contains(b"abc sentinel-x def", b"sentinel-x"));
        assert!(!contains(b"abc sentinel-y def", b"sentinel-x"));
        assert!(!contains(b"abc", b""));
    }

    #[test]
    fn the_key_encryption_key_sentinel_is_base64url_of_32_bytes() {
        // deploy.mjs refuses a key-encryption key the core's `Kek::parse` would refuse.
        use base64::Engine as _;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(KEK_SENTINEL);
        assert_eq!(key.map(|k| k.len()), Ok(32));
    }
}
