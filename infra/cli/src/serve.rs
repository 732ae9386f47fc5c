//! `edgeid serve`: the native host. One thread per core, each with a single-threaded tokio
//! runtime and its own SQLite connections (the core's futures are `!Send` by design), all
//! accepting from one listening socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use edgeid::config::var;
use edgeid::platform::native::{NativeConfig, NativePorts, system_now};
use edgeid::{Function, Ports as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "EDGEID_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Issuer URL; `http://<listen>` when omitted (loopback only).
    #[arg(long, env = "EDGEID_ISSUER")]
    issuer: Option<String>,
    /// Directory for the SQLite databases and generated secrets.
    #[arg(long, env = "EDGEID_DATA", default_value = "./data")]
    data: PathBuf,
    /// Admin token; generated on first start (and printed once) when omitted.
    #[arg(long, env = "EDGEID_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Key-encryption key (base64url, 32 bytes); generated into the data directory when omitted.
    #[arg(long, env = "EDGEID_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    key_encryption_key: Option<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "EDGEID_ACCESS_TOKEN_TTL", default_value_t = edgeid::config::DEFAULT_ACCESS_TOKEN_TTL)]
    access_token_ttl: i64,
    /// Worker threads (default: one per core).
    #[arg(long, env = "EDGEID_THREADS")]
    threads: Option<usize>,
    /// Seconds between pruning passes (expired codes, tokens, sessions, old audit events);
    /// the first runs at start. 0 turns pruning off.
    #[arg(long, env = "EDGEID_PRUNE_INTERVAL", default_value_t = 3600)]
    prune_interval: u64,
    /// Days audit events are kept (default 90).
    #[arg(long, env = "EDGEID_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u32>,
    /// The name shown on the pages and in mails.
    #[arg(long, env = "EDGEID_INSTANCE_NAME")]
    instance_name: Option<String>,
    /// An https URL of a logo shown on every page.
    #[arg(long, env = "EDGEID_LOGO_URL")]
    logo_url: Option<String>,
    /// The pages' accent colour, `#rrggbb`.
    #[arg(long, env = "EDGEID_ACCENT_COLOR")]
    accent_color: Option<String>,
    /// Mail API endpoint for recovery links (https; http only on loopback). No mail without it.
    #[arg(long, env = "EDGEID_MAIL_API_URL")]
    mail_api_url: Option<String>,
    /// The mail API's token: a bearer token (webhook) or a Postmark server token.
    #[arg(long, env = "EDGEID_MAIL_API_TOKEN", hide_env_values = true)]
    mail_api_token: Option<String>,
    /// `webhook` (generic JSON) or `postmark`.
    #[arg(long, env = "EDGEID_MAIL_FORMAT")]
    mail_format: Option<String>,
    /// Sender address of the mails, `id@example.com` or `Name <id@example.com>`.
    #[arg(long, env = "EDGEID_MAIL_FROM")]
    mail_from: Option<String>,
    /// Reverse proxies (CIDR blocks, comma-separated) whose `Forwarded` / `X-Forwarded-For`
    /// name the client; by default the socket peer is the client.
    #[arg(long, env = "EDGEID_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating data directory {}", args.data.display()))?;
    let mut vars = HashMap::new();
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    edgeid::config::Issuer::parse(&issuer).map_err(anyhow::Error::msg)?;
    vars.insert(var::ISSUER.to_owned(), issuer.clone());
    vars.insert(
        var::ACCESS_TOKEN_TTL.to_owned(),
        args.access_token_ttl.to_string(),
    );
    if let Some(days) = args.audit_retention_days {
        vars.insert(
            edgeid::prune::var::AUDIT_RETENTION_DAYS.to_owned(),
            days.to_string(),
        );
    }
    let kek = match args.key_encryption_key {
        Some(k) => k,
        None => secret_file(&args.data.join("key-encryption-key"), || random_b64(32))?,
    };
    edgeid::crypto::Kek::parse(&kek).map_err(anyhow::Error::msg)?;
    vars.insert(var::KEY_ENCRYPTION_KEY.to_owned(), kek);
    match args.admin_token {
        Some(t) => {
            vars.insert(var::ADMIN_TOKEN.to_owned(), t);
        }
        None => {
            let digest_file = args.data.join("admin-token.sha256");
            let digest = if digest_file.exists() {
                std::fs::read_to_string(&digest_file)?.trim().to_owned()
            } else {
                let token = random_b64(32);
                let digest = edgeid::crypto::sha256_hex(token.as_bytes());
                write_private(&digest_file, &digest)?;
                eprintln!("edgeid: generated admin token (shown once, keep it): {token}");
                digest
            };
            vars.insert(var::ADMIN_TOKEN_SHA256.to_owned(), digest);
        }
    }
    for (name, value) in [
        (var::INSTANCE_NAME, &args.instance_name),
        (var::LOGO_URL, &args.logo_url),
        (var::ACCENT_COLOR, &args.accent_color),
        (edgeid::mail::var::MAIL_API_URL, &args.mail_api_url),
        (edgeid::mail::var::MAIL_API_TOKEN, &args.mail_api_token),
        (edgeid::mail::var::MAIL_FORMAT, &args.mail_format),
        (edgeid::mail::var::MAIL_FROM, &args.mail_from),
        (var::TRUSTED_PROXIES, &args.trusted_proxies),
    ] {
        if let Some(v) = value {
            vars.insert(name.to_owned(), v.clone());
        }
    }
    // A wrong list fails the start (the hosts that read it per request would ignore it).
    if let Some(list) = &args.trusted_proxies {
        edgeid::throttle::TrustedProxies::parse(list)
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
    }
    let config = NativeConfig(Arc::new(vars));
    // A wrong mail setting fails the start, not the first recovery request.
    edgeid::mail::MailSettings::load(&config).map_err(|e| anyhow::anyhow!("{}", e.message))?;

    // Create, migrate and provision before accepting traffic.
    let ports = NativePorts::open(&args.data, config.clone()).context("opening the databases")?;
    ports.sql.migrate().context("applying migrations")?;
    ports
        .credentials
        .migrate_credentials()
        .context("applying credentials migrations")?;
    block_on(provision_keys(&ports))?;
    drop(ports);
    // A wrong retention fails the start, not the first pass.
    edgeid::prune::Policy::load(&config, system_now())
        .map_err(|e| anyhow::anyhow!("{}", e.internal.unwrap_or_default()))?;
    if args.prune_interval > 0 {
        let (data, config) = (args.data.clone(), config.clone());
        let interval = std::time::Duration::from_secs(args.prune_interval);
        std::thread::Builder::new()
            .name("edgeid-prune".into())
            .spawn(move || prune_loop(&data, config, interval))?;
    }

    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    eprintln!(
        "edgeid: issuer {issuer}, data {}, {threads} threads",
        args.data.display()
    );
    println!("Serving http://{}", listener.local_addr()?);

    let mut handles = Vec::new();
    for i in 0..threads {
        let listener = listener.try_clone()?;
        let config = config.clone();
        let data = args.data.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("edgeid-{i}"))
                .spawn(move || serve_thread(listener, &data, config))?,
        );
    }
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => bail!("a server thread panicked"),
        }
    }
    Ok(())
}

/// Provisions the signing keys of every algorithm that has none (first start).
async fn provision_keys(ports: &NativePorts) -> anyhow::Result<()> {
    let settings =
        edgeid::config::Settings::load(ports).map_err(|e| anyhow::anyhow!("{:?}", e.internal))?;
    let existing = edgeid::keys::list(ports.sql()).await?;
    for alg in edgeid::jose::Alg::ALL {
        if !existing
            .iter()
            .any(|k| k.alg == alg && k.state == "current")
        {
            edgeid::keys::rotate(ports, &settings, system_now(), alg)
                .await
                .map_err(|e| anyhow::anyhow!("provisioning {alg} keys: {:?}", e.internal))?;
            eprintln!("edgeid: provisioned {alg} signing keys");
        }
    }
    Ok(())
}

/// The native host's pruning schedule (DESIGN.md: "Everything that expires is pruned"): a pass
/// at start, then one every `interval`, on a thread and connections of its own. A pass that
/// stopped at its per-table cap is followed by another a second later, so a backlog drains in
/// short statements that let the serving threads write in between.
fn prune_loop(data: &Path, config: NativeConfig, interval: std::time::Duration) {
    /// Passes per tick at most: a backlog beyond that waits for the next tick.
    const MAX_PASSES: u32 = 100;
    let ports = match NativePorts::open(data, config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("edgeid: pruning disabled: opening the databases: {e}");
            return;
        }
    };
    loop {
        for _ in 0..MAX_PASSES {
            match block_on(edgeid::prune::run_now(&ports)) {
                Ok(summary) => {
                    if summary.total() > 0 || !summary.failed.is_empty() {
                        let counts: Vec<String> = summary
                            .deleted
                            .iter()
                            .filter(|(_, n)| **n > 0)
                            .map(|(table, n)| format!("{table}={n}"))
                            .collect();
                        eprintln!(
                            "edgeid: pruned {}{}",
                            counts.join(" "),
                            if summary.failed.is_empty() {
                                String::new()
                            } else {
                                format!(" (failed: {})", summary.failed.join(" "))
                            }
                        );
                    }
                    if summary.complete || !summary.failed.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!(
                        "edgeid: pruning: {}",
                        e.internal.as_deref().unwrap_or(&e.description)
                    );
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        std::thread::sleep(interval);
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds without I/O drivers")
        .block_on(f)
}

fn serve_thread(
    listener: std::net::TcpListener,
    data: &Path,
    config: NativeConfig,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let ports = std::rc::Rc::new(NativePorts::open(data, config)?);
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("edgeid: accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let ports = ports.clone();
            tokio::task::spawn_local(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(move |req| {
                    let ports = ports.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(respond(&ports, req, peer).await)
                    }
                });
                let _ = http1_builder().serve_connection(io, service).await;
            });
        }
    })
}

/// Slow clients cannot hold a connection (issue 9): the request head must arrive within
/// [`HEADER_READ_TIMEOUT`] and the body within [`BODY_READ_TIMEOUT`]; a head over
/// [`MAX_HEAD_BYTES`] or more than [`edgeid::web::limits::MAX_HEADERS`] fields is answered
/// 431 by hyper (the core refuses smaller excesses the same way on every host).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Request line and header fields: the longest query plus the largest header block the core
/// accepts, with room for the path.
const MAX_HEAD_BYTES: usize =
    edgeid::web::limits::MAX_QUERY_BYTES + edgeid::web::limits::MAX_HEADER_BYTES + 8 * 1024;
/// How much of an oversized body is read and discarded (so the client sees its 413 rather
/// than a reset); a larger declared `Content-Length` is refused before reading.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES.max(64 * 1024))
        .max_headers(edgeid::web::limits::MAX_HEADERS);
    b
}

async fn respond(
    ports: &NativePorts,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        Ok(None)
    } else {
        tokio::time::timeout(BODY_READ_TIMEOUT, read_body(body)).await
    };
    let resp = match body {
        Err(_elapsed) => edgeid::web::request_timeout(),
        Ok(None) => edgeid::web::payload_too_large(),
        Ok(Some(body)) => {
            let mut req = http::Request::from_parts(parts, body);
            edgeid::throttle::record_client_addr(&mut req, Some(&peer.to_string()), ports);
            match Function::for_path(req.uri().path()) {
                Some(f) => edgeid::handle(f, ports, req).await,
                None => edgeid::web::not_found(),
            }
        }
    };
    let (parts, body) = resp.into_parts();
    hyper::Response::from_parts(parts, Full::new(Bytes::from(body)))
}

/// Reads the body, or `None` when it exceeds the core's limit. An oversized body is still
/// read to its end (up to [`DRAIN_LIMIT`]) and discarded, so the client gets its 413 instead
/// of a connection reset halfway through its upload.
async fn read_body(mut body: Incoming) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return None };
        if let Some(data) = frame.data_ref() {
            seen = seen.saturating_add(data.len());
            if seen <= edgeid::web::MAX_BODY_BYTES {
                buf.extend_from_slice(data);
            } else if seen > DRAIN_LIMIT {
                return None;
            }
        }
    }
    (seen <= edgeid::web::MAX_BODY_BYTES).then_some(buf)
}

/// Random base64url that never starts with `-`, so a generated token pasted after `--token`
/// is not taken for an option.
fn random_b64(bytes: usize) -> String {
    loop {
        let mut buf = vec![0u8; bytes];
        getrandom::fill(&mut buf).expect("the OS random source is available");
        let s = edgeid::crypto::b64url(&buf);
        if !s.starts_with('-') {
            return s;
        }
    }
}

/// Reads a generated secret, creating it (mode 0600) on first use.
fn secret_file(path: &Path, generate: impl FnOnce() -> String) -> anyhow::Result<String> {
    if path.exists() {
        return Ok(std::fs::read_to_string(path)?.trim().to_owned());
    }
    let value = generate();
    write_private(path, &value)?;
    Ok(value)
}

fn write_private(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{value}")?;
    Ok(())
}
