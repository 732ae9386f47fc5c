//! `edgeid export`: the whole state a deployment needs to move to another host, as one JSON
//! document (`"format": "edgeid-export", "version": 1`) read page by page from
//! `GET /admin/export` (`edgeid::transfer::edgeid`), written only to a new file of mode 0600
//! and never to a terminal: it holds password hashes, the digests of client secrets and the
//! signing keys (sealed under the key-encryption key). `edgeid import edgeid` reads it.
//!
//! The document:
//! `{"format", "version", "issuer", "exported_at", "include_secrets", "tables": [{"name", "rows"}]}`
//! with the tables in import order and each row an object of the table's columns.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::admin::Admin;
use crate::import::Progress;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The file to write (created with mode 0600; an existing file is refused unless
    /// --force). Standard output and terminals are refused: the document holds secrets.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// Leave the secrets out (password hashes, TOTP secrets, client-secret digests, signing
    /// keys, sessions, refresh tokens): an inventory that cannot move a deployment.
    #[arg(long)]
    pub without_secrets: bool,
}

pub fn run(admin: &Admin, args: ExportArgs) -> anyhow::Result<()> {
    let mut file = open_private(&args.output, args.force)?;
    let started = std::time::Instant::now();
    let secrets = if args.without_secrets {
        ""
    } else {
        "include_secrets=true&"
    };
    let head = admin.call("GET", &format!("/export?{secrets}"), None)?;
    if head["format"] != "edgeid-export" || head["version"] != 1 {
        bail!("the host does not serve an edgeid-export document of version 1");
    }
    let mut progress = Progress::new("rows", None);
    let mut tables = Vec::new();
    let mut total = 0usize;
    for name in head["tables"].as_array().into_iter().flatten() {
        let name = name.as_str().context("a table name")?;
        let mut rows: Vec<Value> = Vec::new();
        let mut after = String::new();
        loop {
            let page = admin.call(
                "GET",
                &format!("/export?{secrets}table={name}&limit=500&after={after}"),
                None,
            )?;
            let got = page["rows"].as_array().cloned().unwrap_or_default();
            progress.advance(got.len());
            rows.extend(got);
            match page["next"].as_i64() {
                Some(n) => after = n.to_string(),
                None => break,
            }
        }
        total += rows.len();
        eprintln!("  {name:<24} {:>8} rows", rows.len());
        tables.push(json!({ "name": name, "rows": rows }));
    }
    progress.finish();
    let doc = json!({
        "format": head["format"], "version": head["version"], "issuer": head["issuer"],
        "exported_at": head["exported_at"], "include_secrets": head["include_secrets"],
        "tables": tables,
    });
    serde_json::to_writer(&mut file, &doc)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "exported {total} rows of {} to {} in {secs:.2} s ({:.1} rows/s){}",
        head["issuer"].as_str().unwrap_or("?"),
        args.output.display(),
        if secs > 0.0 { total as f64 / secs } else { 0.0 },
        if args.without_secrets {
            " without secrets"
        } else {
            "; it holds secrets: keep it like the key-encryption key"
        }
    );
    Ok(())
}

/// A new file only the owner can read, refused when it is a terminal (`/dev/tty`) or
/// standard output (`-`).
pub fn open_private(path: &Path, force: bool) -> anyhow::Result<std::fs::File> {
    if path.as_os_str() == "-" {
        bail!("the export holds secrets: it is written to a file, never to standard output");
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path).with_context(|| {
        format!(
            "{}: cannot create it (an existing file needs --force)",
            path.display()
        )
    })?;
    if file.is_terminal() {
        bail!("the export holds secrets: it is not written to a terminal");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            bail!("{} is not a regular file", path.display());
        }
        // An existing file (--force) keeps its mode on open: narrow it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issue10_the_export_file_is_private_new_and_never_a_terminal_or_stdout() {
        let dir = std::env::temp_dir().join(format!("edgeid-export-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        drop(open_private(&path, false).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            open_private(&path, false).is_err(),
            "an existing file needs --force"
        );
        assert!(open_private(&path, true).is_ok());
        assert!(open_private(Path::new("-"), true).is_err());
        #[cfg(unix)]
        assert!(
            open_private(Path::new("/dev/null"), true).is_err(),
            "not a regular file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
