//! Admin commands: thin wrappers over the admin API, usable against any host.

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. Without --secret a secret is generated and printed once.
    Create {
        /// The client_id (generated when omitted).
        id: Option<String>,
        #[arg(long)]
        secret: Option<String>,
        /// Read the secret from standard input instead of the command line.
        #[arg(long, conflicts_with = "secret")]
        secret_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        /// Repeatable: authorization_code, refresh_token, client_credentials, implicit.
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Repeatable: code, id_token, token, "code id_token", ...
        #[arg(long = "response-type")]
        response_types: Vec<String>,
        /// Repeatable.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Repeatable.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Space-separated scopes the client may request.
        #[arg(long, default_value = "")]
        scope: String,
        /// Repeatable.
        #[arg(long)]
        audience: Vec<String>,
        /// client_secret_basic (default), client_secret_post or none.
        #[arg(long)]
        auth_method: Option<String>,
        #[arg(long)]
        skip_consent: bool,
        /// RS256 (default) or ES256.
        #[arg(long)]
        id_token_alg: Option<String>,
    },
    /// List clients.
    List,
    /// Show one client.
    Get { id: String },
    /// Delete a client.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (admins create users; there is no self-registration).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        given_name: String,
        #[arg(long, default_value = "")]
        family_name: String,
        /// Mark the email address as verified.
        #[arg(long)]
        email_verified: bool,
        /// Make the user a global admin (reaches every app, with the admin role).
        #[arg(long)]
        admin: bool,
        /// Read the initial password from standard input (never from the command line, where
        /// it would land in the shell history and the process list).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// Only users whose username, email or name contains TEXT (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
    },
    /// Show one user by id.
    Get { id: String },
    /// Change USER's (id, username or email) profile; only the options given change, the id
    /// (`sub`) never does.
    Update {
        user: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        username: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        #[arg(long, value_name = "true|false")]
        email_verified: Option<bool>,
        /// Make (true) or unmake (false) a global admin.
        #[arg(long, value_name = "true|false")]
        admin: Option<bool>,
    },
    /// Disable USER: login is refused, their sessions end and their tokens are revoked.
    Disable { user: String },
    /// Enable a disabled USER: they can log in again.
    Enable { user: String },
    /// Delete a user with their sessions, consents and tokens.
    Delete { id: String },
    /// Set a user's password, read from standard input.
    SetPassword { id: String },
    /// Print a single-use link that lets USER (id, username or email) set their password:
    /// valid 24 hours for a new account, 1 hour for a reset.
    RecoveryLink {
        user: String,
        /// A password reset (1 hour); default: a welcome link while USER has no password, a
        /// reset after.
        #[arg(long)]
        reset: bool,
        /// Also mail the link to the user through the instance's mail API.
        #[arg(long)]
        send: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List security events, newest first.
    List {
        /// Only events of this kind (login.failure, user.disabled, code.replay, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only events about this user (id, username or email) or subject.
        #[arg(long)]
        subject: Option<String>,
        /// At most this many events (all when omitted).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application: `edgeid app create ext-gitlab GitLab https://gitlab.example.com`.
    Create {
        /// a-z, 0-9, '-', '_'; an `ext-` prefix marks an external app.
        slug: String,
        /// The name shown to users.
        name: String,
        /// The app's URL. (Not `url`: that id is the global `--url` of the instance.)
        #[arg(value_name = "URL")]
        app_url: String,
        /// The OAuth client the app signs in with (default: the slug).
        #[arg(long)]
        client_id: Option<String>,
        /// Mark the app external (default: when the slug starts with `ext-`).
        #[arg(long)]
        external: bool,
        /// Mark the app internal even with an `ext-` slug.
        #[arg(long, conflicts_with = "external")]
        internal: bool,
        /// An https URL of the app's logo, shown on the launcher.
        #[arg(long)]
        logo_url: Option<String>,
    },
    /// List applications.
    List,
    /// Show one application.
    Get { slug: String },
    /// Delete an application and every role on it.
    Delete { slug: String },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Give USER (id, username or email) ROLE (`admin`, `user`, or a custom name) on APP.
    Grant {
        user: String,
        app: String,
        role: String,
    },
    /// Take ROLE on APP away from USER.
    Revoke {
        user: String,
        app: String,
        role: String,
    },
    /// List USER's roles.
    List { user: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys (public information only).
    List,
    /// Rotate signing keys (provisions them on an empty store).
    Rotate {
        /// ES256 or RS256; both when omitted.
        #[arg(long)]
        alg: Option<String>,
    },
}

pub struct Admin {
    base: String,
    auth: String,
}

impl Admin {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Admin> {
        let token = token.context("an admin token is required: --token or EDGEID_TOKEN")?;
        Ok(Admin {
            base: url.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
        })
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/admin{path}", self.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let resp = match (method, body) {
            ("GET", _) => agent.get(&url).header("authorization", &self.auth).call(),
            ("DELETE", _) => agent
                .delete(&url)
                .header("authorization", &self.auth)
                .call(),
            ("POST", Some(b)) => agent
                .post(&url)
                .header("authorization", &self.auth)
                .content_type("application/json")
                .send(&compact(&b)?),
            ("POST", None) => agent
                .post(&url)
                .header("authorization", &self.auth)
                .send_empty(),
            ("PUT", None) => agent
                .put(&url)
                .header("authorization", &self.auth)
                .send_empty(),
            ("PUT", Some(b)) => agent
                .put(&url)
                .header("authorization", &self.auth)
                .content_type("application/json")
                .send(&compact(&b)?),
            ("PATCH", Some(b)) => agent
                .patch(&url)
                .header("authorization", &self.auth)
                .content_type("application/json")
                .send(&compact(&b)?),
            (m, _) => bail!("unsupported method {m}"),
        };
        let mut resp = resp.with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let desc = v["error_description"]
                .as_str()
                .or(v["error"].as_str())
                .unwrap_or(&text);
            bail!("{method} {url}: {status}: {desc}");
        }
        if text.is_empty() {
            Ok(Value::Null)
        } else {
            Ok(serde_json::from_str(&text)?)
        }
    }

    /// Every item of a keyset-paged list: `path` ends in `?` or `&`, `key` names the array.
    fn list_all(&self, path: &str, key: &str) -> anyhow::Result<Vec<Value>> {
        let mut after = String::new();
        let mut all = Vec::new();
        loop {
            let page = self.call("GET", &format!("{path}after={}", enc(&after)), None)?;
            all.extend(page[key].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => return Ok(all),
            }
        }
    }

    fn print(v: &Value) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    }

    pub fn client(&self, cmd: ClientCommand) -> anyhow::Result<()> {
        match cmd {
            ClientCommand::Create {
                id,
                secret,
                secret_stdin,
                name,
                grant_types,
                response_types,
                redirect_uris,
                post_logout_redirect_uris,
                scope,
                audience,
                auth_method,
                skip_consent,
                id_token_alg,
            } => {
                let secret = if secret_stdin {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    Some(line.trim_end_matches(['\r', '\n']).to_owned())
                } else {
                    secret
                };
                let mut body = json!({
                    "client_name": name.unwrap_or_default(),
                    "redirect_uris": redirect_uris,
                    "post_logout_redirect_uris": post_logout_redirect_uris,
                    "scope": scope,
                    "audience": audience,
                    "skip_consent": skip_consent,
                });
                let obj = body.as_object_mut().context("a JSON object")?;
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        obj.insert(k.to_owned(), v);
                    }
                };
                put("client_id", id.map(Value::from));
                put("client_secret", secret.map(Value::from));
                put(
                    "grant_types",
                    (!grant_types.is_empty()).then(|| grant_types.into()),
                );
                put(
                    "response_types",
                    (!response_types.is_empty()).then(|| response_types.into()),
                );
                put("token_endpoint_auth_method", auth_method.map(Value::from));
                put(
                    "id_token_signed_response_alg",
                    id_token_alg.map(Value::from),
                );
                Self::print(&self.call("POST", "/clients", Some(body))?)
            }
            ClientCommand::List => {
                Self::print(&Value::Array(self.list_all("/clients?", "clients")?))
            }
            ClientCommand::Get { id } => {
                Self::print(&self.call("GET", &format!("/clients/{}", enc(&id)), None)?)
            }
            ClientCommand::Delete { id } => {
                self.call("DELETE", &format!("/clients/{}", enc(&id)), None)?;
                println!("deleted client {id}");
                Ok(())
            }
        }
    }

    pub fn user(&self, cmd: UserCommand) -> anyhow::Result<()> {
        match cmd {
            UserCommand::Create {
                email,
                username,
                name,
                given_name,
                family_name,
                email_verified,
                admin,
                password_stdin,
            } => {
                let mut body = json!({
                    "email": email,
                    "username": username,
                    "name": name,
                    "given_name": given_name,
                    "family_name": family_name,
                    "email_verified": email_verified,
                    "is_admin": admin,
                });
                if password_stdin {
                    body["password"] = Value::from(read_stdin_line()?);
                }
                Self::print(&self.call("POST", "/users", Some(body))?)
            }
            UserCommand::List { search } => {
                let path = search.map_or_else(
                    || "/users?".to_owned(),
                    |s| format!("/users?q={}&", enc(&s)),
                );
                Self::print(&Value::Array(self.list_all(&path, "users")?))
            }
            UserCommand::Get { id } => {
                Self::print(&self.call("GET", &format!("/users/{}", enc(&id)), None)?)
            }
            UserCommand::Update {
                user,
                email,
                username,
                name,
                given_name,
                family_name,
                email_verified,
                admin,
            } => {
                let mut body = serde_json::Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        body.insert(k.to_owned(), v);
                    }
                };
                put("email", email.map(Value::from));
                put("username", username.map(Value::from));
                put("name", name.map(Value::from));
                put("given_name", given_name.map(Value::from));
                put("family_name", family_name.map(Value::from));
                put("email_verified", email_verified.map(Value::from));
                put("is_admin", admin.map(Value::from));
                if body.is_empty() {
                    bail!("nothing to change: give at least one option");
                }
                let path = format!("/users/{}", enc(&user));
                Self::print(&self.call("PATCH", &path, Some(Value::Object(body)))?)
            }
            UserCommand::Disable { user } => {
                self.call("POST", &format!("/users/{}/disable", enc(&user)), None)?;
                println!("disabled user {user}");
                Ok(())
            }
            UserCommand::Enable { user } => {
                self.call("POST", &format!("/users/{}/enable", enc(&user)), None)?;
                println!("enabled user {user}");
                Ok(())
            }
            UserCommand::Delete { id } => {
                self.call("DELETE", &format!("/users/{}", enc(&id)), None)?;
                println!("deleted user {id}");
                Ok(())
            }
            UserCommand::RecoveryLink { user, reset, send } => {
                let mut body = json!({ "send": send });
                if reset {
                    body["purpose"] = "reset".into();
                }
                let path = format!("/users/{}/recovery", enc(&user));
                let resp = self.call("POST", &path, Some(body))?;
                let link = resp["link"]
                    .as_str()
                    .context("the answer carries no link")?;
                println!("{link}");
                let expires_at = resp["expires_at"].as_i64().unwrap_or_default();
                eprintln!(
                    "{} link, single use, expires {}",
                    resp["purpose"].as_str().unwrap_or("recovery"),
                    edgeid::mail::utc(expires_at)
                );
                if send {
                    match resp["mail_error"].as_str() {
                        None => eprintln!("mailed to the user"),
                        Some(e) => eprintln!("not mailed: {e}"),
                    }
                }
                Ok(())
            }
            UserCommand::SetPassword { id } => {
                let body = json!({ "password": read_stdin_line()? });
                self.call("PUT", &format!("/users/{}/password", enc(&id)), Some(body))?;
                println!("password set for user {id}");
                Ok(())
            }
        }
    }

    pub fn app(&self, cmd: AppCommand) -> anyhow::Result<()> {
        match cmd {
            AppCommand::Create {
                slug,
                name,
                app_url,
                client_id,
                external,
                internal,
                logo_url,
            } => {
                let mut body = json!({ "slug": slug, "name": name, "url": app_url });
                if let Some(c) = client_id {
                    body["client_id"] = Value::from(c);
                }
                if let Some(l) = logo_url {
                    body["logo_url"] = Value::from(l);
                }
                if external || internal {
                    body["external"] = Value::from(external);
                }
                Self::print(&self.call("POST", "/apps", Some(body))?)
            }
            AppCommand::List => Self::print(&self.call("GET", "/apps", None)?["apps"]),
            AppCommand::Get { slug } => {
                Self::print(&self.call("GET", &format!("/apps/{}", enc(&slug)), None)?)
            }
            AppCommand::Delete { slug } => {
                self.call("DELETE", &format!("/apps/{}", enc(&slug)), None)?;
                println!("deleted app {slug}");
                Ok(())
            }
        }
    }

    pub fn role(&self, cmd: RoleCommand) -> anyhow::Result<()> {
        match cmd {
            RoleCommand::Grant { user, app, role } => {
                let path = format!("/users/{}/roles/{}/{}", enc(&user), enc(&app), enc(&role));
                self.call("PUT", &path, None)?;
                println!("granted {role} on {app} to {user}");
                Ok(())
            }
            RoleCommand::Revoke { user, app, role } => {
                let path = format!("/users/{}/roles/{}/{}", enc(&user), enc(&app), enc(&role));
                self.call("DELETE", &path, None)?;
                println!("revoked {role} on {app} from {user}");
                Ok(())
            }
            RoleCommand::List { user } => {
                Self::print(&self.call("GET", &format!("/users/{}/roles", enc(&user)), None)?)
            }
        }
    }

    pub fn audit(&self, cmd: AuditCommand) -> anyhow::Result<()> {
        match cmd {
            AuditCommand::List {
                kind,
                subject,
                limit,
            } => {
                let mut filter = String::new();
                if let Some(k) = kind {
                    filter.push_str(&format!("&kind={}", enc(&k)));
                }
                if let Some(s) = subject {
                    filter.push_str(&format!("&subject={}", enc(&s)));
                }
                let wanted = limit.unwrap_or(usize::MAX);
                let mut all: Vec<Value> = Vec::new();
                let mut after = String::new();
                while all.len() < wanted {
                    let page_size = (wanted - all.len()).min(500);
                    let path = format!("/audit?limit={page_size}&after={after}{filter}");
                    let page = self.call("GET", &path, None)?;
                    all.extend(page["events"].as_array().cloned().unwrap_or_default());
                    match page["next"].as_i64() {
                        Some(n) => after = n.to_string(),
                        None => break,
                    }
                }
                Self::print(&Value::Array(all))
            }
        }
    }

    pub fn keys(&self, cmd: KeysCommand) -> anyhow::Result<()> {
        match cmd {
            KeysCommand::List => Self::print(&self.call("GET", "/keys", None)?),
            KeysCommand::Rotate { alg } => {
                let body = alg.map(|a| json!({ "alg": a }));
                Self::print(&self.call("POST", "/keys/rotate", body)?)
            }
        }
    }
}

/// One line from standard input without its line ending.
fn read_stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}

/// The JSON body as sent: compact (ureq's `send_json` pretty-prints, which would take an
/// import batch past the hosts' 64 KiB request limit).
fn compact(body: &Value) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(body)?)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
