//! Moving in and out (DESIGN.md, "Moving in and out"; issue 10): the admin API's importers of
//! Hydra clients ([`hydra`]) and of Stackspin apps and roles ([`stackspin`]), and edgeid's own
//! export and import ([`edgeid`]) that moves a deployment between hosts.
//!
//! Every import answers a [`Report`]: one [`Item`] per record with what it did (or, on a dry
//! run, would do), so the CLI can print its summary table. One request writes one SQL batch
//! per database: all of its records or none.

pub mod edgeid;
pub mod hydra;
pub mod stackspin;

use serde::Serialize;

use crate::ports::{PortError, Row, Sql, Statement};

/// What an import did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Not written; [`Item::reason`] says why.
    Refused,
}

/// One record of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// `client`, `app`, `roles`, or the table name of an edgeid export.
    pub kind: String,
    pub id: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the operator should know although the record was written ("needs a secret",
    /// fields edgeid does not support).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Item {
    pub fn new(kind: &str, id: impl Into<String>, outcome: Outcome) -> Item {
        Item {
            kind: kind.to_owned(),
            id: id.into(),
            outcome,
            reason: None,
            notes: Vec::new(),
        }
    }

    pub fn refused(kind: &str, id: impl Into<String>, reason: impl Into<String>) -> Item {
        Item {
            reason: Some(reason.into()),
            ..Item::new(kind, id, Outcome::Refused)
        }
    }
}

/// The answer of every import request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub refused: usize,
    /// One per record, in order (the CLI's `RecordResult`s).
    pub results: Vec<Item>,
}

impl Report {
    pub fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            ..Report::default()
        }
    }

    pub fn push(&mut self, item: Item) {
        match item.outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Refused => self.refused += 1,
        }
        self.results.push(item);
    }
}

/// The ids among `ids` that are users, in one query (`json_each` keeps the statement
/// constant whatever the number of ids).
pub(crate) async fn existing_users(
    sql: &impl Sql,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>, PortError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let list = serde_json::to_string(ids).map_err(|e| PortError::other(e.to_string()))?;
    let rows = sql
        .query(Statement::new(
            "SELECT u.id FROM json_each(?) j JOIN users u ON u.id = j.value",
            vec![list.into()],
        ))
        .await?;
    rows.iter()
        .map(|r: &Row| r.text(0).map(str::to_owned))
        .collect()
}

/// A JSON value shown in a report line, cut to a readable length.
pub(crate) fn brief(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s
    }
}
