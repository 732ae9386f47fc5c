//! `edgeid import stackspin`: the Stackspin dashboard's apps and per-user app roles into
//! edgeid apps and roles, through `POST /admin/import/stackspin` (the mapping is the core's,
//! `edgeid::transfer::stackspin`; "no access" means no role).
//!
//! The source is a file: the dashboard's tables as JSON (`{"role", "app", "oauthclient_app",
//! "app_role"}`, the fixture `stackspin-roles.json`), or the flattened CSV
//! `user_id,email,app_slug,app_id,role_id,role_name` (the fixture `stackspin-app-roles.csv`),
//! which names no app names or clients: new apps are named by their slug and sign in with the
//! client named like it, existing ones keep theirs. Import the users (`edgeid import kratos`)
//! and the clients (`edgeid import hydra`) first.
//!
//! Each request carries the app tables and the rows of a group of users (a user's rows never
//! straddle two requests, so their roles are replaced in one batch).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{CommonArgs, Outcome, Progress, RecordResult, Summary};
use crate::admin::Admin;

#[derive(Debug, clap::Args)]
pub struct StackspinArgs {
    /// The dashboard export: JSON tables or the app-roles CSV (by extension, else by content).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// The cluster's domain: apps with no URL in the dashboard and no client redirect URI
    /// get `https://<slug>.<domain>/`.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(admin: &Admin, args: StackspinArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("--file {}", args.file.display()))?;
    let is_csv = args
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        || !text.trim_start().starts_with('{');
    let tables = if is_csv {
        tables_of_csv(&text)?
    } else {
        serde_json::from_str(&text).context("not JSON")?
    };
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let rows = tables["app_role"].as_array().cloned().unwrap_or_default();
    let mut progress = Progress::new("role rows", Some(rows.len()));
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let batches = by_user(rows, usize::from(args.common.batch_size));
    let batches = if batches.is_empty() {
        vec![Vec::new()]
    } else {
        batches
    };
    for batch in batches {
        let n = batch.len();
        let mut body = json!({
            "dry_run": args.common.dry_run,
            "role": tables["role"],
            "app": tables["app"],
            "app_role": batch,
        });
        if let Some(map) = tables.get("oauthclient_app") {
            body["oauthclient_app"] = map.clone();
        }
        if let Some(d) = &args.domain {
            body["domain"] = d.clone().into();
        }
        let answer = admin
            .call("POST", "/import/stackspin", Some(body))
            .with_context(|| format!("importing {n} role rows"))?;
        for r in answer["results"].as_array().into_iter().flatten() {
            let kind = r["kind"].as_str().unwrap_or("").to_owned();
            let mut rec: RecordResult =
                serde_json::from_value(r.clone()).context("an import result")?;
            // Apps come back with every batch: count each once.
            if !seen.insert((kind.clone(), rec.id.clone())) {
                continue;
            }
            rec.id = format!("{kind} {}", rec.id);
            summary.record(&rec);
        }
        progress.advance(n);
    }
    progress.finish();
    summary.elapsed = started.elapsed();
    print!(
        "{}",
        summary.render("Stackspin apps and roles", args.common.dry_run)
    );
    if summary.count(Outcome::Refused) > 0 {
        eprintln!("some records were refused (see above)");
    }
    Ok(())
}

/// Groups `app_role` rows by user, in batches of about `size` rows.
fn by_user(rows: Vec<Value>, size: usize) -> Vec<Vec<Value>> {
    let mut per_user: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in rows {
        let user = r["user_id"].as_str().unwrap_or("").to_owned();
        per_user.entry(user).or_default().push(r);
    }
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    for (_, rows) in per_user {
        if !current.is_empty() && current.len() + rows.len() > size.max(1) {
            out.push(std::mem::take(&mut current));
        }
        current.extend(rows);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// One CSV record (RFC 4180: quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

/// The CSV `user_id,email,app_slug,app_id,role_id,role_name` as the dashboard's tables.
pub fn tables_of_csv(text: &str) -> anyhow::Result<Value> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().context("the CSV is empty")?);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("the CSV has no {name} column"))
    };
    let (user, slug, app_id, role_id, role_name) = (
        col("user_id")?,
        col("app_slug")?,
        col("app_id")?,
        col("role_id")?,
        col("role_name")?,
    );
    let mut apps: BTreeMap<i64, String> = BTreeMap::new();
    let mut roles: BTreeMap<i64, String> = BTreeMap::new();
    let mut app_role = Vec::new();
    for (n, line) in lines.enumerate() {
        let f = csv_fields(line);
        let get = |i: usize| f.get(i).map(|s| s.trim().to_owned()).unwrap_or_default();
        let int = |i: usize| {
            get(i)
                .parse::<i64>()
                .with_context(|| format!("CSV line {}: column {} is not a number", n + 2, i + 1))
        };
        let (a, r) = (int(app_id)?, int(role_id)?);
        if let Some(existing) = apps.insert(a, get(slug))
            && existing != get(slug)
        {
            bail!("CSV line {}: app_id {a} has two slugs", n + 2);
        }
        roles.insert(r, get(role_name));
        app_role.push(json!({ "user_id": get(user), "app_id": a, "role_id": r }));
    }
    Ok(json!({
        "role": roles.into_iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
        "app": apps.into_iter().map(|(id, slug)| json!({"id": id, "slug": slug})).collect::<Vec<_>>(),
        "app_role": app_role,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/migration")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn issue10_the_csv_export_becomes_the_same_role_rows_as_the_json_tables() {
        let csv = tables_of_csv(&fixture("stackspin-app-roles.csv")).unwrap();
        let json: Value = serde_json::from_str(&fixture("stackspin-roles.json")).unwrap();
        let rows = |v: &Value| {
            let mut r: Vec<String> = v["app_role"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{}/{}/{}", r["user_id"], r["app_id"], r["role_id"]))
                .collect();
            r.sort();
            r
        };
        assert_eq!(rows(&csv), rows(&json));
        assert_eq!(csv["app"].as_array().unwrap().len(), 6);
        assert_eq!(csv["role"][2], json!({"id": 3, "name": "no access"}));
        assert!(csv.get("oauthclient_app").is_none());
    }

    #[test]
    fn issue10_a_users_rows_stay_in_one_batch() {
        let rows: Vec<Value> = (0..7)
            .map(|i| json!({"user_id": format!("u{}", i / 3), "app_id": i}))
            .collect();
        let batches = by_user(rows, 4);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(csv_fields(r#"a,"b,""c""",d"#), ["a", "b,\"c\"", "d"]);
    }
}
