//! `POST /admin/import/hydra`: Ory Hydra v2 OAuth 2.0 clients (the objects of Hydra's
//! `GET /admin/clients`, field names as Hydra's `client/client.go`) become edgeid clients with
//! the same `client_id` and every field edgeid supports; the others are listed in the report.
//!
//! Hydra never returns a client secret (it keeps only a hash), so a confidential client is
//! imported without one and reported "needs a secret", unless the request supplies it
//! (`secrets`, client_id → secret, e.g. read from the Kubernetes Secrets) or the sidecar
//! pushes it later from the client's `OAuth2Client` resource. A stored secret is never
//! dropped by an import.
//!
//! Ownership follows the sidecar's rule (`infra/sidecar/src/controller.rs`): `owner` is
//! `"<name>/<namespace>"` for clients hydra-maester made from an `OAuth2Client`, and the
//! sidecar adopts a client only when the stored owner equals its resource's. The import keeps
//! Hydra's owner, so those clients stay the sidecar's, and it writes over an existing edgeid
//! client only when that client has the same owner: a client created in edgeid by hand
//! (owner `""`) is not taken over by a Kubernetes-owned Hydra client of the same id, nor the
//! other way round.

use std::collections::{BTreeMap, HashSet};

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::{Item, Outcome, Report, brief};
use crate::admin::AdminError;
use crate::client::{self, AuthMethod, Client, ClientInput, GrantType};
use crate::ports::{Ports, Sql as _, Statement};
use crate::{Response, audit, web};

/// The body of `POST /admin/import/hydra`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HydraImport {
    #[serde(default)]
    pub dry_run: bool,
    /// Hydra client objects as `GET /admin/clients` answers them.
    pub clients: Vec<Value>,
    /// client_id → plaintext secret, for confidential clients.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// A Hydra client mapped onto edgeid's registration.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub input: ClientInput,
    /// `field = value` for every set field edgeid does not support (it is not imported).
    pub unsupported: Vec<String>,
}

/// Hydra fields with no edgeid counterpart that hold their default value: nothing is lost
/// when they are dropped. (`created_at`/`updated_at` are edgeid's own.)
fn is_default(field: &str, v: &Value) -> bool {
    let empty = match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    empty
        || matches!(
            (field, v.as_str()),
            ("subject_type", Some("public"))
                | ("userinfo_signed_response_alg", Some("none"))
                // edgeid's access tokens are JWTs (RFC 9068).
                | ("access_token_strategy", Some("jwt"))
        )
        || matches!(field, "created_at" | "updated_at")
}

fn strings(field: &str, v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{field} must be a list of strings"))
            })
            .collect(),
        _ => Err(format!("{field} must be a list of strings")),
    }
}

fn string(field: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!("{field} must be a string")),
    }
}

/// Maps one Hydra client object. `Err` when the client cannot work in edgeid at all (an
/// authentication method edgeid does not offer, a malformed object).
pub fn map_client(v: &Value) -> Result<Mapped, String> {
    let obj = v.as_object().ok_or("a client must be a JSON object")?;
    let mut input = ClientInput::default();
    let mut unsupported = Vec::new();
    for (field, value) in obj {
        match field.as_str() {
            "client_id" => input.client_id = Some(string(field, value)?),
            "client_secret" if !is_default(field, value) => {
                input.client_secret = Some(string(field, value)?);
            }
            "client_name" => input.client_name = string(field, value)?,
            "redirect_uris" => input.redirect_uris = strings(field, value)?,
            "post_logout_redirect_uris" => input.post_logout_redirect_uris = strings(field, value)?,
            "audience" => input.audience = strings(field, value)?,
            "scope" => input.scope = string(field, value)?,
            "owner" => input.owner = string(field, value)?,
            "metadata" => input.metadata = Some(value.clone()),
            "skip_consent" => input.skip_consent = value.as_bool().unwrap_or(false),
            "grant_types" => {
                let (known, other): (Vec<String>, Vec<String>) = strings(field, value)?
                    .into_iter()
                    .partition(|g| GrantType::parse(g).is_some());
                if !other.is_empty() {
                    unsupported.push(format!("grant_types {}", other.join(", ")));
                }
                input.grant_types = Some(known);
            }
            "response_types" => {
                let (known, other): (Vec<String>, Vec<String>) = strings(field, value)?
                    .into_iter()
                    .partition(|r| client::normalize_response_type(r).is_some());
                if !other.is_empty() {
                    unsupported.push(format!("response_types {}", other.join(", ")));
                }
                input.response_types = Some(known);
            }
            "token_endpoint_auth_method" => {
                let m = string(field, value)?;
                // Hydra's default when unset.
                let m = if m.is_empty() {
                    AuthMethod::ClientSecretBasic.as_str().to_owned()
                } else {
                    m
                };
                if AuthMethod::parse(&m).is_none() {
                    return Err(format!(
                        "token_endpoint_auth_method {m:?} is not supported by edgeid \
                         (client_secret_basic, client_secret_post or none)"
                    ));
                }
                input.token_endpoint_auth_method = Some(m);
            }
            "id_token_signed_response_alg" if !is_default(field, value) => {
                input.id_token_signed_response_alg = Some(string(field, value)?);
            }
            f if is_default(f, value) => {}
            f if f.ends_with("_lifespan") => unsupported.push(format!(
                "{f} = {} (edgeid uses the instance's token lifetimes: access_token_ttl, \
                 id_token_ttl, refresh_token_ttl)",
                brief(value)
            )),
            f => unsupported.push(format!("{f} = {}", brief(value))),
        }
    }
    if input.client_id.as_deref().unwrap_or("").is_empty() {
        return Err("the client has no client_id".into());
    }
    // Hydra's default grant type, where edgeid's would be authorization_code.
    if input.grant_types.as_ref().is_none_or(Vec::is_empty) {
        input.grant_types = Some(vec![GrantType::AuthorizationCode.as_str().to_owned()]);
    }
    if input.response_types.as_ref().is_some_and(Vec::is_empty) {
        input.response_types = None;
    }
    Ok(Mapped { input, unsupported })
}

/// The registration without what an import does not compare (times).
fn comparable(c: &Client) -> Client {
    Client {
        created_at: 0,
        updated_at: 0,
        ..c.clone()
    }
}

/// `POST /admin/import/hydra`.
pub async fn import<P: Ports>(ports: &P, body: HydraImport) -> Result<Response, AdminError> {
    let now = ports.now();
    let mut report = Report::new(body.dry_run);
    let mut batch: Vec<Statement> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for raw in &body.clients {
        let id = raw
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or("(no client_id)")
            .to_owned();
        let item = decide(ports, &body, raw, &id, &mut seen, now).await?;
        match item {
            Decision::Write {
                item,
                client,
                created,
            } => {
                batch.push(if created {
                    client::insert_statement(&client)
                } else {
                    client::update_statement(&client)
                });
                written.push(client.client_id.clone());
                report.push(item);
            }
            Decision::Report(item) => report.push(item),
        }
    }
    if !body.dry_run && !batch.is_empty() {
        ports.sql().batch(batch).await?;
        for id in &written {
            client::invalidate_cached(ports.kv(), id).await;
        }
        audit::record(
            ports.sql(),
            now,
            "import.hydra",
            "",
            serde_json::json!({ "created": report.created, "updated": report.updated,
                                "refused": report.refused }),
        )
        .await;
    }
    Ok(web::json(StatusCode::OK, &report))
}

enum Decision {
    Write {
        item: Item,
        client: Box<Client>,
        created: bool,
    },
    Report(Item),
}

async fn decide<P: Ports>(
    ports: &P,
    body: &HydraImport,
    raw: &Value,
    id: &str,
    seen: &mut HashSet<String>,
    now: i64,
) -> Result<Decision, AdminError> {
    const KIND: &str = "client";
    let refuse = |reason: String| Ok(Decision::Report(Item::refused(KIND, id, reason)));
    let mut mapped = match map_client(raw) {
        Ok(m) => m,
        Err(reason) => return refuse(reason),
    };
    if !seen.insert(id.to_owned()) {
        return refuse("the client_id appears twice in this import".into());
    }
    let supplied = body
        .secrets
        .get(id)
        .cloned()
        .or(mapped.input.client_secret.take());
    let public = mapped.input.token_endpoint_auth_method.as_deref() == Some("none");
    mapped.input.client_secret = if public { None } else { supplied.clone() };
    let existing = client::load(ports.sql(), id).await?;
    if let Some(e) = &existing
        && e.owner != mapped.input.owner
    {
        let holder = if e.owner.is_empty() {
            "was created in edgeid outside Kubernetes".to_owned()
        } else {
            format!("belongs to OAuth2Client {}", e.owner)
        };
        return refuse(format!(
            "an edgeid client with this id {holder}, the Hydra client's owner is {:?}; it is \
             not overwritten",
            mapped.input.owner
        ));
    }
    let (mut c, _) = match mapped.input.validate(ports, now, existing.as_ref()) {
        Ok(v) => v,
        Err(e) => return refuse(e.0),
    };
    let mut item = Item::new(KIND, id, Outcome::Created);
    for u in mapped.unsupported {
        item.notes.push(format!("not imported (unsupported): {u}"));
    }
    if !public && supplied.is_none() {
        // Never a generated secret nobody knows; keep what the sidecar or an earlier import
        // stored.
        c.client_secret_sha256 = existing
            .as_ref()
            .and_then(|e| e.client_secret_sha256.clone());
        if c.client_secret_sha256.is_none() {
            item.notes.push(if c.owner.is_empty() {
                "needs a secret: Hydra does not export secrets; pass it with --secrets or \
                 register one (`edgeid client` / PUT /admin/clients/{id})"
                    .to_owned()
            } else {
                format!(
                    "needs a secret: the sidecar sets it from OAuth2Client {}'s Secret, or \
                     pass it with --secrets",
                    c.owner
                )
            });
        }
    }
    match &existing {
        Some(e) if comparable(e) == comparable(&c) => {
            item.outcome = Outcome::Unchanged;
            Ok(Decision::Report(item))
        }
        Some(_) => {
            item.outcome = Outcome::Updated;
            Ok(Decision::Write {
                item,
                client: Box::new(c),
                created: false,
            })
        }
        None => {
            let key = client::principal_key(id);
            let users = ports
                .sql()
                .query(Statement::new(
                    "SELECT 1 FROM users \
                     WHERE replace(replace(lower(id), 'urn:uuid:', ''), '-', '') = ?",
                    vec![key.into()],
                ))
                .await?;
            if !users.is_empty() {
                return refuse(
                    "client_id is the id (sub) of a user: a client's own tokens carry its \
                     client_id as sub, so the two must differ"
                        .into(),
                );
            }
            Ok(Decision::Write {
                item,
                client: Box::new(c),
                created: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_hydra_defaults_are_dropped_and_set_extras_reported() {
        let m = map_client(&serde_json::json!({
            "client_id": "a", "client_name": "A", "redirect_uris": ["https://a.example/cb"],
            "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
            "response_types": ["code"], "scope": "openid", "audience": [], "owner": "",
            "policy_uri": "", "jwks": {}, "subject_type": "public",
            "userinfo_signed_response_alg": "none", "skip_logout_consent": null,
            "client_secret_expires_at": 0, "access_token_strategy": "opaque",
            "authorization_code_grant_access_token_lifespan": "1h0m0s",
            "logo_uri": "https://a.example/logo.png",
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .unwrap();
        assert_eq!(
            m.input.grant_types.as_deref(),
            Some(&["authorization_code".to_owned()][..])
        );
        assert_eq!(m.unsupported.len(), 4, "{:?}", m.unsupported);
        assert!(
            m.unsupported
                .iter()
                .any(|u| u.starts_with("grant_types urn:"))
        );
        assert!(
            m.unsupported
                .iter()
                .any(|u| u.starts_with("access_token_strategy"))
        );
        assert!(m.unsupported.iter().any(|u| u.starts_with("logo_uri")));
        assert!(
            m.unsupported
                .iter()
                .any(|u| u.starts_with("authorization_code_grant_access_token_lifespan"))
        );
    }

    #[test]
    fn issue10_hydra_clients_edgeid_cannot_authenticate_are_refused() {
        for bad in [
            serde_json::json!({"client_id": "a", "token_endpoint_auth_method": "private_key_jwt"}),
            serde_json::json!({"client_name": "no id"}),
            serde_json::json!({"client_id": "a", "redirect_uris": "https://a.example/cb"}),
            serde_json::json!(["not", "an", "object"]),
        ] {
            assert!(map_client(&bad).is_err(), "{bad}");
        }
    }
}
