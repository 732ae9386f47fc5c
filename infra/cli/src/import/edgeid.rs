//! `edgeid import edgeid`: a document written by `edgeid export` into another host, table by
//! table in the document's order, through `POST /admin/import/edgeid`
//! (`edgeid::transfer::edgeid`). Each batch is one SQL batch on the host; a second run
//! changes nothing. The signing keys and TOTP secrets open only under the key-encryption key
//! they were sealed with: give the target the source's `key_encryption_key`, or their rows
//! are refused (and tokens issued before the move stop verifying).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::{CommonArgs, Importer, Summary};
use crate::admin::Admin;

#[derive(Debug, clap::Args)]
pub struct EdgeidArgs {
    /// A document written by `edgeid export`.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Only these tables (comma-separated), e.g. `users,password_credentials`.
    #[arg(long, value_name = "TABLES", value_delimiter = ',')]
    pub tables: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(admin: &Admin, args: EdgeidArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("--file {}", args.file.display()))?;
    let doc: Value = serde_json::from_str(&text).context("the export is not JSON")?;
    if doc["format"] != "edgeid-export" {
        bail!("{} is not an edgeid export", args.file.display());
    }
    if doc["version"] != 1 {
        bail!(
            "{} is an edgeid export of version {}; this edgeid reads version 1",
            args.file.display(),
            doc["version"]
        );
    }
    let tables = doc["tables"]
        .as_array()
        .context("the export has no tables")?;
    let total: usize = tables
        .iter()
        .filter(|t| wanted(&args.tables, t))
        .map(|t| t["rows"].as_array().map_or(0, Vec::len))
        .sum();
    let started = std::time::Instant::now();
    let mut all = Summary::default();
    println!(
        "importing the export of {} ({} rows{})",
        doc["issuer"].as_str().unwrap_or("?"),
        total,
        if doc["include_secrets"] == true {
            ""
        } else {
            ", made without secrets"
        }
    );
    // The tables this host knows (its head lists them; the head itself holds no secret).
    let known = admin.call("GET", "/export?include_secrets=true", None)?["tables"].clone();
    for t in tables.iter().filter(|t| wanted(&args.tables, t)) {
        let name = t["name"].as_str().context("a table without a name")?;
        let rows = t["rows"].as_array().cloned().unwrap_or_default();
        if !known
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == name))
        {
            println!(
                "  {name:<24} skipped: this host does not know the table ({} rows not imported)",
                rows.len()
            );
            all.refuse_locally(
                name,
                &format!(
                    "{} rows not imported: this host does not know the table (an older edgeid?)",
                    rows.len()
                ),
            );
            continue;
        }
        let mut importer = Importer::new(admin, "/import/edgeid", "rows", name, &args.common)
            .with_field("format", "edgeid-export".into())
            .with_field("version", 1.into())
            .with_field("table", name.into());
        importer.progress.set_total(Some(rows.len()));
        let mut bytes = 0;
        for row in rows {
            let len = row.to_string().len();
            if bytes + len > super::hydra::MAX_BATCH_BYTES {
                importer.flush()?;
                bytes = 0;
            }
            bytes += len;
            importer.push(row)?;
        }
        let s = importer.finish()?;
        println!(
            "  {name:<24} {:>7} created {:>7} updated {:>7} unchanged {:>5} refused  \
             {:>8.1} rows/s",
            s.count(super::Outcome::Created),
            s.count(super::Outcome::Updated),
            s.count(super::Outcome::Unchanged),
            s.count(super::Outcome::Refused),
            s.rate(),
        );
        merge(&mut all, s, name);
    }
    all.elapsed = started.elapsed();
    print!("{}", all.render("edgeid export", args.common.dry_run));
    Ok(())
}

fn wanted(only: &[String], table: &Value) -> bool {
    only.is_empty() || only.iter().any(|o| table["name"] == o.as_str())
}

/// Adds one table's summary to the whole import's, ids prefixed by the table.
fn merge(all: &mut Summary, s: Summary, table: &str) {
    for (o, n) in s.counts {
        *all.counts.entry(o).or_default() += n;
    }
    all.records += s.records;
    all.refused.extend(
        s.refused
            .into_iter()
            .map(|(id, r)| (format!("{table} {id}"), r)),
    );
    all.notes.extend(
        s.notes
            .into_iter()
            .map(|(id, n)| (format!("{table} {id}"), n)),
    );
}
