//! `edgeid import <source>`: moves users, clients, apps and roles from another system into any
//! edgeid host through its admin API (`POST /admin/import/...`), in batches the server writes
//! all-or-nothing.
//!
//! Every source shares the helpers here: [`CommonArgs`] (`--dry-run`, `--batch-size`),
//! [`Importer`] (collects records, posts full batches, keeps the [`Summary`] and the
//! [`Progress`] line), and the report shape every import route answers ([`RecordResult`]).

pub mod edgeid;
pub mod hydra;
pub mod kratos;
pub mod stackspin;

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::admin::Admin;

/// The largest batch the admin API's import routes take.
pub const MAX_BATCH: usize = 500;
/// A batch is posted once its records pass this many bytes of JSON: every host refuses a
/// request body over 64 KiB (`edgeid::web::MAX_BODY_BYTES`) before routing it.
pub const MAX_BATCH_BYTES: usize = 60 * 1024;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Users from Ory Kratos (its admin API or a file of its JSON), keeping their ids (`sub`),
    /// password hashes and TOTP secrets.
    Kratos(kratos::KratosArgs),
    /// OAuth 2.0 clients from Ory Hydra (its admin API or a file of its JSON), keeping their
    /// ids; secrets from --secrets, the sidecar, or set later.
    Hydra(hydra::HydraArgs),
    /// Apps and per-user app roles from the Stackspin dashboard (JSON tables or the CSV).
    Stackspin(stackspin::StackspinArgs),
    /// A document written by `edgeid export` (moving a deployment to another host).
    Edgeid(edgeid::EdgeidArgs),
}

pub fn run(admin: &Admin, cmd: ImportCommand) -> anyhow::Result<()> {
    match cmd {
        ImportCommand::Kratos(args) => kratos::run(admin, args),
        ImportCommand::Hydra(args) => hydra::run(admin, args),
        ImportCommand::Stackspin(args) => stackspin::run(admin, args),
        ImportCommand::Edgeid(args) => edgeid::run(admin, args),
    }
}

/// Options every import takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Print what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Records per request (1-500); each batch is written all-or-nothing.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub batch_size: u16,
}

/// What an import route did with one record (`"outcome"` in its answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Refused,
}

/// One record of an import route's answer: `{"results": [RecordResult, ...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordResult {
    /// The record's id in the source (user id, client_id, app slug, ...).
    pub id: String,
    pub outcome: Outcome,
    /// Why it was refused.
    #[serde(default)]
    pub reason: Option<String>,
    /// What the admin should know although the record went in (an unverifiable password
    /// hash, a field edgeid does not support, a username that had to change, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// A welcome (recovery) link issued for the record, when the request asked for one.
    #[serde(default)]
    pub link: Option<String>,
}

/// The counts and reasons an import prints at its end.
#[derive(Debug, Default)]
pub struct Summary {
    pub counts: BTreeMap<Outcome, usize>,
    /// (id, reason) of every refused record.
    pub refused: Vec<(String, String)>,
    /// (id, note) of every note.
    pub notes: Vec<(String, String)>,
    /// (id, link) of every welcome link issued.
    pub links: Vec<(String, String)>,
    /// Records handled and the time they took (for the rate line).
    pub records: usize,
    pub elapsed: Duration,
}

impl Summary {
    pub fn record(&mut self, r: &RecordResult) {
        *self.counts.entry(r.outcome).or_default() += 1;
        self.records += 1;
        if r.outcome == Outcome::Refused {
            self.refused
                .push((r.id.clone(), r.reason.clone().unwrap_or_default()));
        }
        for n in &r.notes {
            self.notes.push((r.id.clone(), n.clone()));
        }
        if let Some(link) = &r.link {
            self.links.push((r.id.clone(), link.clone()));
        }
    }

    /// A record the source itself made unusable (the server never saw it).
    pub fn refuse_locally(&mut self, id: &str, reason: &str) {
        self.record(&RecordResult {
            id: id.to_owned(),
            outcome: Outcome::Refused,
            reason: Some(reason.to_owned()),
            notes: Vec::new(),
            link: None,
        });
    }

    pub fn count(&self, o: Outcome) -> usize {
        self.counts.get(&o).copied().unwrap_or(0)
    }

    /// Records per second over the whole import.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.records as f64 / secs
        } else {
            0.0
        }
    }

    /// The table (created, updated, unchanged, refused), then refusals with their reasons,
    /// notes and links, then the rate line.
    pub fn render(&self, what: &str, dry_run: bool) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let verb = if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        let _ = writeln!(out, "{what}{verb}");
        for (label, o) in [
            ("created", Outcome::Created),
            ("updated", Outcome::Updated),
            ("unchanged", Outcome::Unchanged),
            ("refused", Outcome::Refused),
        ] {
            let label = if dry_run && o != Outcome::Refused {
                format!("would be {label}")
            } else {
                label.to_owned()
            };
            let _ = writeln!(out, "  {label:<20} {:>7}", self.count(o));
        }
        if !self.refused.is_empty() {
            let _ = writeln!(out, "refused:");
            for (id, reason) in &self.refused {
                let _ = writeln!(out, "  {id}: {reason}");
            }
        }
        if !self.notes.is_empty() {
            // The same note for many records (a credential type the source has everywhere)
            // is one line with its count.
            let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (id, note) in &self.notes {
                grouped.entry(note.as_str()).or_default().push(id.as_str());
            }
            let _ = writeln!(out, "notes:");
            for (note, ids) in grouped {
                if ids.len() <= 3 {
                    for id in ids {
                        let _ = writeln!(out, "  {id}: {note}");
                    }
                } else {
                    let _ = writeln!(
                        out,
                        "  {} records ({}, ...): {note}",
                        ids.len(),
                        ids[..3].join(", ")
                    );
                }
            }
        }
        if !self.links.is_empty() {
            let _ = writeln!(out, "welcome links (single use; hand each to its user):");
            for (id, link) in &self.links {
                let _ = writeln!(out, "  {id}: {link}");
            }
        }
        let _ = writeln!(
            out,
            "{} records in {:.2} s ({:.1} records/s)",
            self.records,
            self.elapsed.as_secs_f64(),
            self.rate()
        );
        out
    }
}

/// A one-line progress display (count, rate, ETA), drawn only when standard output is a
/// terminal so logs and pipes get the summary alone.
pub struct Progress {
    label: String,
    total: Option<usize>,
    done: usize,
    started: Instant,
    last_draw: Option<Instant>,
    tty: bool,
}

impl Progress {
    pub fn new(label: &str, total: Option<usize>) -> Progress {
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            last_draw: None,
            tty: std::io::stdout().is_terminal(),
        }
    }

    /// Known once a source tells its size (a file) or never (a paged API).
    pub fn set_total(&mut self, total: Option<usize>) {
        self.total = total;
    }

    pub fn advance(&mut self, n: usize) {
        self.done += n;
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if self.tty && due {
            self.draw();
        }
    }

    /// The text of the line: `label: done[/total] (rate/s[, ETA n s])`.
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        match self.total {
            Some(total) => {
                let left = total.saturating_sub(self.done);
                let eta = if rate > 0.0 {
                    format!(", ETA {:.0} s", left as f64 / rate)
                } else {
                    String::new()
                };
                format!("{}: {}/{} ({rate:.1}/s{eta})", self.label, self.done, total)
            }
            None => format!("{}: {} ({rate:.1}/s)", self.label, self.done),
        }
    }

    fn draw(&mut self) {
        self.last_draw = Some(Instant::now());
        let mut out = std::io::stdout();
        let _ = write!(out, "\r\x1b[2K{}", self.line());
        let _ = out.flush();
    }

    /// Clears the line (before the summary is printed).
    pub fn finish(&mut self) {
        if self.tty && self.last_draw.is_some() {
            let mut out = std::io::stdout();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

/// Collects records and posts them to one import route in batches:
/// `POST /admin{path}` with `{"dry_run": .., <extra fields>.., "<key>": [records]}`, answered
/// with `{"results": [RecordResult, ...]}`.
pub struct Importer<'a> {
    admin: &'a Admin,
    path: &'static str,
    key: &'static str,
    dry_run: bool,
    batch_size: usize,
    extra: Map<String, Value>,
    pending: Vec<Value>,
    pending_bytes: usize,
    pub summary: Summary,
    pub progress: Progress,
    started: Instant,
}

impl<'a> Importer<'a> {
    /// `path` is the route under `/admin` (`/import/users`), `key` the array's name in the
    /// body (`users`), `label` what the progress line counts (`users`).
    pub fn new(
        admin: &'a Admin,
        path: &'static str,
        key: &'static str,
        label: &str,
        common: &CommonArgs,
    ) -> Importer<'a> {
        Importer {
            admin,
            path,
            key,
            dry_run: common.dry_run,
            batch_size: usize::from(common.batch_size).clamp(1, MAX_BATCH),
            extra: Map::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            summary: Summary::default(),
            progress: Progress::new(label, None),
            started: Instant::now(),
        }
    }

    /// A field sent with every batch besides `dry_run` and the records (`"welcome": "link"`).
    pub fn with_field(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Queues a record; posts the batch when it is full (by count, or when the next record
    /// would take the body over [`MAX_BATCH_BYTES`]).
    pub fn push(&mut self, record: Value) -> anyhow::Result<()> {
        let size = record.to_string().len() + 1;
        if size + 256 > MAX_BATCH_BYTES {
            anyhow::bail!(
                "a record of {size} bytes is over the admin API's request limit of 64 KiB"
            );
        }
        if self.pending_bytes + size + 256 > MAX_BATCH_BYTES {
            self.flush()?;
        }
        self.pending.push(record);
        self.pending_bytes += size;
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// A record refused before sending (unusable source data), counted in the summary.
    pub fn refuse(&mut self, id: &str, reason: &str) {
        self.summary.refuse_locally(id, reason);
        self.progress.advance(1);
    }

    /// Posts what is queued as one batch.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let n = records.len();
        let mut body = self.extra.clone();
        body.insert("dry_run".into(), self.dry_run.into());
        body.insert(self.key.into(), Value::Array(records));
        let answer = self
            .admin
            .call("POST", self.path, Some(Value::Object(body)))
            .with_context(|| format!("importing a batch of {n}"))?;
        let results: Vec<RecordResult> = serde_json::from_value(answer["results"].clone())
            .context("the import route answered without results")?;
        for r in &results {
            self.summary.record(r);
        }
        self.progress.advance(results.len());
        Ok(())
    }

    /// Posts the last batch and hands back the summary (with the elapsed time).
    pub fn finish(mut self) -> anyhow::Result<Summary> {
        self.flush()?;
        self.progress.finish();
        self.summary.elapsed = self.started.elapsed();
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_summary_counts_and_lists_refusals() {
        let mut s = Summary::default();
        for (id, outcome) in [
            ("a", Outcome::Created),
            ("b", Outcome::Created),
            ("c", Outcome::Unchanged),
        ] {
            s.record(&RecordResult {
                id: id.into(),
                outcome,
                reason: None,
                notes: vec![],
                link: None,
            });
        }
        s.refuse_locally("d", "no email");
        for id in ["e", "f", "g", "h"] {
            s.record(&RecordResult {
                id: id.into(),
                outcome: Outcome::Unchanged,
                reason: None,
                notes: vec!["passkeys are not imported".into()],
                link: None,
            });
        }
        let text = s.render("users", false);
        assert!(text.contains("created                    2"), "{text}");
        assert!(text.contains("unchanged                  5"), "{text}");
        assert!(
            text.contains("  4 records (e, f, g, ...): passkeys are not imported"),
            "{text}"
        );
        assert!(text.contains("refused                    1"), "{text}");
        assert!(text.contains("  d: no email"), "{text}");
        assert!(s.render("users", true).contains("would be created"));
    }

    #[test]
    fn issue10_progress_line_has_count_rate_and_eta() {
        let mut p = Progress::new("users", Some(10));
        p.tty = false;
        p.advance(4);
        let line = p.line();
        assert!(line.starts_with("users: 4/10 ("), "{line}");
        assert!(line.contains("/s"), "{line}");
        p.set_total(None);
        assert!(p.line().starts_with("users: 4 ("));
    }
}
