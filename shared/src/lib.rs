//! edgeid core: every protocol and identity rule of the provider, with no I/O of its own.
//!
//! A host builds its [`ports::Ports`], converts the platform request into an
//! `http::Request<Vec<u8>>`, calls [`handle`] with the [`Function`] it serves and converts the
//! response back. Each flow parses (pure), decides (pure, given loaded records and `now`),
//! commits through the ports, and renders (pure).

pub mod access;
pub mod admin;
pub mod app;
pub mod audit;
pub mod authorize;
pub mod cache;
pub mod client;
pub mod config;
pub mod console;
pub mod crypto;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod html;
pub mod issue;
pub mod jose;
pub mod keys;
pub mod login;
pub mod mail;
pub mod ports;
pub mod prune;
pub mod recovery;
pub mod schema;
pub mod session;
pub mod throttle;
pub mod time;
pub mod token;
pub mod totp;
pub mod transfer;
pub mod user;
pub mod userinfo;
pub mod web;

pub mod platform;

#[cfg(any(test, feature = "native"))]
pub mod testing;

pub use error::{ErrorCode, OAuthError};
pub use ports::Ports;

/// A request as every flow sees it: buffered body, `http` 1.x types.
pub type Request = http::Request<Vec<u8>>;
/// A response as every flow returns it.
pub type Response = http::Response<Vec<u8>>;

/// The endpoint groups, each deployed as its own component / Worker (DESIGN.md, URL map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json`
    Discovery,
    /// `GET`/`POST /oauth2/auth`
    Authorize,
    /// `POST /oauth2/token`, `/oauth2/revoke`, `/oauth2/introspect`
    Token,
    /// `GET`/`POST /userinfo`
    Userinfo,
    /// `/login`, `/login/totp`, `/consent`, `/logout`, `/oauth2/sessions/logout`,
    /// `/settings...`, `/assets/...`
    Login,
    /// `/admin/...` (the bearer API and the console), `/` (the launcher)
    Admin,
    /// `/recovery`, `/recovery/...`: request a link, follow it, set a password
    Recovery,
}

impl Function {
    pub const ALL: [Function; 7] = [
        Function::Discovery,
        Function::Authorize,
        Function::Token,
        Function::Userinfo,
        Function::Login,
        Function::Admin,
        Function::Recovery,
    ];

    /// The URL map: which function serves `path`. The Spin manifest and the Worker routes
    /// declare the same map; the native host routes with this function.
    pub fn for_path(path: &str) -> Option<Function> {
        match path {
            "/.well-known/openid-configuration" | "/.well-known/jwks.json" => {
                Some(Function::Discovery)
            }
            "/oauth2/auth" => Some(Function::Authorize),
            "/oauth2/token" | "/oauth2/revoke" | "/oauth2/introspect" => Some(Function::Token),
            "/userinfo" => Some(Function::Userinfo),
            "/login" | "/login/totp" | "/consent" | "/logout" | "/oauth2/sessions/logout" => {
                Some(Function::Login)
            }
            p if p == "/settings" || p.starts_with("/settings/") => Some(Function::Login),
            p if p.starts_with("/assets/") => Some(Function::Login),
            // The launcher (`/`) and the console (`/admin/console/...`) are the admin
            // function's pages (issue 11).
            "/" => Some(Function::Admin),
            p if p == "/admin" || p.starts_with("/admin/") => Some(Function::Admin),
            p if p == "/recovery" || p.starts_with("/recovery/") => Some(Function::Recovery),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Discovery => "discovery",
            Function::Authorize => "authorize",
            Function::Token => "token",
            Function::Userinfo => "userinfo",
            Function::Login => "login",
            Function::Admin => "admin",
            Function::Recovery => "recovery",
        }
    }
}

/// Serves one request for `function`. Never panics on input: every failure becomes a response.
///
/// The native host and the in-memory tests route with this. A wasm component calls its own
/// group's entry instead (through [`serve`], from its host adapter), so the linker keeps only
/// that group's flows (DESIGN.md, "Functions link only their own flows").
pub async fn handle<P: Ports>(function: Function, ports: &P, req: Request) -> Response {
    if let Some(refused) = web::refuse_oversized(&req) {
        return refused;
    }
    match function {
        Function::Discovery => discovery::handle(ports, req).await,
        Function::Authorize => authorize::handle(ports, req).await,
        Function::Token => token::handle(ports, req).await,
        Function::Userinfo => userinfo::handle(ports, req).await,
        Function::Login => login::handle(ports, req).await,
        Function::Admin => admin::handle(ports, req).await,
        Function::Recovery => recovery::handle(ports, req).await,
    }
}

/// Serves one request with one endpoint group's entry (`edgeid::token::handle`, ...): the
/// checks every function applies first (input caps), then the flow. The host adapters take
/// the entry as a value, so each component is monomorphized over its own flows only.
pub async fn serve<P: Ports>(
    entry: impl AsyncFn(&P, Request) -> Response,
    ports: &P,
    req: Request,
) -> Response {
    if let Some(refused) = web::refuse_oversized(&req) {
        return refused;
    }
    entry(ports, req).await
}
