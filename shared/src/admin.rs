//! The admin API (`/admin/...`): bearer-authenticated JSON for clients, users, apps and
//! roles, signing keys, and the audit log.

use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;

use crate::app::{self, AppInput};
use crate::client::{self, ClientInput, SecretChange, WriteError};
use crate::config::{Settings, var};
use crate::crypto::{digest_eq, sha256_hex};
use crate::jose::Alg;
use crate::ports::PortError;
use crate::user::manage::{self, Actor};
use crate::user::{self, UserInput, UserPatch};
use crate::{OAuthError, Ports, Request, Response, audit, keys, web};

/// An admin API failure, rendered by [`AdminError::into_response`] (the admin API's one
/// mapping). Codes follow RFC 7591 §3.2.2 where one fits.
#[derive(Debug)]
pub enum AdminError {
    Unauthorized,
    NotFound,
    Conflict(String),
    /// RFC 7591 §3.2.2 `invalid_client_metadata`.
    InvalidClientMetadata(String),
    InvalidRequest(String),
    UnsupportedMediaType,
    MethodNotAllowed(&'static str),
    Server(OAuthError),
}

impl From<PortError> for AdminError {
    fn from(e: PortError) -> Self {
        AdminError::Server(OAuthError::server(e))
    }
}

impl From<OAuthError> for AdminError {
    fn from(e: OAuthError) -> Self {
        AdminError::Server(e)
    }
}

impl From<WriteError> for AdminError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Conflict => AdminError::Conflict("The client already exists.".into()),
            WriteError::NotFound => AdminError::NotFound,
            WriteError::IdIsAUser => AdminError::InvalidClientMetadata(
                "client_id is the id (sub) of a user: a client's own tokens carry its client_id \
                 as sub, so the two must differ. Choose another client_id."
                    .into(),
            ),
            WriteError::Storage(e) => e.into(),
        }
    }
}

impl AdminError {
    pub fn into_response(self) -> Response {
        let (status, code, description) = match self {
            AdminError::Server(e) => return e.into_json_response(),
            AdminError::MethodNotAllowed(allow) => return web::method_not_allowed(allow),
            AdminError::Unauthorized => {
                let mut resp = web::json(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({"error": "unauthorized", "error_description": "A valid admin bearer token is required."}),
                );
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="edgeid-admin""#),
                );
                return resp;
            }
            AdminError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "No such resource.".to_owned(),
            ),
            AdminError::Conflict(d) => (StatusCode::CONFLICT, "conflict", d),
            AdminError::InvalidClientMetadata(d) => {
                (StatusCode::BAD_REQUEST, "invalid_client_metadata", d)
            }
            AdminError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            AdminError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "The body must be application/json.".to_owned(),
            ),
        };
        web::json(
            status,
            &serde_json::json!({"error": code, "error_description": description}),
        )
    }
}

pub async fn handle<P: Ports>(ports: &P, req: Request) -> Response {
    let mut resp = if crate::console::serves(req.uri().path()) {
        crate::console::handle(ports, req).await
    } else {
        match admin(ports, &req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        }
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Checks `Authorization: Bearer <admin token>` against the `admin_token` secret, comparing
/// SHA-256 digests in constant time.
fn authorize(ports: &impl Ports, req: &Request) -> Result<(), AdminError> {
    // The token itself (Spin variable, Worker secret) or only its digest (the native host
    // keeps no plaintext copy of a token it generated).
    let expected = match ports.var(var::ADMIN_TOKEN).filter(|t| !t.is_empty()) {
        Some(token) => sha256_hex(token.as_bytes()),
        None => ports
            .var(var::ADMIN_TOKEN_SHA256)
            .filter(|d| d.len() == 64)
            .ok_or_else(|| {
                AdminError::Server(OAuthError::server(
                    "variable 'admin_token' is not set: admin API disabled",
                ))
            })?,
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(AdminError::Unauthorized)?;
    if digest_eq(
        &sha256_hex(presented.as_bytes()),
        &expected.to_ascii_lowercase(),
    ) {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

fn json_body<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, AdminError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(AdminError::UnsupportedMediaType);
    }
    serde_json::from_slice(req.body()).map_err(|e| {
        AdminError::InvalidRequest(format!(
            "The body is not valid: {}",
            web::printable(&e.to_string())
        ))
    })
}

async fn admin<P: Ports>(ports: &P, req: &Request) -> Result<Response, AdminError> {
    let path = req.uri().path();
    let segments: Vec<&str> = path
        .trim_start_matches("/admin")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // Unknown paths are 404 whether or not the caller is authenticated.
    let known = matches!(
        segments.as_slice(),
        ["clients"]
            | ["clients", _]
            | ["keys"]
            | ["keys", "rotate"]
            | ["users"]
            | ["users", _]
            | ["users", _, "password"]
            | ["users", _, "disable" | "enable"]
            | ["users", _, "recovery"]
            | ["audit"]
            | ["users", _, "roles"]
            | ["users", _, "roles", _, _]
            | ["import", "users"]
            | ["apps"]
            | ["apps", _]
            | ["maintenance", "prune"]
            | ["import", "hydra" | "stackspin" | "edgeid"]
            | ["export"]
    );
    if !known {
        return Err(AdminError::NotFound);
    }
    authorize(ports, req)?;
    let method = req.method();
    match (segments.as_slice(), method) {
        (["clients"], &Method::GET) => list_clients(ports, req).await,
        (["clients"], &Method::POST) => {
            let (c, secret) = create_client(ports, json_body(req)?).await?;
            Ok(client_response(&c, &secret, StatusCode::CREATED))
        }
        (["clients"], _) => Err(AdminError::MethodNotAllowed("GET, POST")),
        (["clients", id], &Method::GET) => {
            let id = percent_decode(id)?;
            let client = client::load(ports.sql(), &id)
                .await?
                .ok_or(AdminError::NotFound)?;
            Ok(web::json(StatusCode::OK, &client))
        }
        (["clients", id], &Method::PUT) => {
            let (c, secret) = update_client(ports, &percent_decode(id)?, json_body(req)?).await?;
            Ok(client_response(&c, &secret, StatusCode::OK))
        }
        (["clients", id], &Method::DELETE) => {
            delete_client(ports, &percent_decode(id)?).await?;
            Ok(no_content())
        }
        (["clients", _], _) => Err(AdminError::MethodNotAllowed("GET, PUT, DELETE")),
        (["users"], &Method::GET) => list_users(ports, req).await,
        (["users"], &Method::POST) => create_user(ports, json_body(req)?).await,
        (["users"], _) => Err(AdminError::MethodNotAllowed("GET, POST")),
        (["users", id], &Method::GET) => {
            let u = user::resolve(ports.sql(), &percent_decode(id)?)
                .await?
                .ok_or(AdminError::NotFound)?;
            Ok(web::json(StatusCode::OK, &u))
        }
        (["users", id], &Method::PATCH) => {
            update_user(ports, &percent_decode(id)?, json_body(req)?).await
        }
        (["users", id], &Method::DELETE) => delete_user(ports, &percent_decode(id)?).await,
        (["users", _], _) => Err(AdminError::MethodNotAllowed("GET, PATCH, DELETE")),
        (["users", id, action @ ("disable" | "enable")], &Method::POST) => {
            set_disabled(ports, &percent_decode(id)?, *action == "disable").await
        }
        (["users", _, "disable" | "enable"], _) => Err(AdminError::MethodNotAllowed("POST")),
        (["users", id, "password"], &Method::PUT) => {
            set_password(ports, &percent_decode(id)?, json_body(req)?).await
        }
        (["users", _, "password"], _) => Err(AdminError::MethodNotAllowed("PUT")),
        (["users", id, "recovery"], &Method::POST) => {
            recovery_link(ports, &percent_decode(id)?, json_body(req)?).await
        }
        (["users", _, "recovery"], _) => Err(AdminError::MethodNotAllowed("POST")),
        (["users", id, "roles"], &Method::GET) => list_roles(ports, &percent_decode(id)?).await,
        (["users", _, "roles"], _) => Err(AdminError::MethodNotAllowed("GET")),
        (["users", id, "roles", slug, role], m) if m == Method::PUT || m == Method::DELETE => {
            let (id, slug, role) = (
                percent_decode(id)?,
                percent_decode(slug)?,
                percent_decode(role)?,
            );
            change_role(ports, &id, &slug, &role, m == Method::PUT).await?;
            Ok(no_content())
        }
        (["users", _, "roles", _, _], _) => Err(AdminError::MethodNotAllowed("PUT, DELETE")),
        (["import", "users"], &Method::POST) => user::import::import(ports, json_body(req)?).await,
        (["import", "users"], _) => Err(AdminError::MethodNotAllowed("POST")),
        (["apps"], &Method::GET) => Ok(web::json(
            StatusCode::OK,
            &serde_json::json!({ "apps": app::list(ports.sql()).await? }),
        )),
        (["apps"], &Method::POST) => {
            let a = create_app(ports, json_body(req)?).await?;
            Ok(web::json(StatusCode::CREATED, &a))
        }
        (["apps"], _) => Err(AdminError::MethodNotAllowed("GET, POST")),
        (["apps", slug], &Method::GET) => {
            let a = app::load(ports.sql(), &percent_decode(slug)?)
                .await?
                .ok_or(AdminError::NotFound)?;
            Ok(web::json(StatusCode::OK, &a))
        }
        (["apps", slug], &Method::PUT) => {
            let a = update_app(ports, &percent_decode(slug)?, json_body(req)?).await?;
            Ok(web::json(StatusCode::OK, &a))
        }
        (["apps", slug], &Method::DELETE) => {
            delete_app(ports, &percent_decode(slug)?).await?;
            Ok(no_content())
        }
        (["apps", _], _) => Err(AdminError::MethodNotAllowed("GET, PUT, DELETE")),
        (["audit"], &Method::GET) => list_audit(ports, req).await,
        (["audit"], _) => Err(AdminError::MethodNotAllowed("GET")),
        (["keys"], &Method::GET) => list_keys(ports).await,
        (["keys"], _) => Err(AdminError::MethodNotAllowed("GET")),
        (["keys", "rotate"], &Method::POST) => rotate_keys(ports, req).await,
        (["keys", "rotate"], _) => Err(AdminError::MethodNotAllowed("POST")),
        (["maintenance", "prune"], &Method::POST) => prune(ports).await,
        (["maintenance", "prune"], _) => Err(AdminError::MethodNotAllowed("POST")),
        // Moving in and out (issue 10): crate::transfer.
        (["import", "hydra"], &Method::POST) => {
            crate::transfer::hydra::import(ports, json_body(req)?).await
        }
        (["import", "stackspin"], &Method::POST) => {
            crate::transfer::stackspin::import(ports, json_body(req)?).await
        }
        (["import", "edgeid"], &Method::POST) => {
            crate::transfer::edgeid::import(ports, json_body(req)?).await
        }
        (["import", "hydra" | "stackspin" | "edgeid"], _) => {
            Err(AdminError::MethodNotAllowed("POST"))
        }
        (["export"], &Method::GET) => crate::transfer::edgeid::export(ports, req).await,
        (["export"], _) => Err(AdminError::MethodNotAllowed("GET")),
        _ => Err(AdminError::NotFound),
    }
}

fn percent_decode(segment: &str) -> Result<String, AdminError> {
    let decoded: String =
        form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
    Ok(decoded)
}

/// Keyset paging parameters: `after` (the last id of the previous page) and `limit` (1-500).
fn paging(req: &Request) -> Result<(String, i64), AdminError> {
    let mut after = String::new();
    let mut limit: i64 = 100;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "after" => after = v.into_owned(),
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| AdminError::InvalidRequest("limit must be 1 to 500".into()))?;
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

async fn list_clients<P: Ports>(ports: &P, req: &Request) -> Result<Response, AdminError> {
    let (after, limit) = paging(req)?;
    let clients = client::list(ports.sql(), &after, limit).await?;
    let next = (clients.len() as i64 == limit)
        .then(|| clients.last().map(|c| c.client_id.clone()))
        .flatten();
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({"clients": clients, "next": next}),
    ))
}

fn client_response(client: &client::Client, secret: &SecretChange, status: StatusCode) -> Response {
    let mut value = serde_json::to_value(client).unwrap_or_default();
    // A generated secret is shown exactly once, in the response that created it.
    if let (
        SecretChange::Set {
            plaintext,
            generated: true,
        },
        Some(obj),
    ) = (secret, value.as_object_mut())
    {
        obj.insert("client_secret".into(), plaintext.clone().into());
    }
    web::json(status, &value)
}

/// Registers a client (`POST /admin/clients`, the console's "new client"): the registration
/// rules of [`ClientInput::validate`], then [`client::insert`].
pub(crate) async fn create_client<P: Ports>(
    ports: &P,
    input: ClientInput,
) -> Result<(client::Client, SecretChange), AdminError> {
    let (client, secret) = input
        .validate(ports, ports.now(), None)
        .map_err(|e| AdminError::InvalidClientMetadata(e.0))?;
    client::insert(ports.sql(), &client).await?;
    Ok((client, secret))
}

/// Replaces client `id`'s registration (`PUT /admin/clients/{id}`, the console's edit and
/// "rotate secret"), and drops its cached copy.
pub(crate) async fn update_client<P: Ports>(
    ports: &P,
    id: &str,
    input: ClientInput,
) -> Result<(client::Client, SecretChange), AdminError> {
    let existing = client::load(ports.sql(), id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let (client, secret) = input
        .validate(ports, ports.now(), Some(&existing))
        .map_err(|e| AdminError::InvalidClientMetadata(e.0))?;
    client::update(ports.sql(), &client).await?;
    client::invalidate_cached(ports.kv(), id).await;
    Ok((client, secret))
}

/// Deletes client `id` with its consents, grants, codes and refresh tokens
/// ([`client::delete`]), and its cached copy.
pub(crate) async fn delete_client<P: Ports>(ports: &P, id: &str) -> Result<(), AdminError> {
    let deleted = client::delete(ports.sql(), id).await?;
    client::invalidate_cached(ports.kv(), id).await;
    if deleted {
        Ok(())
    } else {
        Err(AdminError::NotFound)
    }
}

async fn list_keys<P: Ports>(ports: &P) -> Result<Response, AdminError> {
    let keys = keys::list(ports.sql()).await?;
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({"keys": keys}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    alg: Option<String>,
}

async fn rotate_keys<P: Ports>(ports: &P, req: &Request) -> Result<Response, AdminError> {
    let body: RotateRequest = if req.body().is_empty() {
        RotateRequest::default()
    } else {
        json_body(req)?
    };
    let algs = match body.alg.as_deref() {
        None => Alg::ALL.to_vec(),
        Some(a) => vec![Alg::parse(a).ok_or_else(|| {
            AdminError::InvalidRequest(format!(
                "alg must be ES256 or RS256, got {}",
                web::printable(a)
            ))
        })?],
    };
    let settings = Settings::load(ports)?;
    for alg in algs {
        keys::rotate(ports, &settings, ports.now(), alg).await?;
    }
    list_keys(ports).await
}

/// `POST /admin/maintenance/prune`: one pruning pass ([`crate::prune`]), answered with the
/// rows deleted per table. The scheduler of hosts without a timer of their own calls it (Spin:
/// the CronJob in `infra/k8s/maintenance.yaml`); `complete: false` means a table still had
/// more than one pass's worth, which the next call deletes.
async fn prune<P: Ports>(ports: &P) -> Result<Response, AdminError> {
    let summary = crate::prune::run_now(ports).await?;
    if summary.failed.is_empty() {
        return Ok(web::json(StatusCode::OK, &summary));
    }
    // Details went to the log; the body names the tables only.
    let mut body = serde_json::to_value(&summary).unwrap_or_default();
    body["error"] = "server_error".into();
    body["error_description"] = "Some tables could not be pruned.".into();
    Ok(web::json(StatusCode::INTERNAL_SERVER_ERROR, &body))
}

fn no_content() -> Response {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// `GET /admin/users?q=TEXT`: keyset paging as for clients; `q` keeps the users whose
/// username, email or name contains TEXT, case-insensitively.
async fn list_users<P: Ports>(ports: &P, req: &Request) -> Result<Response, AdminError> {
    let (after, limit) = paging(req)?;
    let search = query_param(req, "q").unwrap_or_default();
    let users = user::list(ports.sql(), &after, limit, search.trim()).await?;
    let next = (users.len() as i64 == limit)
        .then(|| users.last().map(|u| u.id.clone()))
        .flatten();
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({"users": users, "next": next}),
    ))
}

/// Creates a user ([`manage::create`]).
async fn create_user<P: Ports>(ports: &P, input: UserInput) -> Result<Response, AdminError> {
    let u = manage::create(ports, input, ports.now(), Actor::Api).await?;
    Ok(web::json(StatusCode::CREATED, &u))
}

/// `PATCH /admin/users/{user}` (id, username or email): merges the profile fields with the
/// create rules ([`manage::update`]); the id (`sub`) never changes.
async fn update_user<P: Ports>(
    ports: &P,
    ident: &str,
    patch: UserPatch,
) -> Result<Response, AdminError> {
    let existing = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    let u = manage::update(ports, &existing, patch, ports.now(), Actor::Api).await?;
    Ok(web::json(StatusCode::OK, &u))
}

/// `POST /admin/users/{user}/recovery`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryInput {
    /// Default: `welcome` while the user has no password, `reset` after.
    #[serde(default)]
    purpose: Option<crate::recovery::Purpose>,
    /// Also mail the link to the user (through the Mailer port).
    #[serde(default)]
    send: bool,
}

/// `POST /admin/users/{user}/recovery`: issues a single-use recovery link (24 h for `welcome`,
/// 1 h for `reset`) and answers it, with `sent` (and `mail_error`) when asked to mail it
/// ([`manage::recovery_link`]). The link is answered even when mailing fails, so the admin
/// can hand it over another way.
async fn recovery_link<P: Ports>(
    ports: &P,
    ident: &str,
    input: RecoveryInput,
) -> Result<Response, AdminError> {
    let settings = Settings::load(ports)?;
    let u = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    let link = manage::recovery_link(
        ports,
        &settings,
        &u,
        input.purpose,
        input.send,
        ports.now(),
        Actor::Api,
    )
    .await?;
    let mut body = serde_json::json!({
        "link": link.issued.link,
        "expires_at": link.issued.expires_at,
        "purpose": link.issued.purpose,
        "sent": link.sent,
    });
    if let Some(e) = link.mail_error {
        body["mail_error"] = e.into();
    }
    Ok(web::json(StatusCode::CREATED, &body))
}

/// `POST /admin/users/{user}/disable|enable` ([`manage::set_disabled`]). Disabling ends the
/// user's sessions and revokes their grants in the same batch; enabling lets them log in
/// again (nothing is restored).
async fn set_disabled<P: Ports>(
    ports: &P,
    ident: &str,
    disable: bool,
) -> Result<Response, AdminError> {
    let u = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    manage::set_disabled(ports, &u, disable, ports.now(), Actor::Api).await?;
    Ok(no_content())
}

async fn delete_user<P: Ports>(ports: &P, ident: &str) -> Result<Response, AdminError> {
    let u = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    manage::delete(ports, &u, ports.now(), Actor::Api).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordInput {
    password: String,
}

/// `PUT /admin/users/{user}/password` (`edgeid user set-password`): the admin sets a new
/// password, which ends ALL of the user's sessions, revokes all their grants and uses up their
/// open recovery links ([`user::change_password`]): whoever knew the old one keeps nothing.
async fn set_password<P: Ports>(
    ports: &P,
    ident: &str,
    input: PasswordInput,
) -> Result<Response, AdminError> {
    let now = ports.now();
    let u = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    user::check_password(&input.password).map_err(|e| AdminError::InvalidRequest(e.0))?;
    let phc = user::hash_password(ports, &input.password)?;
    user::change_password(ports, &u.id, &phc, now, user::Keep::Nothing).await?;
    audit::record(
        ports.sql(),
        now,
        "password.set",
        &u.id,
        serde_json::json!({ "by": "admin" }),
    )
    .await;
    Ok(no_content())
}

/// Creates an app (`POST /admin/apps`, the console's "new app").
pub(crate) async fn create_app<P: Ports>(
    ports: &P,
    input: AppInput,
) -> Result<app::App, AdminError> {
    let a = input
        .validate(ports.now())
        .map_err(AdminError::InvalidRequest)?;
    if !app::insert(ports.sql(), &a).await? {
        return Err(AdminError::Conflict(
            "An app with this slug, or for this client, already exists.".into(),
        ));
    }
    Ok(a)
}

/// Replaces app `slug` (`PUT /admin/apps/{slug}`, the console's edit) with the create rules;
/// the slug (which roles name) never changes.
pub(crate) async fn update_app<P: Ports>(
    ports: &P,
    slug: &str,
    input: AppInput,
) -> Result<app::App, AdminError> {
    let existing = app::load(ports.sql(), slug)
        .await?
        .ok_or(AdminError::NotFound)?;
    if input.slug != existing.slug {
        return Err(AdminError::InvalidRequest("slug cannot be changed".into()));
    }
    let a = app::App {
        created_at: existing.created_at,
        ..input
            .validate(ports.now())
            .map_err(AdminError::InvalidRequest)?
    };
    if !app::update(ports.sql(), &a).await? {
        return Err(AdminError::Conflict(
            "Another app signs in with this client already.".into(),
        ));
    }
    Ok(a)
}

/// Deletes app `slug` and every role on it (`DELETE /admin/apps/{slug}`, the console's
/// delete).
pub(crate) async fn delete_app<P: Ports>(ports: &P, slug: &str) -> Result<(), AdminError> {
    if app::delete(ports.sql(), slug).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound)
    }
}

async fn list_roles<P: Ports>(ports: &P, ident: &str) -> Result<Response, AdminError> {
    let u = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    let roles: Vec<serde_json::Value> = app::roles(ports.sql(), &u.id)
        .await?
        .into_iter()
        .map(|(app, role)| serde_json::json!({ "app": app, "role": role }))
        .collect();
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "user": u.id, "is_admin": u.is_admin, "roles": roles }),
    ))
}

/// Grants (`PUT`) or revokes (`DELETE`) a role of a user (by id, username or email) on an app
/// (`edgeid role grant|revoke`, the console's per-app page), with its audit event.
pub(crate) async fn change_role<P: Ports>(
    ports: &P,
    ident: &str,
    slug: &str,
    role: &str,
    grant: bool,
) -> Result<(), AdminError> {
    change_role_by(ports, ident, slug, role, grant, Actor::Api).await
}

/// [`change_role`] on behalf of `actor` (the console adds `via` and `by` to the event).
pub(crate) async fn change_role_by<P: Ports>(
    ports: &P,
    ident: &str,
    slug: &str,
    role: &str,
    grant: bool,
    actor: Actor<'_>,
) -> Result<(), AdminError> {
    let u = user::resolve(ports.sql(), ident)
        .await?
        .ok_or(AdminError::NotFound)?;
    app::load(ports.sql(), slug)
        .await?
        .ok_or(AdminError::NotFound)?;
    if !app::valid_name(role) {
        return Err(AdminError::InvalidRequest(
            "role must be 1-64 characters of a-z, 0-9, '-' or '_'".into(),
        ));
    }
    if grant {
        app::grant(ports.sql(), &u.id, slug, role, ports.now()).await?;
    } else if !app::revoke(ports.sql(), &u.id, slug, role).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(
        ports.sql(),
        ports.now(),
        if grant {
            "role.granted"
        } else {
            "role.revoked"
        },
        &u.id,
        actor.detail(serde_json::json!({ "app": slug, "role": role })),
    )
    .await;
    Ok(())
}

/// One query parameter's value, if present.
fn query_param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /admin/audit?after=ID&limit=N&kind=K&subject=S&from=T&to=T`: newest first; `next` is
/// the id to pass as `after` for the following (older) page. `subject` may name a user by id,
/// username or email; `from`/`to` are Unix seconds (`from <= at < to`).
async fn list_audit<P: Ports>(ports: &P, req: &Request) -> Result<Response, AdminError> {
    let (after, limit) = paging(req)?;
    let after = if after.is_empty() {
        0
    } else {
        after
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| AdminError::InvalidRequest("after must be an event id".into()))?
    };
    let kind = query_param(req, "kind").unwrap_or_default();
    let mut subject = query_param(req, "subject").unwrap_or_default();
    if !subject.is_empty()
        && let Some(u) = user::resolve(ports.sql(), &subject).await?
    {
        subject = u.id;
    }
    let time = |name: &str| -> Result<i64, AdminError> {
        match query_param(req, name).filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                AdminError::InvalidRequest(format!("{name} must be a Unix time in seconds"))
            }),
        }
    };
    let q = audit::AuditQuery {
        after,
        limit,
        kind,
        subject,
        from: time("from")?,
        to: time("to")?,
    };
    let events = audit::list(ports.sql(), &q).await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "events": events, "next": next }),
    ))
}
