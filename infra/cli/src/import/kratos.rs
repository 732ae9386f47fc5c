//! `edgeid import kratos`: Ory Kratos identities into edgeid users, through
//! `POST /admin/import/users`.
//!
//! The source is Kratos' admin API, `GET /admin/identities?include_credential=password&
//! include_credential=totp`, paged by the `Link: <...page_token=...>; rel="next"` header
//! (keyset paging by id), or a file holding that API's JSON (the list's array, or one
//! identity as `GET /admin/identities/{id}` answers it). Each identity keeps its id as the
//! edgeid user id (so `sub` stays the same for every relying party), its password hash (the
//! server verifies it at sign-in and replaces it with argon2id) and its TOTP secret.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{CommonArgs, Importer};
use crate::admin::Admin;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["kratos_admin_url", "file"])))]
pub struct KratosArgs {
    /// Kratos' admin API base URL (the one serving `/admin/identities`).
    #[arg(long, value_name = "URL")]
    pub kratos_admin_url: Option<String>,
    /// A bearer token for Kratos' admin API, when it asks for one.
    #[arg(long, env = "KRATOS_ADMIN_TOKEN", hide_env_values = true)]
    pub kratos_token: Option<String>,
    /// A file of the admin API's JSON: an array of identities, or one identity.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Which trait holds each user field, as `field=trait` pairs separated by commas (a dotted
    /// trait names a nested member). Fields: email, username, name, given_name, family_name.
    /// Default: `email=email,username=username,name=name` (Stackspin's schema); a `name`
    /// trait that is an object `{first, last}` (Kratos' example schema) fills given_name and
    /// family_name too.
    #[arg(long, value_name = "MAPPING")]
    pub traits: Option<String>,
    /// For users created without a usable password: `link` prints a welcome (recovery) link
    /// for each in the summary, `send` mails it through the instance's mail API, `none` does
    /// neither (use `edgeid user recovery-link` later).
    #[arg(long, default_value = "link", value_parser = ["link", "send", "none"])]
    pub welcome: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Kratos' page size for the list (its default; the maximum is 1000).
const PAGE_SIZE: usize = 250;

pub fn run(admin: &Admin, args: KratosArgs) -> anyhow::Result<()> {
    let mapping = TraitMapping::parse(args.traits.as_deref().unwrap_or(""))?;
    let mut importer = Importer::new(admin, "/import/users", "users", "users", &args.common)
        .with_field("welcome", args.welcome.clone().into());
    match (&args.kratos_admin_url, &args.file) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let identities = identities_of(&text)
                .with_context(|| format!("{} is not Kratos identity JSON", path.display()))?;
            importer.progress.set_total(Some(identities.len()));
            for identity in &identities {
                push(&mut importer, &mapping, identity)?;
            }
        }
        (Some(url), None) => {
            let mut pages = Pages::new(url, args.kratos_token.as_deref())?;
            while let Some(page) = pages.next_page()? {
                for identity in &page {
                    push(&mut importer, &mapping, identity)?;
                }
            }
        }
        (None, None) => bail!("give --kratos-admin-url or --file"),
    }
    let dry_run = importer.dry_run();
    let summary = importer.finish()?;
    print!(
        "{}",
        summary.render("Kratos identities → edgeid users", dry_run)
    );
    Ok(())
}

fn push(
    importer: &mut Importer<'_>,
    mapping: &TraitMapping,
    identity: &Value,
) -> anyhow::Result<()> {
    match to_record(mapping, identity) {
        Ok(record) => importer.push(record),
        Err((id, reason)) => {
            importer.refuse(&id, &reason);
            Ok(())
        }
    }
}

/// The identities in a file: the list endpoint's array, or one identity.
pub fn identities_of(text: &str) -> anyhow::Result<Vec<Value>> {
    match serde_json::from_str::<Value>(text)? {
        Value::Array(items) => Ok(items),
        one @ Value::Object(_) => Ok(vec![one]),
        _ => bail!("expected an array of identities or one identity"),
    }
}

/// Which trait feeds which user field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitMapping {
    pub email: String,
    pub username: String,
    pub name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

impl TraitMapping {
    /// `field=trait,...` over the defaults (`email=email,username=username,name=name`).
    pub fn parse(spec: &str) -> anyhow::Result<TraitMapping> {
        let mut m = TraitMapping {
            email: "email".into(),
            username: "username".into(),
            name: "name".into(),
            given_name: None,
            family_name: None,
        };
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((field, path)) = pair.split_once('=') else {
                bail!("--traits: '{pair}' is not field=trait");
            };
            let path = path.trim().to_owned();
            if path.is_empty() {
                bail!("--traits: '{pair}' names no trait");
            }
            match field.trim() {
                "email" => m.email = path,
                "username" => m.username = path,
                "name" => m.name = path,
                "given_name" => m.given_name = Some(path),
                "family_name" => m.family_name = Some(path),
                other => bail!(
                    "--traits: unknown field '{other}' (email, username, name, given_name, \
                     family_name)"
                ),
            }
        }
        Ok(m)
    }
}

/// A trait by dotted path.
fn trait_at<'v>(traits: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(traits, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn trait_text(traits: &Value, path: &str) -> Option<String> {
    trait_at(traits, path)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One identity as the record `POST /admin/import/users` takes, or (id, why it cannot be
/// imported).
pub fn to_record(mapping: &TraitMapping, identity: &Value) -> Result<Value, (String, String)> {
    let id = identity["id"].as_str().unwrap_or("").to_owned();
    if id.is_empty() {
        return Err(("(no id)".into(), "the identity has no id".into()));
    }
    let traits = &identity["traits"];
    let Some(email) = trait_text(traits, &mapping.email) else {
        return Err((
            id,
            format!(
                "no e-mail address in trait '{}' (see --traits)",
                mapping.email
            ),
        ));
    };
    let mut notes: Vec<String> = Vec::new();
    // Kratos' example schema has `name: {first, last}`; Stackspin's a plain string.
    let (mut name, mut given, mut family) = (String::new(), String::new(), String::new());
    match trait_at(traits, &mapping.name) {
        Some(Value::String(s)) => name = s.clone(),
        Some(Value::Object(o)) => {
            given = o
                .get("first")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            family = o
                .get("last")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            name = format!("{given} {family}").trim().to_owned();
        }
        _ => {}
    }
    if let Some(p) = &mapping.given_name {
        given = trait_text(traits, p).unwrap_or_default();
    }
    if let Some(p) = &mapping.family_name {
        family = trait_text(traits, p).unwrap_or_default();
    }
    let email_verified = identity["verifiable_addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| {
            a["verified"].as_bool() == Some(true)
                && a["value"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(email.trim()))
        });
    let credentials = &identity["credentials"];
    let password_config = &credentials["password"]["config"];
    let password_hash = password_config["hashed_password"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    if password_config["use_password_migration_hook"].as_bool() == Some(true) {
        notes.push(
            "Kratos checks this password through its migration web hook: no hash to import".into(),
        );
    }
    let totp_secret = match credentials["totp"]["config"]["totp_url"].as_str() {
        Some(u) => match totp_secret_of(u) {
            Some(s) => Some(s),
            None => {
                notes.push("the TOTP URL carries no secret: TOTP not imported".into());
                None
            }
        },
        None => None,
    };
    if credentials.get("totp").is_some()
        && credentials["totp"].get("config").is_none()
        && totp_secret.is_none()
    {
        notes.push(
            "TOTP listed without its secret (fetch with include_credential=totp): not imported"
                .into(),
        );
    }
    for (kind, what) in [
        ("lookup_secret", "recovery codes (lookup_secret)"),
        ("webauthn", "security keys (webauthn)"),
        ("passkey", "passkeys"),
        ("oidc", "social sign-in links (oidc)"),
    ] {
        if credentials.get(kind).is_some() {
            notes.push(format!("{what} are not imported"));
        }
    }
    let mut record = json!({
        "id": id,
        "email": email,
        "name": name,
        "given_name": given,
        "family_name": family,
        "email_verified": email_verified,
        "disabled": identity["state"].as_str() == Some("inactive"),
        "password_hash": password_hash,
        "totp_secret": totp_secret,
        "notes": notes,
    });
    if let Some(username) = trait_text(traits, &mapping.username) {
        record["username"] = username.into();
    }
    Ok(record)
}

/// The base32 `secret` of an `otpauth://totp/...` URL (Kratos validates with SHA-1, 6
/// digits, 30 s whatever the URL says, `selfservice/strategy/totp/login.go`).
pub fn totp_secret_of(totp_url: &str) -> Option<String> {
    let url = url::Url::parse(totp_url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
        .filter(|s| !s.is_empty())
}

/// Kratos' keyset paging: each answer's `Link` header names the next page by `page_token`;
/// the last page has no `rel="next"`.
struct Pages {
    agent: ureq::Agent,
    base: url::Url,
    auth: Option<String>,
    next: Option<url::Url>,
}

impl Pages {
    fn new(admin_url: &str, token: Option<&str>) -> anyhow::Result<Pages> {
        let mut base = url::Url::parse(admin_url.trim_end_matches('/'))
            .with_context(|| format!("--kratos-admin-url {admin_url}"))?;
        let path = format!("{}/admin/identities", base.path().trim_end_matches('/'));
        base.set_path(&path);
        let mut first = base.clone();
        first
            .query_pairs_mut()
            .append_pair("include_credential", "password")
            .append_pair("include_credential", "totp")
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
        let text = resp.body_mut().read_to_string()?;
        if !status.is_success() {
            bail!(
                "GET {url}: {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        let page: Vec<Value> = serde_json::from_str(&text)
            .with_context(|| format!("GET {url}: not a list of identities"))?;
        if let Some(token) = next_page_token(&link) {
            let mut next = self.base.clone();
            next.query_pairs_mut()
                .append_pair("include_credential", "password")
                .append_pair("include_credential", "totp")
                .append_pair("page_size", &PAGE_SIZE.to_string())
                .append_pair("page_token", &token);
            // An empty page with a next link would loop forever.
            if !page.is_empty() {
                self.next = Some(next);
            }
        }
        Ok(Some(page))
    }
}

/// The `page_token` of the `rel="next"` target in a `Link` header (RFC 8288). The target's
/// own path and other parameters are not followed: Kratos builds them from its own view of
/// the URL, which behind a path prefix is not ours, and it drops `include_credential`.
pub fn next_page_token(link: &str) -> Option<String> {
    for part in link.split(',') {
        let Some((target, params)) = part.trim().split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        if !is_next {
            continue;
        }
        let target = target.trim().trim_start_matches('<');
        let query = target.split_once('?').map_or("", |(_, q)| q);
        return form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "page_token")
            .map(|(_, v)| v.into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FIXTURE: &str = "../../../shared/fixtures/migration/kratos-identities.json";

    fn fixture() -> Vec<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
        identities_of(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn issue10_fixture_identities_map_to_import_records() {
        let m = TraitMapping::parse("").unwrap();
        let records: Vec<Value> = fixture()
            .iter()
            .map(|i| to_record(&m, i).unwrap())
            .collect();
        assert_eq!(records.len(), 10);
        let by_email = |e: &str| {
            records
                .iter()
                .find(|r| r["email"] == e)
                .unwrap_or_else(|| panic!("{e}"))
        };
        let sofia = by_email("sofia.rossi@stackspin.example.org");
        assert_eq!(sofia["id"], "8a8d0f2d-bd30-480a-b544-3d1d671faa8e");
        assert_eq!(sofia["totp_secret"], "ON2GCY3LONYGS3RNORXXI4BNONXWM2LB");
        assert_eq!(sofia["username"], "sofia");
        assert_eq!(sofia["email_verified"], true);
        assert!(
            sofia["notes"][0]
                .as_str()
                .unwrap()
                .contains("lookup_secret")
        );
        let kees = by_email("kees.devries@stackspin.example.org");
        assert_eq!(kees["disabled"], true);
        assert!(
            kees["password_hash"]
                .as_str()
                .unwrap()
                .starts_with("$sha256$pf=")
        );
        let fatima = by_email("fatima.zahra@stackspin.example.org");
        assert!(fatima["password_hash"].is_null());
        assert!(fatima.get("username").is_none());
        assert_eq!(fatima["email_verified"], false);
        let tom = by_email("tom.baker@stackspin.example.org");
        assert_eq!(tom["email_verified"], false);
        assert_eq!(
            by_email("zoe.angstrom@stackspin.example.org")["username"],
            "zoë"
        );
    }

    #[test]
    fn issue10_traits_mapping_takes_nested_paths_and_refuses_unknown_fields() {
        let m = TraitMapping::parse("email=contact.mail, name=name").unwrap();
        let identity = json!({
            "id": "x", "state": "active",
            "traits": {"contact": {"mail": "a@example.com"}, "name": {"first": "Ada", "last": "L"}}
        });
        let r = to_record(&m, &identity).unwrap();
        assert_eq!(r["email"], "a@example.com");
        assert_eq!(
            (r["given_name"].as_str(), r["family_name"].as_str()),
            (Some("Ada"), Some("L"))
        );
        assert_eq!(r["name"], "Ada L");
        assert!(TraitMapping::parse("phone=x").is_err());
        assert!(TraitMapping::parse("email").is_err());
        let no_mail = json!({"id": "y", "traits": {}});
        assert!(
            to_record(&m, &no_mail)
                .unwrap_err()
                .1
                .contains("contact.mail")
        );
    }

    #[test]
    fn issue10_link_header_next_page_token() {
        let link = "</admin/identities?page_size=2&page_token=eyJpZCI6Ij>; rel=\"first\",\
                    </admin/identities?page_size=2&page_token=abc%3D%3D>; rel=\"next\"";
        assert_eq!(next_page_token(link).as_deref(), Some("abc=="));
        assert_eq!(next_page_token("</a?page_token=x>; rel=\"first\""), None);
        assert_eq!(next_page_token(""), None);
        assert_eq!(next_page_token("garbage<<>>;;"), None);
    }
}
