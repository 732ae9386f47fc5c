//! Complete sign-ins (issue 12, item 5): authorize → login page → login POST → code → token
//! (authorization_code with PKCE S256, an RS256 ID token) → userinfo, driven by a few worker
//! threads with plain HTTP (redirects never followed automatically, cookies kept by hand, a
//! fresh cookie jar per sign-in so every one shows the login page).
//!
//! The server CPU is read (`/proc`, the server's process tree) around three phases run one
//! after the other, so each has its own figure:
//!
//! - **A, authorize + login**: every request of a sign-in up to the code on the redirect URI
//!   (authorize, the login page, the login POST with the password check, the provider's own
//!   redirects). This phase carries the argon2id verification on edgeid.
//! - **B, token**: redeeming the codes of phase A (client_secret_basic, PKCE verifier); each
//!   answer carries an RS256 ID token (checked). This is the "token endpoint with an RS256 ID
//!   token" figure.
//! - **C, userinfo**: `GET` userinfo with the access tokens of phase B, cycled for the phase's
//!   seconds (a code is single-use, a token is not, so phase C runs long enough for the
//!   clock-tick resolution of `/proc`).
//!
//! A complete sign-in costs A + B + C (one request of each of B and C). The argon2id hash
//! itself is measured in each round right before the sign-ins, on the same host's build,
//! through the admin API ([`argon2_cost`]), and subtracted for the "apart from argon2" figure,
//! which is what compares with the peer (oidc-provider's development login checks no password
//! at all). Subtracting the hash measured on its own is the honest split: a sign-in with a wrong
//! password is not "a sign-in minus the hash" (it skips the session and the code, and adds the
//! failure's bookkeeping).
//!
//! The login throttle (issue 9) stays out of the way without any bench-only switch: it counts
//! attempts in flight and keeps wrong ones. Each worker has its own account, so the
//! per-account counter never holds more than one attempt (a correct password clears it), and
//! the per-address counter of 127.0.0.1 gets each reservation back on success, so at most
//! `workers` are held at once, far below its 30 free attempts. A throttled login (429) would be
//! counted as a failure and shown in the report.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;

use super::load::tree_cpu;

/// The relying party every provider knows (created through the admin API on edgeid, configured
/// in `infra/bench/peer.mjs`): confidential, client_secret_basic, code flow, RS256 ID tokens,
/// consent skipped (first party).
pub(super) const RP_CLIENT_ID: &str = "bench-rp";
pub(super) const RP_SECRET: &str = "bench-rp-secret-123456";
/// A loopback redirect URI nothing listens on: the code is read from the `Location` header.
pub(super) const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
/// The bench users' password (not in edgeid's list of common passwords).
const PASSWORD: &str = "Bench-Signin-Passw0rd-7431";
/// Sign-ins each worker completes in phase A even past its seconds: phase B cannot repeat a
/// code, and its CPU figure is only as fine as /proc's clock tick divided by the codes.
const MIN_PER_WORKER: usize = 5;
/// Users created with (and without) a password per batch when estimating the argon2id cost.
const ARGON2_BATCH: usize = 8;

/// One measured phase.
#[derive(Debug, Clone, Default)]
pub(super) struct Phase {
    /// Requests (phase A: complete authorize+login sequences) that succeeded.
    pub(super) count: u64,
    pub(super) elapsed: Duration,
    /// Server CPU per request (per sign-in in phase A).
    pub(super) cpu: Option<Duration>,
}

impl Phase {
    pub(super) fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.count as f64 / s } else { 0.0 }
    }
}

/// The three phases of one sign-in run.
#[derive(Debug, Clone, Default)]
pub(super) struct SignIn {
    pub(super) login: Phase,
    pub(super) token: Phase,
    pub(super) userinfo: Phase,
    /// One argon2id hash on this host's build, measured right before ([`argon2_cost`]); `None`
    /// for the peer, which hashes nothing.
    pub(super) argon2: Option<Duration>,
    /// Requests that failed in any phase, and the first failure.
    pub(super) failed: u64,
    pub(super) first_error: Option<String>,
}

impl SignIn {
    /// CPU of one complete sign-in: phase A per sign-in plus one token and one userinfo request.
    pub(super) fn complete(&self) -> Option<Duration> {
        Some(self.login.cpu? + self.token.cpu? + self.userinfo.cpu?)
    }

    /// [`Self::complete`] minus the argon2id hash (negative when the noise of the two
    /// measurements exceeds what is left), in µs.
    pub(super) fn without_argon2_us(&self, hashes: bool) -> Option<f64> {
        let argon2 = if hashes {
            self.argon2?.as_secs_f64()
        } else {
            0.0
        };
        Some((self.complete()?.as_secs_f64() - argon2) * 1e6)
    }
}

/// What a provider's sign-in needs: its endpoints, the server to read the CPU of, the accounts.
pub(super) struct Target<'a> {
    pub(super) authorize: String,
    pub(super) token: String,
    pub(super) userinfo: String,
    /// The origin relative `Location`s resolve against.
    pub(super) base_url: &'a str,
    pub(super) server: u32,
    /// One account per worker (usernames; every one has [`PASSWORD`]). The per-account
    /// password throttle counts attempts in flight, so one worker per account keeps it at one.
    pub(super) accounts: &'a [String],
}

/// Runs phases A, B and C against `target` with one worker per account; A and C for about
/// `seconds` each (A for at least [`MIN_PER_WORKER`] sign-ins per worker).
pub(super) fn run(target: &Target<'_>, seconds: u32) -> anyhow::Result<SignIn> {
    let workers = target.accounts.len().max(1);
    let budget = Duration::from_secs(u64::from(seconds.max(1)));
    let errors = Errors::default();

    // Phase A: authorize + login until the time is up, collecting (code, verifier).
    let cpu0 = tree_cpu(target.server);
    let t0 = Instant::now();
    let codes: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = target
            .accounts
            .iter()
            .map(|user| {
                let errors = &errors;
                s.spawn(move || {
                    let agent = agent();
                    let mut out = Vec::new();
                    let mut attempts = 0u32;
                    while (t0.elapsed() < budget || out.len() < MIN_PER_WORKER) && attempts < 10_000
                    {
                        attempts += 1;
                        match authorize_and_login(&agent, target, user) {
                            Ok(code) => out.push(code),
                            Err(e) => {
                                errors.push(e);
                                if errors.count() > 20 {
                                    break;
                                }
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let login = phase(target.server, cpu0, t0, codes.len() as u64);
    if codes.is_empty() {
        bail!(
            "no sign-in reached the redirect URI: {}",
            errors.first().unwrap_or_default()
        );
    }

    // Phase B: redeem every code.
    let chunks: Vec<&[(String, String)]> = codes.chunks(codes.len().div_ceil(workers)).collect();
    let cpu0 = tree_cpu(target.server);
    let t0 = Instant::now();
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let errors = &errors;
                s.spawn(move || {
                    let agent = agent();
                    chunk
                        .iter()
                        .filter_map(|(code, verifier)| {
                            redeem(&agent, target, code, verifier)
                                .map_err(|e| errors.push(e))
                                .ok()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let token = phase(target.server, cpu0, t0, tokens.len() as u64);
    if tokens.is_empty() {
        bail!(
            "no code was redeemed: {}",
            errors.first().unwrap_or_default()
        );
    }

    // Phase C: userinfo with those access tokens, cycled until the time is up.
    let cpu0 = tree_cpu(target.server);
    let t0 = Instant::now();
    let calls: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (errors, tokens) = (&errors, &tokens);
                s.spawn(move || {
                    let agent = agent();
                    let mut ok = 0u64;
                    let mut i = w;
                    while t0.elapsed() < budget || ok < 2 {
                        match userinfo(&agent, target, &tokens[i % tokens.len()]) {
                            Ok(()) => ok += 1,
                            Err(e) => {
                                errors.push(e);
                                if errors.count() > 20 {
                                    break;
                                }
                            }
                        }
                        i += workers;
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let userinfo = phase(target.server, cpu0, t0, calls);

    Ok(SignIn {
        login,
        token,
        userinfo,
        argon2: None,
        failed: errors.count(),
        first_error: errors.first(),
    })
}

/// One sign-in of the first account through all three steps, before any round.
pub(super) fn check(target: &Target<'_>) -> anyhow::Result<()> {
    let agent = agent();
    let user = target.accounts.first().context("no sign-in account")?;
    let (code, verifier) = authorize_and_login(&agent, target, user)?;
    let access_token = redeem(&agent, target, &code, &verifier)?;
    userinfo(&agent, target, &access_token)
}

fn phase(server: u32, cpu0: Option<Duration>, t0: Instant, count: u64) -> Phase {
    let elapsed = t0.elapsed();
    let cpu = match (cpu0, tree_cpu(server)) {
        (Some(a), Some(b)) if count > 0 => {
            Some(b.saturating_sub(a) / u32::try_from(count).unwrap_or(u32::MAX))
        }
        _ => None,
    };
    Phase {
        count,
        elapsed,
        cpu,
    }
}

/// Failures across workers: a count and the first message.
#[derive(Default)]
struct Errors(Mutex<(u64, Option<String>)>);

impl Errors {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Option<String>)> {
        // A worker that panicked while holding the lock only loses its message.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn push(&self, e: anyhow::Error) {
        let mut g = self.lock();
        g.0 += 1;
        if g.1.is_none() {
            g.1 = Some(format!("{e:#}"));
        }
    }
    fn count(&self) -> u64 {
        self.lock().0
    }
    fn first(&self) -> Option<String> {
        self.lock().1.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

struct Resp {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One request with `jar`'s cookies (every cookie to every path: both providers only look
/// cookies up by name); `Set-Cookie` answers update the jar.
fn send(
    agent: &ureq::Agent,
    jar: &mut BTreeMap<String, String>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> anyhow::Result<Resp> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if !jar.is_empty() {
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        builder = builder.header("cookie", cookie);
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    if form.is_some() {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = builder.body(form.unwrap_or_default().as_bytes().to_vec())?;
    let mut resp = agent.run(req).with_context(|| format!("{method} {url}"))?;
    for v in resp.headers().get_all("set-cookie") {
        if let Ok(v) = v.to_str() {
            store_cookie(jar, v);
        }
    }
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(4 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok(Resp {
        status,
        location,
        body,
    })
}

fn store_cookie(jar: &mut BTreeMap<String, String>, set_cookie: &str) {
    let mut parts = set_cookie.split(';');
    let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
        return;
    };
    let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
    let expired = value.is_empty()
        || parts.any(|attr| {
            let attr = attr.trim().to_ascii_lowercase();
            attr.strip_prefix("max-age=")
                .is_some_and(|n| n.trim().parse::<i64>().is_ok_and(|n| n <= 0))
                || attr
                    .strip_prefix("expires=")
                    .is_some_and(|d| d.contains("1970"))
        });
    if expired {
        jar.remove(&name);
    } else {
        jar.insert(name, value);
    }
}

/// An absolute `Location`, or one relative to the provider's origin.
fn resolve(base_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base_url}{location}")
    } else {
        format!("{base_url}/{location}")
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    // The OS random source is there on every machine the bench runs on.
    let _ = getrandom::fill(&mut b);
    b64url(&b)
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a query string.
fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

// ---------------------------------------------------------------------------------------------
// The flow

/// PKCE S256 (RFC 7636 §4.1-4.2): a 43-character verifier and its challenge.
fn pkce() -> (String, String) {
    let verifier = random(32);
    let challenge = b64url(&sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// authorize → (provider redirects) → login page → login POST → (redirects) → the code on the
/// redirect URI. Returns (code, PKCE verifier).
fn authorize_and_login(
    agent: &ureq::Agent,
    target: &Target<'_>,
    username: &str,
) -> anyhow::Result<(String, String)> {
    let mut jar = BTreeMap::new();
    let (verifier, challenge) = pkce();
    let state = random(12);
    let url = format!(
        "{}?{}",
        target.authorize,
        form(&[
            ("client_id", RP_CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", &state),
            ("nonce", &random(12)),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    let mut resp = send(agent, &mut jar, "GET", &url, &[], None)?;
    let mut logged_in = false;
    for _ in 0..10 {
        if (300..400).contains(&resp.status) {
            let location = resolve(
                target.base_url,
                resp.location
                    .as_deref()
                    .context("a redirect without Location")?,
            );
            if location.starts_with(REDIRECT_URI) {
                if let Some(err) = query_param(&location, "error") {
                    bail!("authorization error {err}: {location}");
                }
                if query_param(&location, "state").as_deref() != Some(state.as_str()) {
                    bail!("state not echoed: {location}");
                }
                if !logged_in {
                    bail!("the code came without a login page");
                }
                let code = query_param(&location, "code").context("no code in the callback")?;
                return Ok((code, verifier));
            }
            resp = send(agent, &mut jar, "GET", &location, &[], None)?;
            continue;
        }
        if resp.status != 200 || logged_in {
            bail!(
                "unexpected {} in the flow: {}",
                resp.status,
                resp.body.chars().take(300).collect::<String>()
            );
        }
        let login = login_form(&resp.body)
            .with_context(|| format!("no login form in: {}", snippet(&resp.body)))?;
        let action = resolve(target.base_url, &login.action);
        let mut pairs: Vec<(&str, &str)> = login
            .hidden
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push((login.username.as_str(), username));
        pairs.push((login.password.as_str(), PASSWORD));
        resp = send(agent, &mut jar, "POST", &action, &[], Some(&form(&pairs)))?;
        logged_in = true;
        if resp.status == 200 || resp.status == 401 || resp.status == 429 {
            bail!(
                "the login POST answered {}: {}",
                resp.status,
                snippet(&resp.body)
            );
        }
    }
    bail!("the flow did not reach the redirect URI within 10 steps")
}

fn snippet(html: &str) -> String {
    html.chars().take(300).collect()
}

/// `grant_type=authorization_code` with client_secret_basic; checks that the ID token is
/// RS256 and returns the access token.
fn redeem(
    agent: &ureq::Agent,
    target: &Target<'_>,
    code: &str,
    verifier: &str,
) -> anyhow::Result<String> {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{RP_CLIENT_ID}:{RP_SECRET}"))
    );
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ]);
    let mut jar = BTreeMap::new();
    let resp = send(
        agent,
        &mut jar,
        "POST",
        &target.token,
        &[("authorization", &basic)],
        Some(&body),
    )?;
    if resp.status != 200 {
        bail!("token answered {}: {}", resp.status, snippet(&resp.body));
    }
    let json: serde_json::Value = serde_json::from_str(&resp.body)?;
    let id_token = json["id_token"].as_str().context("no id_token")?;
    let header = id_token.split('.').next().unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .context("ID token header")?,
    )?;
    if header["alg"] != "RS256" {
        bail!("the ID token is {}, not RS256", header["alg"]);
    }
    Ok(json["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned())
}

fn userinfo(agent: &ureq::Agent, target: &Target<'_>, access_token: &str) -> anyhow::Result<()> {
    let auth = format!("Bearer {access_token}");
    let mut jar = BTreeMap::new();
    let resp = send(
        agent,
        &mut jar,
        "GET",
        &target.userinfo,
        &[("authorization", &auth)],
        None,
    )?;
    if resp.status != 200 || !resp.body.contains("\"sub\"") {
        bail!("userinfo answered {}: {}", resp.status, snippet(&resp.body));
    }
    Ok(())
}

/// The login form of a page: the first `<form>` with a password input; its hidden fields,
/// the name of its text (username) input and of its password input.
struct LoginForm {
    action: String,
    hidden: Vec<(String, String)>,
    username: String,
    password: String,
}

fn login_form(html: &str) -> Option<LoginForm> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<form") {
        let start = from + i;
        let end = lower[start..]
            .find("</form")
            .map_or(html.len(), |e| start + e);
        from = end;
        let tag_end = lower[start..].find('>').map_or(end, |e| start + e);
        let action = attr(&html[start..tag_end], "action").unwrap_or_default();
        let inner = &html[tag_end..end];
        let (mut hidden, mut username, mut password) = (Vec::new(), None, None);
        let inner_lower = inner.to_ascii_lowercase();
        let mut at = 0;
        while let Some(j) = inner_lower[at..].find("<input") {
            let s = at + j;
            let e = inner_lower[s..].find('>').map_or(inner.len(), |e| s + e);
            at = e;
            let tag = &inner[s + 6..e];
            let Some(name) = attr(tag, "name") else {
                continue;
            };
            match attr(tag, "type")
                .unwrap_or_else(|| "text".into())
                .to_ascii_lowercase()
                .as_str()
            {
                "hidden" => hidden.push((name, attr(tag, "value").unwrap_or_default())),
                "password" => password = password.or(Some(name)),
                "text" | "email" => username = username.or(Some(name)),
                _ => {}
            }
        }
        if let (Some(username), Some(password)) = (username, password) {
            return Some(LoginForm {
                action: html_unescape(&action),
                hidden,
                username,
                password,
            });
        }
    }
    None
}

/// The value of attribute `name` in a start tag's text (quoted or not), unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or_default(),
            _ => rest
                .split(|c: char| c.is_ascii_whitespace() || c == '/')
                .next()
                .unwrap_or_default(),
        };
        return Some(html_unescape(value));
    }
    None
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#x3D;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------------------------------
// edgeid's side: the relying party, the accounts and the argon2id cost

/// Registers [`RP_CLIENT_ID`] on an edgeid host (code flow, RS256 ID tokens, consent skipped).
pub(super) fn create_rp(base_url: &str, admin_token: &str) -> anyhow::Result<()> {
    admin_post(
        base_url,
        admin_token,
        "/admin/clients",
        &serde_json::json!({
            "client_id": RP_CLIENT_ID,
            "client_name": "Bench RP",
            "client_secret": RP_SECRET,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "redirect_uris": [REDIRECT_URI],
            "scope": "openid",
            "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": "RS256",
            "skip_consent": true,
        }),
    )
}

/// Creates users with [`PASSWORD`] and users without a password through the admin API, in
/// alternating batches of at least [`ARGON2_BATCH`] (two of each), each batch by `workers`
/// threads at once like the sign-in phase (argon2id is memory-bound: on a busy machine a hash
/// costs more CPU when several run together), reading the server's CPU around each batch. One
/// argon2id hash costs the difference per user (the password-policy check and the credential
/// row come with it, so this slightly overstates the hash). Returns `workers` usernames with
/// a password and the estimate.
pub(super) fn argon2_cost(
    base_url: &str,
    admin_token: &str,
    server: u32,
    workers: usize,
) -> anyhow::Result<(Vec<String>, Option<Duration>)> {
    let run = random(4).replace(['-', '_'], "x").to_ascii_lowercase();
    let workers = workers.max(1);
    let batch = (2 * workers).max(ARGON2_BATCH);
    let mut with_password = Vec::new();
    // [without, with]: total CPU and users.
    let mut spent = [Some(Duration::ZERO); 2];
    let mut users = [0u32; 2];
    for b in 0..4 {
        let password = b % 2 == 0;
        let names: Vec<String> = (0..batch).map(|i| format!("bench-{run}-{b}-{i}")).collect();
        let before = tree_cpu(server);
        std::thread::scope(|s| -> anyhow::Result<()> {
            let handles: Vec<_> = names
                .chunks(batch.div_ceil(workers))
                .map(|chunk| {
                    s.spawn(move || -> anyhow::Result<()> {
                        for name in chunk {
                            let mut body = serde_json::json!({
                                "username": name,
                                "email": format!("{name}@example.test"),
                                "email_verified": true,
                            });
                            if password {
                                body["password"] = PASSWORD.into();
                            }
                            admin_post(base_url, admin_token, "/admin/users", &body)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a thread creating users panicked"))??;
            }
            Ok(())
        })?;
        let i = usize::from(password);
        spent[i] = match (spent[i], before, tree_cpu(server)) {
            (Some(sum), Some(a), Some(b)) => Some(sum + b.saturating_sub(a)),
            _ => None,
        };
        users[i] += u32::try_from(names.len()).unwrap_or(u32::MAX);
        if password {
            with_password.extend(names);
        }
    }
    let estimate = match spent {
        [Some(without), Some(with)] => {
            Some((with / users[1].max(1)).saturating_sub(without / users[0].max(1)))
        }
        _ => None,
    };
    with_password.truncate(workers);
    Ok((with_password, estimate))
}

fn admin_post(
    base_url: &str,
    admin_token: &str,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let url = format!("{base_url}{path}");
    let mut resp = ureq::post(&url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("authorization", &format!("Bearer {admin_token}"))
        .send_json(body)
        .with_context(|| format!("POST {url}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!(
            "POST {url}: {status}: {}",
            resp.body_mut().read_to_string().unwrap_or_default()
        );
    }
    Ok(())
}

/// The peer's accounts: oidc-provider's development login takes any name and checks no
/// password.
pub(super) fn peer_accounts(n: usize) -> Vec<String> {
    (1..=n.max(1)).map(|i| format!("bench-user-{i}")).collect()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the verifier and challenge of the spec's example.
    #[test]
    fn issue12_pkce_challenge_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            b64url(&sha256(verifier.as_bytes())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(pkce().0.len(), 43);
    }

    #[test]
    fn issue12_login_forms_of_both_providers_are_read() {
        let edgeid = r#"<form method="post" action="/login"><input type="hidden" name="request" value="a&amp;b">
            <input type="text" id="identifier" name="identifier" value="" required autofocus>
            <input type="password" id="password" name="password" required></form>"#;
        let f = login_form(edgeid).expect("edgeid's login form");
        assert_eq!(f.action, "/login");
        assert_eq!(f.hidden, vec![("request".to_owned(), "a&b".to_owned())]);
        assert_eq!(
            (f.username.as_str(), f.password.as_str()),
            ("identifier", "password")
        );

        let peer = r#"<form method="get" action="/search"><input name="q"></form>
            <form autocomplete="off" action="/interaction/abc" method="post">
            <input type="hidden" name="prompt" value="login"/>
            <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
            <input required type="password" name="password" placeholder="and password" ></form>"#;
        let f = login_form(peer).expect("oidc-provider's development login form");
        assert_eq!(f.action, "/interaction/abc");
        assert_eq!(f.hidden, vec![("prompt".to_owned(), "login".to_owned())]);
        assert_eq!(
            (f.username.as_str(), f.password.as_str()),
            ("login", "password")
        );
    }

    #[test]
    fn issue12_callback_params_and_cookies() {
        let url = "http://127.0.0.1:9/cb?code=a%2Bb&state=x+y&iss=http%3A%2F%2Fh";
        assert_eq!(query_param(url, "code").as_deref(), Some("a+b"));
        assert_eq!(query_param(url, "state").as_deref(), Some("x y"));
        assert_eq!(query_param(url, "error"), None);
        let mut jar = BTreeMap::new();
        store_cookie(
            &mut jar,
            "_interaction=abc; path=/interaction/abc; httponly",
        );
        store_cookie(&mut jar, "edgeid_session=s1; Path=/; Max-Age=604800");
        assert_eq!(jar.len(), 2);
        store_cookie(
            &mut jar,
            "_interaction=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(jar.keys().collect::<Vec<_>>(), vec!["edgeid_session"]);
        assert_eq!(resolve("http://h:1", "/auth/x"), "http://h:1/auth/x");
    }
}
