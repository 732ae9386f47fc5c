//! Console pages: OAuth clients (issue 11 item 4).
//!
//! - `GET /admin/console/clients`: every client (id, name, grant types, auth method, owner),
//!   the built-in console client first.
//! - `GET /admin/console/clients/{id}`: one client's registration (RFC 7591 §2 metadata names).
//! - `GET|POST /admin/console/clients/new`, `GET|POST .../{id}/edit`, `POST .../{id}/secret`
//!   (rotate), `GET|POST .../{id}/delete`: through [`admin::create_client`],
//!   [`admin::update_client`] and [`admin::delete_client`], what `POST|PUT|DELETE
//!   /admin/clients` call: [`ClientInput::validate`]'s rules; a delete takes the client's
//!   consents, grants, codes and refresh tokens with it.
//!
//! Ownership ([`Manager`]): the console creates clients with owner [`CONSOLE_OWNER`] and
//! changes only those and clients nobody owns (created through the API or CLI without an
//! owner). Clients the Kubernetes sidecar manages are read-only here, showing their
//! `OAuth2Client` resource (`namespace/name`): the sidecar would write its resource's values
//! back at its next sync. The built-in `edgeid-console` client is read-only too.
//!
//! A generated secret is shown once: the POST that made it seals it (bound to this console
//! session, five minutes) into a cookie and redirects to the client's page, which shows it and
//! clears the cookie, so a reload shows it no more and it is never in a URL.

use askama::Template;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::admin::{self, AdminError};
use crate::client::{
    self, AuthMethod, CONSOLE_CLIENT_ID, CONSOLE_OWNER, Client, ClientInput, GrantType, Manager,
    SecretChange,
};
use crate::error::OAuthError;
use crate::jose::Alg;
use crate::ports::{Ports, UnixTime};
use crate::{Request, Response, config, web};

const BASE: &str = "/admin/console/clients";
/// Clients per list page.
const PAGE: i64 = 100;
use super::MAX_FIELD;
/// The one-time secret cookie and its sealing context.
const SECRET_COOKIE: &str = "edgeid_console_secret";
const SECRET_CONTEXT: &str = "edgeid/console-secret/v1";
const SECRET_TTL: i64 = 300;

pub async fn route<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let post = req.method() == http::Method::POST;
    let query = web::Form::from_query(req.uri().query())?;
    match (super::segments(req.uri().path()).as_slice(), post) {
        (["clients"], false) => list_page(ports, ctx, &query).await,
        (["clients", "new"], false) => Ok(form_page(ctx, &Fields::new(), None, None)),
        (["clients", "new"], true) => create(ports, ctx, form).await,
        (["clients", id], false) => client_page(ports, ctx, req, id, &query).await,
        (["clients", id, "edit"], false) => edit_page(ports, ctx, id).await,
        (["clients", id, "edit"], true) => update(ports, ctx, id, form).await,
        (["clients", id, "secret"], true) => rotate_secret(ports, ctx, id).await,
        (["clients", id, "delete"], false) => delete_page(ports, ctx, id).await,
        (["clients", id, "delete"], true) => delete(ports, ctx, id).await,
        _ => Ok(web::not_found()),
    }
}

fn notice(query: &web::Form) -> Option<&'static str> {
    match query.get("done")? {
        "created" => Some("The client was created."),
        "saved" => Some("The client was saved."),
        "rotated" => Some("The client has a new secret; the old one no longer works."),
        "deleted" => Some("The client was deleted, with its consents and grants."),
        _ => None,
    }
}

/// An admin API refusal as a sentence for the page, or the error for the error page.
fn refusal(e: AdminError) -> Result<String, OAuthError> {
    super::refusal(e, "No such client.")
}

/// Who manages a client, for the pages.
fn managed_by(m: &Manager) -> String {
    match m {
        Manager::BuiltIn => "edgeid (built in)".into(),
        Manager::Console => "this console".into(),
        Manager::Unowned => "nobody (created through the API or CLI)".into(),
        Manager::Kubernetes { namespace, name } => {
            format!("Kubernetes OAuth2Client {namespace}/{name}")
        }
        Manager::Other(owner) => format!("owner {owner}"),
    }
}

/// 403 for a change to a client the console does not manage (nothing changed).
fn read_only(ctx: &Ctx<'_>, c: &Client) -> Response {
    let text = match Manager::of(c) {
        Manager::Kubernetes { namespace, name } => format!(
            "Client {} is managed by the Kubernetes OAuth2Client {namespace}/{name}: change that \
             resource instead. Nothing was changed.",
            c.client_id
        ),
        m => format!(
            "Client {} is managed by {}; the console does not change it. Nothing was changed.",
            c.client_id,
            managed_by(&m)
        ),
    };
    ctx.render(
        StatusCode::FORBIDDEN,
        "Read-only client",
        &super::Message {
            heading: "Read-only client",
            text: &text,
            link: Some((BASE, "Back to the clients")),
        },
    )
}

/// The client `id` (the built-in console client included).
async fn load<P: Ports>(ports: &P, ctx: &Ctx<'_>, id: &str) -> Result<Option<Client>, OAuthError> {
    if id == CONSOLE_CLIENT_ID {
        return Ok(Some(client::console(&ctx.settings.issuer)));
    }
    Ok(client::load(ports.sql(), id).await?)
}

fn grants(c: &Client) -> String {
    c.grant_types
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// --- list -------------------------------------------------------------------------------

struct Row {
    id: String,
    name: String,
    grants: String,
    method: &'static str,
    owner: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ListPage {
    notice: Option<&'static str>,
    clients: Vec<Row>,
    /// The `after` of the next page.
    next: Option<String>,
}

async fn list_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let after = query.get_bounded("after", 255)?.unwrap_or("");
    let stored = client::list(ports.sql(), after, PAGE).await?;
    let next = (stored.len() as i64 == PAGE)
        .then(|| stored.last().map(|c| c.client_id.clone()))
        .flatten();
    let first = after
        .is_empty()
        .then(|| client::console(&ctx.settings.issuer));
    let clients = first
        .into_iter()
        .chain(stored)
        .map(|c| Row {
            owner: managed_by(&Manager::of(&c)),
            grants: grants(&c),
            method: c.token_endpoint_auth_method.as_str(),
            id: c.client_id,
            name: c.client_name,
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "Clients",
        &ListPage {
            notice: notice(query),
            clients,
            next,
        },
    ))
}

// --- inspect ----------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct SealedSecret {
    /// The console session it was made for.
    sid: String,
    client_id: String,
    secret: String,
    exp: UnixTime,
}

#[derive(Template)]
#[template(path = "console/clients-show.html")]
struct ClientPage<'a> {
    csrf: &'a str,
    notice: Option<&'static str>,
    c: &'a Client,
    grants: String,
    managed_by: String,
    editable: bool,
    confidential: bool,
    /// The generated secret, on the one page view after it was made.
    secret: Option<String>,
}

async fn client_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    id: &str,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let Some(c) = load(ports, ctx, id).await? else {
        return Ok(web::not_found());
    };
    let cookie = web::cookie(req, SECRET_COOKIE);
    let secret = match cookie {
        Some(sealed) => config::kek(ports)?
            .open(SECRET_CONTEXT, sealed)
            .ok()
            .and_then(|plain| serde_json::from_slice::<SealedSecret>(&plain).ok())
            .filter(|s| s.sid == ctx.session.sid && s.client_id == c.client_id && s.exp > ctx.now)
            .map(|s| s.secret),
        None => None,
    };
    let manager = Manager::of(&c);
    let mut resp = ctx.render(
        StatusCode::OK,
        &format!("Client {}", c.client_id),
        &ClientPage {
            csrf: &ctx.csrf,
            notice: notice(query),
            grants: grants(&c),
            managed_by: managed_by(&manager),
            editable: manager.console_may_change(),
            confidential: c.token_endpoint_auth_method != AuthMethod::None,
            c: &c,
            secret,
        },
    );
    if cookie.is_some() {
        // Shown (or stale): either way, never again.
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(
                SECRET_COOKIE,
                "",
                Some(0),
                ctx.settings.issuer.secure_cookies(),
            ),
        );
    }
    Ok(resp)
}

/// The redirect to the client's page after a POST, carrying a generated secret in the
/// one-time cookie.
fn after_write<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    c: &Client,
    secret: &SecretChange,
    done: &str,
) -> Result<Response, OAuthError> {
    let mut resp = web::see_other(&format!("{BASE}/{}?done={done}", c.client_id));
    if let SecretChange::Set {
        plaintext,
        generated: true,
    } = secret
    {
        let sealed = SealedSecret {
            sid: ctx.session.sid.clone(),
            client_id: c.client_id.clone(),
            secret: plaintext.clone(),
            exp: ctx.now + SECRET_TTL,
        };
        let plain = serde_json::to_vec(&sealed).map_err(OAuthError::server)?;
        let value = config::kek(ports)?.seal(ports, SECRET_CONTEXT, &plain)?;
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(
                SECRET_COOKIE,
                &value,
                Some(SECRET_TTL),
                ctx.settings.issuer.secure_cookies(),
            ),
        );
    }
    Ok(resp)
}

// --- create and edit --------------------------------------------------------------------

/// The grant types the form offers, as checkbox names `grant_<type>`.
const GRANTS: [GrantType; 4] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::ClientCredentials,
    GrantType::Implicit,
];
const METHODS: [AuthMethod; 3] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretPost,
    AuthMethod::None,
];

/// The form's values, as sent (re-shown with the refusal).
struct Fields {
    client_id: String,
    client_name: String,
    /// `(grant type, checked)` in [`GRANTS`] order.
    grants: Vec<(&'static str, bool)>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scope: String,
    audience: String,
    /// `(method, selected)` in [`METHODS`] order.
    methods: Vec<(&'static str, bool)>,
    skip_consent: bool,
    /// `(alg, selected)`.
    algs: Vec<(&'static str, bool)>,
}

impl Fields {
    fn new() -> Fields {
        Fields::with(
            String::new(),
            String::new(),
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            String::new(),
            String::new(),
            "openid profile email".into(),
            String::new(),
            AuthMethod::ClientSecretBasic,
            false,
            Alg::RS256,
        )
    }

    #[allow(clippy::too_many_arguments)] // one per form field
    fn with(
        client_id: String,
        client_name: String,
        grants: &[GrantType],
        redirect_uris: String,
        post_logout_redirect_uris: String,
        scope: String,
        audience: String,
        method: AuthMethod,
        skip_consent: bool,
        alg: Alg,
    ) -> Fields {
        Fields {
            client_id,
            client_name,
            grants: GRANTS
                .iter()
                .map(|g| (g.as_str(), grants.contains(g)))
                .collect(),
            redirect_uris,
            post_logout_redirect_uris,
            scope,
            audience,
            methods: METHODS.iter().map(|m| (m.as_str(), *m == method)).collect(),
            skip_consent,
            algs: Alg::ALL.iter().map(|a| (a.as_str(), *a == alg)).collect(),
        }
    }

    fn of(c: &Client) -> Fields {
        Fields::with(
            c.client_id.clone(),
            c.client_name.clone(),
            &c.grant_types,
            c.redirect_uris.join("\n"),
            c.post_logout_redirect_uris.join("\n"),
            c.scope.clone(),
            c.audience.join("\n"),
            c.token_endpoint_auth_method,
            c.skip_consent,
            c.id_token_signed_response_alg,
        )
    }

    fn read(form: &web::Form) -> Result<Fields, OAuthError> {
        let line = |name: &str| -> Result<String, OAuthError> {
            Ok(form
                .get_bounded(name, MAX_FIELD)?
                .unwrap_or("")
                .trim()
                .to_owned())
        };
        // Lists (one URI per line) take what one form value may carry.
        let lines = |name: &str| form.get(name).unwrap_or("").trim().to_owned();
        let grants: Vec<GrantType> = GRANTS
            .into_iter()
            .filter(|g| form.get(&format!("grant_{}", g.as_str())) == Some("on"))
            .collect();
        let method = form
            .get("token_endpoint_auth_method")
            .and_then(AuthMethod::parse)
            .unwrap_or_default();
        let alg = form
            .get("id_token_signed_response_alg")
            .and_then(Alg::parse)
            .unwrap_or(Alg::RS256);
        Ok(Fields::with(
            line("client_id")?,
            line("client_name")?,
            &grants,
            lines("redirect_uris"),
            lines("post_logout_redirect_uris"),
            line("scope")?,
            lines("audience"),
            method,
            form.get("skip_consent") == Some("on"),
            alg,
        ))
    }

    fn chosen(v: &[(&'static str, bool)]) -> Option<String> {
        v.iter().find(|(_, on)| *on).map(|(s, _)| (*s).to_owned())
    }

    /// The registration the form asks for; what the form does not show (response types,
    /// owner, metadata) is kept from `existing`, or the API's defaults and the console's owner
    /// for a new client.
    fn input(&self, existing: Option<&Client>) -> ClientInput {
        let split = |s: &str| -> Vec<String> {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        ClientInput {
            client_id: (!self.client_id.is_empty()).then(|| self.client_id.clone()),
            client_secret: None,
            client_name: self.client_name.clone(),
            grant_types: Some(
                self.grants
                    .iter()
                    .filter(|(_, on)| *on)
                    .map(|(g, _)| (*g).to_owned())
                    .collect(),
            ),
            response_types: existing.map(|e| e.response_types.clone()),
            redirect_uris: split(&self.redirect_uris),
            post_logout_redirect_uris: split(&self.post_logout_redirect_uris),
            scope: self.scope.clone(),
            audience: split(&self.audience),
            token_endpoint_auth_method: Fields::chosen(&self.methods),
            skip_consent: self.skip_consent,
            id_token_signed_response_alg: Fields::chosen(&self.algs),
            owner: existing.map_or_else(|| CONSOLE_OWNER.to_owned(), |e| e.owner.clone()),
            metadata: existing.map(|e| e.metadata.clone()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/clients-form.html")]
struct FormPage<'a> {
    csrf: &'a str,
    /// The client being edited (its id cannot change), or `None` for a new one.
    editing: Option<&'a str>,
    f: &'a Fields,
    error: Option<String>,
}

fn form_page(ctx: &Ctx<'_>, f: &Fields, editing: Option<&str>, error: Option<String>) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let title = if editing.is_some() {
        "Edit client"
    } else {
        "New client"
    };
    ctx.render(
        status,
        title,
        &FormPage {
            csrf: &ctx.csrf,
            editing,
            f,
            error,
        },
    )
}

async fn create<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let f = Fields::read(form)?;
    match admin::create_client(ports, f.input(None)).await {
        Ok((c, secret)) => after_write(ports, ctx, &c, &secret, "created"),
        Err(e) => Ok(form_page(ctx, &f, None, Some(refusal(e)?))),
    }
}

/// The stored client `id` when the console may change it; otherwise the response to give.
async fn changeable<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<Result<Client, Response>, OAuthError> {
    match load(ports, ctx, id).await? {
        None => Ok(Err(web::not_found())),
        Some(c) if !Manager::of(&c).console_may_change() => Ok(Err(read_only(ctx, &c))),
        Some(c) => Ok(Ok(c)),
    }
}

async fn edit_page<P: Ports>(ports: &P, ctx: &Ctx<'_>, id: &str) -> Result<Response, OAuthError> {
    let c = match changeable(ports, ctx, id).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    Ok(form_page(ctx, &Fields::of(&c), Some(&c.client_id), None))
}

async fn update<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    id: &str,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let c = match changeable(ports, ctx, id).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    let f = Fields {
        client_id: c.client_id.clone(),
        ..Fields::read(form)?
    };
    match admin::update_client(ports, &c.client_id, f.input(Some(&c))).await {
        Ok((c, secret)) => after_write(ports, ctx, &c, &secret, "saved"),
        Err(e) => Ok(form_page(ctx, &f, Some(&c.client_id), Some(refusal(e)?))),
    }
}

/// `POST .../{id}/secret`: a new generated secret (the registration otherwise unchanged),
/// shown once.
async fn rotate_secret<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<Response, OAuthError> {
    let c = match changeable(ports, ctx, id).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    if c.token_endpoint_auth_method == AuthMethod::None {
        return Ok(web::see_other(&format!("{BASE}/{}", c.client_id)));
    }
    // A secret of the strength the API generates, stored through the API's update with the
    // registration otherwise as it is (the same rules again).
    let plaintext = crate::crypto::random_token(ports, 32)?;
    let mut input = Fields::of(&c).input(Some(&c));
    input.client_secret = Some(plaintext.clone());
    match admin::update_client(ports, &c.client_id, input).await {
        Ok((c, _)) => {
            let shown = SecretChange::Set {
                plaintext,
                generated: true,
            };
            after_write(ports, ctx, &c, &shown, "rotated")
        }
        Err(e) => refusal(e).and_then(|d| Err(OAuthError::server(d))),
    }
}

// --- delete -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/clients-delete.html")]
struct DeletePage<'a> {
    csrf: &'a str,
    c: &'a Client,
    app: Option<String>,
}

async fn delete_page<P: Ports>(ports: &P, ctx: &Ctx<'_>, id: &str) -> Result<Response, OAuthError> {
    let c = match changeable(ports, ctx, id).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    if let Some(resp) = ctx.require_recent(&format!("{BASE}/{}/delete", c.client_id)) {
        return Ok(resp);
    }
    let app = crate::app::for_client(ports.sql(), &c.client_id)
        .await?
        .map(|a| a.name);
    Ok(ctx.render(
        StatusCode::OK,
        "Delete client",
        &DeletePage {
            csrf: &ctx.csrf,
            c: &c,
            app,
        },
    ))
}

async fn delete<P: Ports>(ports: &P, ctx: &Ctx<'_>, id: &str) -> Result<Response, OAuthError> {
    let c = match changeable(ports, ctx, id).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    if let Some(resp) = ctx.require_recent(&format!("{BASE}/{}/delete", c.client_id)) {
        return Ok(resp);
    }
    match admin::delete_client(ports, &c.client_id).await {
        Ok(()) => Ok(web::see_other(&format!("{BASE}?done=deleted"))),
        Err(AdminError::NotFound) => Ok(web::not_found()),
        Err(e) => refusal(e).and_then(|d| Err(OAuthError::server(d))),
    }
}
