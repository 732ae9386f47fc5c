//! The subset of Spin's runtime config (`spin up --runtime-config-file FILE`) the test host
//! serves: `[sqlite_database.<label>]` tables of `type = "spin"`, which put a SQLite label in a
//! local file. That is what an app needs to declare any SQLite label other than `default`:
//! without a runtime config entry Spin refuses to start such an app, and so does this host.
//!
//! Spin's rules, copied: a relative `path` is resolved against the current directory (not the
//! config file's), an absolute one is used as is; `default` may be moved the same way and
//! otherwise stays `sqlite_db.db` in the state directory. Whatever else a runtime config may
//! say (libSQL databases, Redis or other key-value stores, ...) is refused here rather than
//! silently ignored, like the manifest subset (`manifest.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// A loaded runtime config: where each configured SQLite label lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// SQLite database files by label, already resolved to absolute (or base-dir-relative) paths.
    pub sqlite_databases: BTreeMap<String, PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    sqlite_database: BTreeMap<String, SqliteDatabase>,
}

#[derive(Debug, Deserialize)]
struct SqliteDatabase {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<PathBuf>,
    /// The other types' fields (libSQL's `url`, `token`), refused below with a reason.
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

impl RuntimeConfig {
    /// Reads a runtime config file, resolving relative paths against the current directory
    /// as `spin up` does.
    pub fn load(path: &Path) -> anyhow::Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading runtime config {}", path.display()))?;
        let cwd = std::env::current_dir().context("reading the current directory")?;
        RuntimeConfig::parse(&text, &cwd)
            .with_context(|| format!("runtime config {}", path.display()))
    }

    /// Parses runtime config text; relative database paths are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> anyhow::Result<RuntimeConfig> {
        let file: File = toml::from_str(text).context(
            "parsing runtime config (this test host supports only [sqlite_database.<label>] tables)",
        )?;
        let mut sqlite_databases = BTreeMap::new();
        for (label, db) in file.sqlite_database {
            match db.kind.as_str() {
                "spin" => {}
                "libsql" => bail!(
                    "[sqlite_database.{label}]: type \"libsql\" needs a libSQL server; this test host serves only type \"spin\""
                ),
                other => bail!("[sqlite_database.{label}]: unknown database type {other:?}"),
            }
            if let Some(field) = db.other.keys().next() {
                bail!("[sqlite_database.{label}]: unknown field {field:?} for type \"spin\"");
            }
            // Spin keeps a `spin` database without `path` in memory; with a connection pool
            // that would be one database per connection, so it is refused here.
            let Some(path) = db.path else {
                bail!(
                    "[sqlite_database.{label}]: give a `path`; in-memory databases are not supported by this test host"
                );
            };
            let path = if path.is_absolute() {
                path
            } else {
                base_dir.join(path)
            };
            sqlite_databases.insert(label, path);
        }
        Ok(RuntimeConfig { sqlite_databases })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_base_dir() -> anyhow::Result<()> {
        let config = RuntimeConfig::parse(
            r#"
            [sqlite_database.credentials]
            type = "spin"
            path = ".spin/credentials.db"

            [sqlite_database.audit]
            type = "spin"
            path = "/var/lib/audit.db"
            "#,
            Path::new("/app"),
        )?;
        assert_eq!(
            config.sqlite_databases["credentials"],
            Path::new("/app/.spin/credentials.db")
        );
        assert_eq!(
            config.sqlite_databases["audit"],
            Path::new("/var/lib/audit.db")
        );
        Ok(())
    }

    #[test]
    fn what_the_host_cannot_serve_is_refused() {
        let refused = [
            "[sqlite_database.x]\ntype = \"libsql\"\nurl = \"https://x\"\ntoken = \"t\"",
            "[sqlite_database.x]\ntype = \"spin\"",
            "[sqlite_database.x]\ntype = \"postgres\"\npath = \"x.db\"",
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://x\"",
            "[sqlite_database.x]\ntype = \"spin\"\npath = \"x.db\"\nextra = 1",
        ];
        for text in refused {
            assert!(
                RuntimeConfig::parse(text, Path::new("/")).is_err(),
                "accepted: {text}"
            );
        }
    }

    #[test]
    fn an_empty_config_configures_nothing() -> anyhow::Result<()> {
        assert_eq!(
            RuntimeConfig::parse("", Path::new("/"))?,
            RuntimeConfig::default()
        );
        Ok(())
    }
}
