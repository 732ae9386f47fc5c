//! `edgeid import hydra`: Ory Hydra's OAuth 2.0 clients into edgeid clients with the same
//! `client_id`, through `POST /admin/import/hydra` (the mapping and its rules are the core's,
//! `edgeid::transfer::hydra`).
//!
//! The source is Hydra's admin API, `GET /admin/clients`, paged by the `Link: <...page_token=
//! ...>; rel="next"` header (Hydra v2), or a file of that API's JSON. Hydra never returns
//! client secrets; `--secrets FILE` supplies them: a JSON object `{client_id: secret}` or an
//! array of `{"client_id", "client_secret"}` (the fixture `hydra-client-secrets.json`).
//! Confidential clients without one are imported without a secret and reported.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::{CommonArgs, Importer};
use crate::admin::Admin;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["hydra_admin_url", "file"])))]
pub struct HydraArgs {
    /// Hydra's admin API base URL (the one serving `/admin/clients`).
    #[arg(long, value_name = "URL")]
    pub hydra_admin_url: Option<String>,
    /// A bearer token for Hydra's admin API, when it asks for one.
    #[arg(long, env = "HYDRA_ADMIN_TOKEN", hide_env_values = true)]
    pub hydra_token: Option<String>,
    /// A file of the admin API's JSON: the array `GET /admin/clients` answers.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The clients' secrets (Hydra exports none): `{client_id: secret}` or
    /// `[{"client_id": .., "client_secret": ..}]`, e.g. gathered from the Kubernetes Secrets.
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Hydra's page size for the list (its maximum is 500).
const PAGE_SIZE: usize = 250;

/// Request bodies stay under the admin API's 64 KiB limit (`edgeid::web::MAX_BODY_BYTES`).
pub const MAX_BATCH_BYTES: usize = 56 * 1024;

pub fn run(admin: &Admin, args: HydraArgs) -> anyhow::Result<()> {
    let secrets = match &args.secrets {
        Some(path) => secrets_of(
            &std::fs::read_to_string(path)
                .with_context(|| format!("--secrets {}", path.display()))?,
        )?,
        None => BTreeMap::new(),
    };
    let mut importer = Importer::new(admin, "/import/hydra", "clients", "clients", &args.common);
    let mut bytes = 0;
    let mut push = |importer: &mut Importer, client: Value| -> anyhow::Result<()> {
        let record = to_record(client, &secrets);
        let len = record.to_string().len();
        if bytes + len > MAX_BATCH_BYTES {
            importer.flush()?;
            bytes = 0;
        }
        bytes += len;
        importer.push(record)
    };
    if let Some(path) = &args.file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("--file {}", path.display()))?;
        let clients = clients_of(&text)?;
        importer.progress.set_total(Some(clients.len()));
        for c in clients {
            push(&mut importer, c)?;
        }
    } else if let Some(url) = &args.hydra_admin_url {
        let mut pages = Pages::new(url, args.hydra_token.as_deref())?;
        while let Some(page) = pages.next_page()? {
            for c in page {
                push(&mut importer, c)?;
            }
        }
    }
    let dry_run = importer.dry_run();
    let summary = importer.finish()?;
    print!("{}", summary.render("Hydra clients", dry_run));
    Ok(())
}

/// The clients of a file: the list's array, or one client object.
pub fn clients_of(text: &str) -> anyhow::Result<Vec<Value>> {
    match serde_json::from_str(text).context("not JSON")? {
        Value::Array(a) => Ok(a),
        v @ Value::Object(_) => Ok(vec![v]),
        _ => bail!("expected an array of Hydra clients"),
    }
}

/// `{client_id: secret}` or `[{"client_id", "client_secret", ...}]`.
pub fn secrets_of(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let v: Value = serde_json::from_str(text).context("the secrets file is not JSON")?;
    let mut out = BTreeMap::new();
    match v {
        Value::Object(map) => {
            for (id, s) in map {
                let s = s
                    .as_str()
                    .with_context(|| format!("secret of {id} is not a string"))?;
                out.insert(id, s.to_owned());
            }
        }
        Value::Array(items) => {
            for item in items {
                let id = item["client_id"]
                    .as_str()
                    .context("an entry without client_id")?;
                if let Some(s) = item["client_secret"].as_str() {
                    out.insert(id.to_owned(), s.to_owned());
                }
            }
        }
        _ => bail!("the secrets file must be an object or an array"),
    }
    Ok(out)
}

/// The record sent for one client: Hydra's object without the members that hold their
/// default (the server drops those anyway; this keeps batches small), with the client's
/// secret from the secrets file.
pub fn to_record(client: Value, secrets: &BTreeMap<String, String>) -> Value {
    let Value::Object(mut obj) = client else {
        return client;
    };
    obj.retain(|k, v| {
        k == "client_id"
            || !(v.is_null()
                || v.as_str() == Some("")
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(serde_json::Map::is_empty)
                || v.as_bool() == Some(false) && k != "skip_consent")
    });
    obj.remove("created_at");
    obj.remove("updated_at");
    if let Some(secret) = obj
        .get("client_id")
        .and_then(Value::as_str)
        .and_then(|id| secrets.get(id))
    {
        obj.insert("client_secret".into(), secret.clone().into());
    }
    Value::Object(obj)
}

/// Hydra v2's token paging: each answer's `Link` header names the next page by `page_token`.
struct Pages {
    agent: ureq::Agent,
    base: url::Url,
    auth: Option<String>,
    next: Option<url::Url>,
}

impl Pages {
    fn new(admin_url: &str, token: Option<&str>) -> anyhow::Result<Pages> {
        let mut base = url::Url::parse(admin_url.trim_end_matches('/'))
            .with_context(|| format!("--hydra-admin-url {admin_url}"))?;
        let path = format!("{}/admin/clients", base.path().trim_end_matches('/'));
        base.set_path(&path);
        let mut first = base.clone();
        first
            .query_pairs_mut()
            .append_pair("page_size", &PAGE_SIZE.to_string());
        Ok(Pages {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            base,
            auth: token.map(|t| format!("Bearer {t}")),
            next: Some(first),
        })
    }

    fn next_page(&mut self) -> anyhow::Result<Option<Vec<Value>>> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let mut req = self.agent.get(url.as_str());
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        let mut resp = req.call().with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let link = resp
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()?;
        if !status.is_success() {
            bail!(
                "GET {url}: {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        let page: Vec<Value> =
            serde_json::from_str(&text).with_context(|| format!("GET {url}: not a list"))?;
        if let Some(token) = super::kratos::next_page_token(&link)
            && !page.is_empty()
        {
            let mut next = self.base.clone();
            next.query_pairs_mut()
                .append_pair("page_size", &PAGE_SIZE.to_string())
                .append_pair("page_token", &token);
            self.next = Some(next);
        }
        Ok(Some(page))
    }
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

    /// A stand-in for Hydra's admin API: two pages, the first naming the second in its
    /// `Link` header (Hydra v2 token paging); every request line is recorded.
    fn fake_hydra() -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                }
                let second = line.contains("page_token=");
                tx.send(line).unwrap();
                let (body, link) = if second {
                    (r#"[{"client_id": "b"}]"#, String::new())
                } else {
                    (
                        r#"[{"client_id": "a"}]"#,
                        format!(
                            "Link: <http://{addr}/admin/clients?page_size=1&page_token=t2>; rel=\"next\"\r\n"
                        ),
                    )
                };
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{link}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (format!("http://{addr}"), rx)
    }

    #[test]
    fn issue10_hydra_admin_api_pages_follow_the_link_header() {
        let (url, requests) = fake_hydra();
        let mut pages = Pages::new(&url, Some("tok")).unwrap();
        let first = pages.next_page().unwrap().unwrap();
        let second = pages.next_page().unwrap().unwrap();
        assert!(pages.next_page().unwrap().is_none());
        assert_eq!(
            (
                first[0]["client_id"].as_str(),
                second[0]["client_id"].as_str()
            ),
            (Some("a"), Some("b"))
        );
        let lines: Vec<String> = requests.try_iter().collect();
        assert!(
            lines[0].starts_with("GET /admin/clients?page_size=250 "),
            "{lines:?}"
        );
        assert!(lines[1].contains("page_token=t2"), "{lines:?}");
    }

    #[test]
    fn issue10_hydra_records_carry_their_secret_and_drop_defaults() {
        let secrets = secrets_of(&fixture("hydra-client-secrets.json")).unwrap();
        assert_eq!(secrets.len(), 4);
        let clients = clients_of(&fixture("hydra-clients.json")).unwrap();
        let full: usize = clients.iter().map(|c| c.to_string().len()).sum();
        let records: Vec<Value> = clients
            .into_iter()
            .map(|c| to_record(c, &secrets))
            .collect();
        let slim: usize = records.iter().map(|c| c.to_string().len()).sum();
        assert!(slim * 2 < full, "{slim} vs {full}");
        let zulip = records.iter().find(|r| r["client_id"] == "zulip").unwrap();
        assert_eq!(zulip["client_secret"], "SZnYdYStYrM7qkgByLNnVgIj0a2DcqYi");
        assert_eq!(zulip["skip_consent"], true);
        let cli = records
            .iter()
            .find(|r| r["client_id"] == "stackspin-cli")
            .unwrap();
        assert!(cli.get("client_secret").is_none());
        assert!(
            cli.get("authorization_code_grant_access_token_lifespan")
                .is_none()
        );
        let exporter = records
            .iter()
            .find(|r| r["client_id"] == "monitoring-exporter")
            .unwrap();
        assert_eq!(
            exporter["client_credentials_grant_access_token_lifespan"],
            "1h0m0s"
        );
        let map = secrets_of(r#"{"a": "s3cret-a"}"#).unwrap();
        assert_eq!(map["a"], "s3cret-a");
    }
}
