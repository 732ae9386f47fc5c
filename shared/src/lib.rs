//! edgeid core: every protocol and identity rule of the provider, with no I/O of its own.
//!
//! A host builds its [`ports::Ports`], converts the platform request into an
//! `http::Request<Vec<u8>>`, calls [`handle`] with the [`Function`] it serves and converts the
//! response back. Each flow parses (pure), decides (pure, given loaded records and `now`),
//! commits through the ports, and renders (pure).

pub mod admin;
pub mod cache;
pub mod client;
pub mod config;
pub mod crypto;
pub mod discovery;
pub mod error;
pub mod jose;
pub mod keys;
pub mod ports;
pub mod schema;
pub mod token;
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
    /// `POST /oauth2/token` (later `/oauth2/revoke`, `/oauth2/introspect`)
    Token,
    /// `/admin/...`
    Admin,
}

impl Function {
    pub const ALL: [Function; 3] = [Function::Discovery, Function::Token, Function::Admin];

    /// The URL map: which function serves `path`. The Spin manifest and the Worker routes
    /// declare the same map; the native host routes with this function.
    pub fn for_path(path: &str) -> Option<Function> {
        match path {
            "/.well-known/openid-configuration" | "/.well-known/jwks.json" => {
                Some(Function::Discovery)
            }
            "/oauth2/token" => Some(Function::Token),
            p if p == "/admin" || p.starts_with("/admin/") => Some(Function::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Discovery => "discovery",
            Function::Token => "token",
            Function::Admin => "admin",
        }
    }
}

/// Serves one request for `function`. Never panics on input: every failure becomes a response.
pub async fn handle<P: Ports>(function: Function, ports: &P, req: Request) -> Response {
    if req.body().len() > web::MAX_BODY_BYTES {
        return web::payload_too_large();
    }
    match function {
        Function::Discovery => discovery::handle(ports, req).await,
        Function::Token => token::handle(ports, req).await,
        Function::Admin => admin::handle(ports, req).await,
    }
}
