//! Ports: everything the core needs from the outside world.
//!
//! The core never opens a socket, reads a clock, draws randomness or touches a platform SDK
//! (DESIGN.md, "The core: sans-IO"). Each host implements [`Ports`] once
//! (`platform/{native,spin,cloudflare}.rs`, the in-memory [`crate::testing`] host) and every flow
//! takes `&impl Ports`. The traits carry `async fn` without a `Send` bound because Workers
//! types are `!Send`; on Spin and native SQLite the futures simply complete immediately.

use std::fmt;

/// Seconds since the Unix epoch. Read once per request ([`Clock::now`]) and passed down.
pub type UnixTime = i64;

/// A failure of a port: storage unreachable, a constraint violated, a variable missing.
/// The message is for logs only; flows turn it into `server_error` without echoing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    pub kind: PortErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// A UNIQUE / PRIMARY KEY constraint refused the write.
    Conflict,
    /// Anything else: I/O, SQL syntax, access denied by the host, ...
    Other,
}

impl PortError {
    pub fn other(message: impl fmt::Display) -> Self {
        Self {
            kind: PortErrorKind::Other,
            message: message.to_string(),
        }
    }

    pub fn conflict(message: impl fmt::Display) -> Self {
        Self {
            kind: PortErrorKind::Conflict,
            message: message.to_string(),
        }
    }

    /// Classifies an SQLite error message, for hosts whose SDK only hands out text (Spin, D1).
    pub fn from_sqlite_message(message: impl fmt::Display) -> Self {
        let message = message.to_string();
        if message.contains("UNIQUE constraint failed") || message.contains("PRIMARY KEY") {
            Self::conflict(message)
        } else {
            Self::other(message)
        }
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PortError {}

/// An SQL value. The schema uses only INTEGER and TEXT (binary data is base64url text), so
/// every host's driver — rusqlite, Spin SQLite, D1's JSON rows — maps it without loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row, columns in the order the query selected them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    pub fn text(&self, i: usize) -> Result<&str, PortError> {
        match self.0.get(i) {
            Some(Value::Text(s)) => Ok(s),
            other => Err(PortError::other(format!(
                "column {i}: expected TEXT, got {other:?}"
            ))),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, PortError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, PortError> {
        match self.0.get(i) {
            Some(Value::Integer(n)) => Ok(*n),
            other => Err(PortError::other(format!(
                "column {i}: expected INTEGER, got {other:?}"
            ))),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, PortError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
}

/// A statement with positional `?` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: &'static str,
    pub params: Vec<Value>,
}

impl Statement {
    pub fn new(sql: &'static str, params: Vec<Value>) -> Self {
        Self { sql, params }
    }
}

/// The SQL database (native SQLite, Spin SQLite, D1), SQLite dialect.
///
/// Single use is a storage contract (DESIGN.md): a flow that must win exactly once issues one
/// conditional statement with `RETURNING` and checks the rows it got back, because Spin's
/// SQLite interface reports no changed-row count.
#[allow(async_fn_in_trait)]
pub trait Sql {
    /// Runs one statement and returns its rows (empty for a write without `RETURNING`).
    async fn query(&self, stmt: Statement) -> Result<Vec<Row>, PortError>;

    /// Runs the statements atomically: all of them or none.
    async fn batch(&self, stmts: Vec<Statement>) -> Result<(), PortError>;
}

/// The key-value store (native SQLite table, Spin KV, Workers KV). Only what may be stale or
/// lost without harm lives here; values that expire carry their expiry inside
/// ([`crate::cache`]) because Spin KV has no TTL.
#[allow(async_fn_in_trait)]
pub trait Kv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError>;
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), PortError>;
    async fn delete(&self, key: &str) -> Result<(), PortError>;
}

/// The wall clock.
pub trait Clock {
    fn now(&self) -> UnixTime;
}

/// A cryptographically secure random source.
pub trait Rng {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError>;
}

/// Variables and secrets (Spin variables, Worker vars and secrets, CLI flags and environment).
/// Names are lower snake case (`issuer`, `admin_token`, `key_encryption_key`); each host maps
/// them to its own convention.
pub trait Config {
    fn var(&self, name: &str) -> Option<String>;
}

/// An outbound HTTP request and its answer, bodies buffered (the Mailer port's transport).
pub type OutboundRequest = http::Request<Vec<u8>>;
pub type OutboundResponse = http::Response<Vec<u8>>;

/// Everything a flow may touch, bundled per host.
///
/// [`Ports::sign`] is the signing port: the default signs in software
/// ([`crate::jose::software_sign`]); a host with native crypto (WebCrypto on workerd, say) may
/// override it.
///
/// [`Ports::send_mail`] is the Mailer port (DESIGN.md: outbound HTTP). The core formats the
/// mail API's request ([`crate::mail`]) and hands it to [`Ports::fetch`], which each host
/// implements with its HTTP client; a host without one keeps the default, which refuses.
#[allow(async_fn_in_trait)]
pub trait Ports: Clock + Rng + Config {
    type Sql: Sql;
    type Kv: Kv;

    /// The main database: everything durable except credential secrets.
    fn sql(&self) -> &Self::Sql;
    /// The credentials database (password hashes; later TOTP seeds and recovery-token
    /// digests). Only the login, recovery and admin functions are granted it (DESIGN.md,
    /// least privilege); on any other function the host refuses to open it.
    fn credentials(&self) -> &Self::Sql;
    fn kv(&self) -> &Self::Kv;

    /// Produces the raw JWS signature (RFC 7515 §5.1 step 5) of `signing_input`.
    async fn sign(
        &self,
        key: &crate::jose::PrivateKey,
        signing_input: &[u8],
    ) -> Result<Vec<u8>, PortError> {
        crate::jose::software_sign(key, signing_input)
    }

    /// Sends one outbound HTTP request and answers the response, whatever its status. Only the
    /// Mailer uses it, towards the operator's `mail_api_url`.
    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, PortError> {
        let _ = request;
        Err(PortError::other(
            "outbound HTTP is not available on this host",
        ))
    }

    /// The Mailer port: sends `mail` through the configured mail API (`mail_api_url`,
    /// `mail_format`, ...). Fails with "mail is not configured" when no API is set.
    async fn send_mail(&self, mail: &crate::mail::Mail) -> Result<(), PortError> {
        let request = crate::mail::api_request(self, mail)?;
        let response = self.fetch(request).await?;
        crate::mail::check_response(&response)
    }
}
