//! `POST /admin/import/users` (issue 10, `edgeid import kratos`): users from another identity
//! store, keeping their ids (the `sub` relying parties know), their password hashes (verified
//! at sign-in by [`super::legacy`], then replaced by argon2id) and their TOTP secrets.
//!
//! A request is one batch of at most [`MAX_BATCH`] records. It is idempotent: the same input
//! answers `unchanged` for every record the second time, and a changed source updates the
//! target. Every record gets an outcome (`created`, `updated`, `unchanged`, `refused` with a
//! reason) and `notes` (a hash that cannot be verified here, a username that had to change,
//! credentials the source had that edgeid does not import).
//!
//! Writes: the records of a batch go in with a constant number of statements whatever its
//! size (`json_each` over one JSON parameter), in three atomic batches:
//!
//! 1. main database: the `user_factors` flag for every user gaining TOTP, and the end of the
//!    sessions and grants of every existing user whose password changes or who is disabled;
//! 2. credentials database: password hashes, their import sources, TOTP secrets;
//! 3. main database: the users themselves, the same end of sessions once more, audit events.
//!
//! No transaction spans the two databases (least privilege keeps them apart), so the order
//! decides what a failure leaves: after (1) alone, flags that ask for a factor the user does
//! not have yet (the login form clears them) and sessions ended early; after (2), credentials
//! of users the main database does not show yet, which nothing reads (sign-in finds the user
//! in the main database first), or an existing user's new password with the old sessions
//! already ended by (1). Never a user signed in with a credential the import did not mean.
//! Running the import again completes it.

use std::collections::{HashMap, HashSet};

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{User, UserInput, legacy};
use crate::admin::AdminError;
use crate::config;
use crate::crypto::sha256_hex;
use crate::ports::{PortError, Ports, Sql, Statement, UnixTime, Value};
use crate::{Response, totp, web};

mod write;

use write::{welcome, write};

/// The most records one request takes.
pub const MAX_BATCH: usize = 500;

/// The request body. (No `Debug`: records carry password hashes and TOTP secrets, which must
/// never reach a log.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Decide and answer, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// For users created without a usable password: issue a welcome (recovery) link and
    /// answer it (`link`), or also mail it (`send`).
    #[serde(default)]
    pub welcome: Welcome,
    pub users: Vec<Record>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Welcome {
    #[default]
    None,
    Link,
    Send,
}

/// One user as the source has it (no `Debug`, as for [`Batch`]).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The source's id, kept as the edgeid user id and so as `sub` (OIDC Core §2: "locally
    /// unique and never reassigned").
    pub id: String,
    pub email: String,
    /// Derived from the email's local part when absent or not an edgeid username.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub disabled: bool,
    /// The stored hash as the source keeps it (PHC or a legacy format, [`legacy`]).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// The TOTP shared secret, base32 (RFC 4648 §6), as in an `otpauth://` URL.
    #[serde(default)]
    pub totp_secret: Option<String>,
    /// What the exporting tool wants reported with the record (passed through).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// What the import did (or, on a dry run, would do) with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Refused,
}

/// One record of the answer `{"dry_run", "created", "updated", "unchanged", "refused",
/// "results": [Item, ...]}` (the shape every import route answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The welcome link issued for the user (single use), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// What one record changes.
struct Plan {
    user: User,
    existing: Option<User>,
    profile_changed: Vec<&'static str>,
    /// The hash to store, and the digest of the source string it came from.
    password: Option<(String, String)>,
    /// The source's hash is already stored (only its import record may be missing).
    password_source: Option<String>,
    totp: Option<Vec<u8>>,
    /// No usable password after this import (none given, or unverifiable, and none stored).
    passwordless: bool,
    notes: Vec<String>,
    password_kind: &'static str,
}

impl Plan {
    fn outcome(&self) -> Outcome {
        match &self.existing {
            None => Outcome::Created,
            Some(_)
                if !self.profile_changed.is_empty()
                    || self.password.is_some()
                    || self.totp.is_some() =>
            {
                Outcome::Updated
            }
            Some(_) => Outcome::Unchanged,
        }
    }
}

/// `POST /admin/import/users`.
pub async fn import<P: Ports>(ports: &P, batch: Batch) -> Result<Response, AdminError> {
    if batch.users.len() > MAX_BATCH {
        return Err(AdminError::InvalidRequest(format!(
            "at most {MAX_BATCH} users per request"
        )));
    }
    let now = ports.now();
    let known = Known::load(ports, &batch.users).await?;
    let mut items: Vec<Item> = Vec::with_capacity(batch.users.len());
    let mut plans: Vec<(usize, Plan)> = Vec::new();
    let mut ids_seen: HashSet<String> = HashSet::new();
    let mut names_seen: HashMap<String, String> = HashMap::new();
    for (i, record) in batch.users.into_iter().enumerate() {
        let id = record.id.clone();
        match plan(ports, &known, record, now, &mut ids_seen, &mut names_seen) {
            Ok(p) => {
                items.push(Item {
                    id,
                    outcome: p.outcome(),
                    reason: None,
                    notes: p.notes.clone(),
                    link: None,
                });
                plans.push((i, p));
            }
            Err(reason) => items.push(Item {
                id,
                outcome: Outcome::Refused,
                reason: Some(reason),
                notes: Vec::new(),
                link: None,
            }),
        }
    }
    if !batch.dry_run {
        write(ports, &plans, Vec::new(), now).await?;
        if batch.welcome != Welcome::None {
            welcome(ports, &plans, &mut items, batch.welcome, now).await?;
        }
    }
    let count = |o: Outcome| items.iter().filter(|i| i.outcome == o).count();
    let body = serde_json::json!({
        "dry_run": batch.dry_run,
        "created": count(Outcome::Created),
        "updated": count(Outcome::Updated),
        "unchanged": count(Outcome::Unchanged),
        "refused": count(Outcome::Refused),
        "results": items,
    });
    Ok(web::json(StatusCode::OK, &body))
}

/// A user the console's CSV import creates (issue 11), with their roles as `(app slug,
/// role)`; the caller has checked the apps exist and the role names ([`crate::app`] rules).
pub struct Creation {
    pub record: Record,
    pub roles: Vec<(String, String)>,
}

/// Creates every user of `creations` with their roles, or none: the same plan as
/// `POST /admin/import/users` (the create rules of `POST /admin/users`, names taken in the
/// store or twice in the batch), but a single refused record writes nothing, and so does an
/// id that exists already. With `write: false` it only answers. The users, their roles and
/// the audit events (`user.imported`, `role.granted`) go in one atomic batch of the main
/// database (new users without passwords or factors have nothing in the credentials
/// database). Welcome links follow for the users created, as `how` says.
pub async fn create_all<P: Ports>(
    ports: &P,
    creations: Vec<Creation>,
    write_it: bool,
    how: Welcome,
) -> Result<Vec<Item>, AdminError> {
    if creations.len() > MAX_BATCH {
        return Err(AdminError::InvalidRequest(format!(
            "at most {MAX_BATCH} users per request"
        )));
    }
    let now = ports.now();
    let (records, roles): (Vec<Record>, Vec<Vec<(String, String)>>) =
        creations.into_iter().map(|c| (c.record, c.roles)).unzip();
    let known = Known::load(ports, &records).await?;
    let mut items = Vec::with_capacity(records.len());
    let mut plans = Vec::new();
    let (mut ids_seen, mut names_seen) = (HashSet::new(), HashMap::new());
    for (i, record) in records.into_iter().enumerate() {
        let id = record.id.clone();
        let refused = |reason: String| Item {
            id: id.clone(),
            outcome: Outcome::Refused,
            reason: Some(reason),
            notes: Vec::new(),
            link: None,
        };
        match plan(ports, &known, record, now, &mut ids_seen, &mut names_seen) {
            Ok(p) if p.existing.is_some() => items.push(refused("the user exists already".into())),
            Ok(p) => {
                items.push(Item {
                    id: id.clone(),
                    outcome: Outcome::Created,
                    reason: None,
                    notes: Vec::new(),
                    link: None,
                });
                plans.push((i, p));
            }
            Err(reason) => items.push(refused(reason)),
        }
    }
    if !write_it || items.iter().any(|i| i.outcome == Outcome::Refused) {
        return Ok(items);
    }
    let mut granted = Vec::new();
    let mut events = Vec::new();
    for (i, p) in &plans {
        for (slug, role) in roles.get(*i).into_iter().flatten() {
            granted.push(serde_json::json!([p.user.id, slug, role]));
            let detail = serde_json::json!({ "app": slug, "role": role, "by": "import" });
            events.push(serde_json::json!([
                "role.granted",
                p.user.id,
                detail.to_string()
            ]));
        }
    }
    let mut extra = Vec::new();
    if !granted.is_empty() {
        extra.push(Statement::new(
            "INSERT INTO app_roles (user_id, app_slug, role, granted_at) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]'), ?1 FROM json_each(?2) WHERE true \
             ON CONFLICT (user_id, app_slug, role) DO NOTHING",
            vec![now.into(), json_list(&granted)?],
        ));
        extra.push(Statement::new(
            "INSERT INTO audit_events (at, kind, subject, detail) \
             SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]') FROM json_each(?2)",
            vec![now.into(), json_list(&events)?],
        ));
    }
    write(ports, &plans, extra, now).await?;
    if how != Welcome::None {
        welcome(ports, &plans, &mut items, how, now).await?;
    }
    Ok(items)
}

/// What the databases hold for the records of a batch, read with one query per table.
struct Known {
    users: HashMap<String, User>,
    /// Lower-cased email or username → the id of the user who has it.
    names: HashMap<String, String>,
    /// Principal keys ([`crate::client::principal_key`]) of clients among the ids.
    clients: HashSet<String>,
    phc: HashMap<String, String>,
    sources: HashMap<String, String>,
    totp: HashMap<String, Vec<u8>>,
}

fn json_list<T: Serialize>(items: &[T]) -> Result<Value, PortError> {
    serde_json::to_string(items)
        .map(Value::from)
        .map_err(|e| PortError::other(format!("json: {e}")))
}

impl Known {
    async fn load<P: Ports>(ports: &P, records: &[Record]) -> Result<Known, AdminError> {
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let mut names: Vec<String> = Vec::new();
        for r in records {
            names.push(r.email.trim().to_lowercase());
            if let Some(u) = &r.username {
                names.push(u.trim().to_lowercase());
            }
            names.push(derived_username(&r.email, &r.id).to_lowercase());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| crate::client::principal_key(id))
            .collect();
        let sql = ports.sql();
        let users = sql
            .query(Statement::new(
                "SELECT id, email, username, name, given_name, family_name, email_verified, \
                 is_admin, disabled, created_at, updated_at FROM users \
                 WHERE id IN (SELECT value FROM json_each(?1))",
                vec![json_list(&ids)?],
            ))
            .await?
            .iter()
            .map(|row| super::from_row(row).map(|u| (u.id.clone(), u)))
            .collect::<Result<HashMap<_, _>, _>>()?;
        let mut taken = HashMap::new();
        for row in sql
            .query(Statement::new(
                "SELECT id, email, username FROM users \
                 WHERE email COLLATE NOCASE IN (SELECT value FROM json_each(?1)) \
                    OR username COLLATE NOCASE IN (SELECT value FROM json_each(?1))",
                vec![json_list(&names)?],
            ))
            .await?
        {
            let id = row.text(0)?.to_owned();
            taken.insert(row.text(1)?.to_lowercase(), id.clone());
            taken.insert(row.text(2)?.to_lowercase(), id);
        }
        let clients = sql
            .query(Statement::new(
                "SELECT replace(replace(lower(client_id), 'urn:uuid:', ''), '-', '') FROM \
                 clients WHERE replace(replace(lower(client_id), 'urn:uuid:', ''), '-', '') \
                 IN (SELECT value FROM json_each(?1))",
                vec![json_list(&keys)?],
            ))
            .await?
            .iter()
            .map(|r| r.text(0).map(str::to_owned))
            .collect::<Result<HashSet<_>, _>>()?;
        let creds = ports.credentials();
        super::ensure_credentials_schema(creds).await?;
        let pairs = |stmt: &'static str| {
            let ids = json_list(&ids);
            async move {
                creds
                    .query(Statement::new(stmt, vec![ids?]))
                    .await?
                    .iter()
                    .map(|r| Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned())))
                    .collect::<Result<HashMap<_, _>, PortError>>()
            }
        };
        let phc = pairs(
            "SELECT user_id, phc FROM password_credentials \
             WHERE user_id IN (SELECT value FROM json_each(?1))",
        )
        .await?;
        let sources = pairs(
            "SELECT user_id, source_sha256 FROM imported_passwords \
             WHERE user_id IN (SELECT value FROM json_each(?1))",
        )
        .await?;
        let sealed = pairs(
            "SELECT user_id, secret_sealed FROM totp_credentials \
             WHERE user_id IN (SELECT value FROM json_each(?1))",
        )
        .await?;
        let mut totp = HashMap::new();
        if !sealed.is_empty() {
            let kek = config::kek(ports)?;
            for (id, s) in sealed {
                let secret = kek
                    .open(&totp::seal_context(&id), &s)
                    .map_err(|e| PortError::other(format!("totp secret: {e}")))?;
                totp.insert(id, secret);
            }
        }
        Ok(Known {
            users,
            names: taken,
            clients,
            phc,
            sources,
            totp,
        })
    }
}

/// A user id the import accepts: what Kratos (UUIDs), Keycloak, Authentik and edgeid itself
/// hand out, kept short enough for every `sub` consumer (OIDC Core §2: at most 255 ASCII).
fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@')
        })
}

/// The username a record gets when it names none or one edgeid refuses: the email's local
/// part, keeping the characters edgeid allows; else `user-` and the id's first characters.
fn derived_username(email: &str, id: &str) -> String {
    let local = email.trim().split('@').next().unwrap_or("");
    let kept: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if kept.is_empty() {
        let short: String = id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        format!("user-{short}")
    } else {
        kept
    }
}

/// RFC 4648 §6 base32 as authenticator URLs carry it: case-insensitive, padding and spaces
/// ignored. (`totp::base32` is the encoder; no crate in the tree decodes base32.)
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn plan<P: Ports>(
    _ports: &P,
    known: &Known,
    record: Record,
    now: UnixTime,
    ids_seen: &mut HashSet<String>,
    names_seen: &mut HashMap<String, String>,
) -> Result<Plan, String> {
    let id = record.id.clone();
    if !valid_id(&id) {
        return Err("id must be 1-128 characters of letters, digits and - . _ ~ : @".into());
    }
    if !ids_seen.insert(id.clone()) {
        return Err("the same id appears twice in this batch".into());
    }
    if known.clients.contains(&crate::client::principal_key(&id)) {
        return Err(
            "the id is the client_id of a client; a user's sub and a client's id must differ"
                .into(),
        );
    }
    let mut notes: Vec<String> = record
        .notes
        .iter()
        .take(16)
        .map(|n| web::printable(&n.chars().take(300).collect::<String>()))
        .collect();
    let existing = known.users.get(&id).cloned();
    let username = match record.username.as_deref().map(str::trim) {
        Some(u) if valid_username(u) => u.to_owned(),
        given => {
            let derived = derived_username(&record.email, &id);
            if let Some(g) = given.filter(|g| !g.is_empty()) {
                notes.push(format!(
                    "username {:?} is not an edgeid username (letters, digits, '.', '_', '-'): \
                     imported as {derived:?}; the user can also sign in with their email",
                    web::printable(g)
                ));
            }
            // A user imported earlier keeps the username they have now.
            match &existing {
                Some(u) if given.is_none_or(|g| !valid_username(g)) => u.username.clone(),
                _ => derived,
            }
        }
    };
    let input = UserInput {
        email: record.email.clone(),
        username,
        name: record.name.clone(),
        given_name: record.given_name.clone(),
        family_name: record.family_name.clone(),
        email_verified: record.email_verified,
        is_admin: existing.as_ref().is_some_and(|u| u.is_admin),
        disabled: record.disabled,
        password: None,
    };
    let (mut user, _) = input.validate(id.clone(), now).map_err(|e| e.0)?;
    for name in [&user.email, &user.username] {
        let key = name.to_lowercase();
        if let Some(other) = known.names.get(&key).filter(|other| **other != id) {
            return Err(format!(
                "{} belongs to another user ({other})",
                web::printable(name)
            ));
        }
        if let Some(other) = names_seen.get(&key).filter(|other| **other != id) {
            return Err(format!(
                "{} is also given to {other} in this batch",
                web::printable(name)
            ));
        }
    }
    names_seen.insert(user.email.to_lowercase(), id.clone());
    names_seen.insert(user.username.to_lowercase(), id.clone());
    let profile_changed = match &existing {
        Some(old) => {
            user.created_at = old.created_at;
            old.changed_fields(&user)
        }
        None => Vec::new(),
    };
    if profile_changed.is_empty()
        && let Some(old) = &existing
    {
        user.updated_at = old.updated_at;
    }

    let stored = known.phc.get(&id);
    let mut password = None;
    let mut password_source = None;
    let mut password_kind = "none";
    let mut usable = false;
    if let Some(hash) = record
        .password_hash
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let verifiable = if super::is_current(hash) {
            password_kind = "argon2id";
            Ok(())
        } else {
            legacy::parse(hash).map(|h| {
                password_kind = h.scheme().name();
            })
        };
        match verifiable {
            Ok(()) => {
                usable = true;
                let source = sha256_hex(hash.as_bytes());
                if known.sources.get(&id) == Some(&source) && stored.is_some() {
                    // Imported before (and maybe upgraded at a sign-in since): unchanged.
                } else if stored.map(String::as_str) == Some(hash) {
                    password_source = Some(source);
                } else {
                    password = Some((hash.to_owned(), source));
                }
            }
            Err(e) => {
                password_kind = "unverifiable";
                notes.push(format!(
                    "password not imported: {e}; the user sets one through a welcome link"
                ));
            }
        }
    }
    let passwordless = !usable && stored.is_none();
    if passwordless
        && record
            .password_hash
            .as_deref()
            .is_none_or(|h| h.trim().is_empty())
    {
        notes.push("no password: the user sets one through a welcome link".into());
    }
    let mut totp = None;
    if let Some(secret) = record
        .totp_secret
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        match base32_decode(secret).filter(|s| (10..=64).contains(&s.len())) {
            Some(s) if known.totp.get(&id) == Some(&s) => {}
            Some(s) => totp = Some(s),
            None => {
                notes.push("TOTP secret is not base32 of 10 to 64 bytes: TOTP not imported".into())
            }
        }
    }
    Ok(Plan {
        user,
        existing,
        profile_changed,
        password,
        password_source,
        totp,
        passwordless,
        notes,
        password_kind,
    })
}

fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issue10_base32_decodes_what_authenticator_urls_carry() {
        assert_eq!(
            base32_decode("ON2GCY3LONYGS3RNORXXI4BNONXWM2LB").unwrap(),
            b"stackspin-totp-sofia"
        );
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW 6YTB OI").unwrap(), b"foobar");
        assert!(base32_decode("MZXW1").is_none());
        assert_eq!(
            base32_decode(&totp::base32(b"12345678901234567890")).unwrap(),
            b"12345678901234567890"
        );
    }

    #[test]
    fn issue10_usernames_are_derived_from_the_email_when_unusable() {
        assert_eq!(
            derived_username("zoe.angstrom@example.org", "x"),
            "zoe.angstrom"
        );
        assert_eq!(
            derived_username("üï@example.org", "b73de785-caa8"),
            "user-b73de785"
        );
        assert!(valid_username("jan") && !valid_username("zoë") && !valid_username(""));
        assert!(valid_id("b73de785-caa8-4f4c-a021-0d068ecb87eb"));
        assert!(!valid_id("") && !valid_id("a b") && !valid_id(&"a".repeat(129)));
    }
}
