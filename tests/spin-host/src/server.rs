//! Compiling the components, and serving HTTP the way Spin's HTTP trigger does: route by the
//! manifest, add the `spin-*` request headers, instantiate the component fresh for each
//! request and call its `wasi:http/incoming-handler`.
//!
//! A component that traps, never answers or runs too long costs its own request a 500; it
//! never takes the host down.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView as _};

use crate::host::{Ctx, DenyOutbound, Grants, SpinImports, Stores};
use crate::manifest::App;
use crate::runtime_config::RuntimeConfig;
use crate::store::{Db, open_key_value};

/// Instances alive at once. Sizes the pooling allocator; requests beyond it wait for a slot.
const MAX_INSTANCES: u32 = 128;
/// Linear memory one instance may grow to (argon2id at m=19456 KiB needs ~20 MiB).
const MAX_MEMORY: usize = 256 << 20;
/// A guest's whole budget for one request, body included; past it the guest is dropped (a 500
/// if no response head was sent yet). Guests yield to tokio every epoch tick, so the timer
/// fires even in a guest stuck in a loop.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the host was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub manifest: PathBuf,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    /// `--sqlite` arguments: `@file.sql` or literal SQL, run on `default` at start.
    pub sqlite: Vec<String>,
    /// `--runtime-config-file`: where SQLite labels other than `default` live.
    pub runtime_config: Option<PathBuf>,
}

/// A loaded application, ready to serve.
pub struct Host {
    app: App,
    components: BTreeMap<String, Loaded>,
    engine: Engine,
    listen: SocketAddr,
    slots: Semaphore,
}

struct Loaded {
    pre: ProxyPre<Ctx>,
    grants: Arc<Grants>,
    environment: Vec<(String, String)>,
    stores: Arc<Stores>,
}

impl Host {
    /// Loads the manifest, opens the state directory, runs `--sqlite` scripts and compiles
    /// every component. Everything that can be wrong with the set-up fails here, not on the
    /// first request.
    pub fn new(opts: &Options, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Host> {
        let app = App::load(&opts.manifest)?;
        std::fs::create_dir_all(&opts.state_dir)
            .with_context(|| format!("creating state dir {}", opts.state_dir.display()))?;

        let runtime_config = match &opts.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        let stores = Arc::new(open_stores(&app, &opts.state_dir, &runtime_config)?);
        if let Some(default) = stores.sqlite.get("default") {
            for arg in &opts.sqlite {
                run_sqlite_arg(default, arg, opts.manifest.parent())?;
            }
        } else if !opts.sqlite.is_empty() {
            bail!("--sqlite given but no component uses the default database");
        }

        let engine = engine()?;
        let mut linker: Linker<Ctx> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow_err)?;
        SpinImports::add_to_linker::<_, HasSelf<Ctx>>(&mut linker, |c| c).map_err(anyhow_err)?;

        // Compile on separate threads: each component is an independent Cranelift job.
        let compiled: Vec<(String, anyhow::Result<Component>)> = std::thread::scope(|s| {
            let jobs: Vec<_> = app
                .components
                .values()
                .map(|c| {
                    let engine = &engine;
                    (c.id.clone(), s.spawn(move || compile(engine, &c.source)))
                })
                .collect();
            jobs.into_iter()
                .map(|(id, job)| {
                    let out = job
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("compiler thread panicked")));
                    (id, out)
                })
                .collect()
        });

        let mut components = BTreeMap::new();
        for (id, component) in compiled {
            let component = component?;
            let spec = &app.components[&id];
            let pre = linker
                .instantiate_pre(&component)
                .and_then(ProxyPre::new)
                .map_err(anyhow_err)
                .with_context(|| {
                    format!(
                        "component {id:?} imports something this host does not provide, or does not export wasi:http/incoming-handler@0.2"
                    )
                })?;
            let grants = Grants {
                component: id.clone(),
                key_value_stores: spec.key_value_stores.clone(),
                sqlite_databases: spec.sqlite_databases.clone(),
                variables: crate::variables::resolve_component(&app, &id, &env)?,
            };
            let environment = spec
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            components.insert(
                id,
                Loaded {
                    pre,
                    grants: Arc::new(grants),
                    environment,
                    stores: Arc::clone(&stores),
                },
            );
        }

        Ok(Host {
            app,
            components,
            engine,
            listen: opts.listen,
            slots: Semaphore::new(MAX_INSTANCES as usize),
        })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Binds, prints `Serving http://ADDR` (the line launchers wait for) and serves until
    /// Ctrl-C.
    pub async fn serve(self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("binding {}", self.listen))?;
        let addr = listener.local_addr()?;
        let host = Arc::new(Host {
            listen: addr,
            ..self
        });

        let ticker = host.engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        });

        println!("Serving http://{addr}");
        println!("Available Routes:");
        for route in host.app.router.routes() {
            println!("  {}: http://{addr}{}", route.component, route.raw);
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();

        let shutdown = tokio::signal::ctrl_c();
        tokio::pin!(shutdown);
        loop {
            let (socket, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        eprintln!("accept failed: {e}");
                        continue;
                    }
                },
                _ = &mut shutdown => return Ok(()),
            };
            // Small responses on a kept-alive connection must not wait for Nagle + delayed ACK.
            let _ = socket.set_nodelay(true);
            let host = Arc::clone(&host);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let host = Arc::clone(&host);
                    async move { Ok::<_, Infallible>(host.handle(req, client).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(socket), service)
                    .await
                {
                    eprintln!("connection from {client}: {e}");
                }
            });
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let resp = match self.dispatch(req, client).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("{method} {path}: {e:#}");
                text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
            }
        };
        if std::env::var_os("EDGEID_SPIN_HOST_LOG_REQUESTS").is_some() {
            eprintln!(
                "{method} {path} -> {} in {:?}",
                resp.status(),
                started.elapsed()
            );
        }
        resp
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> anyhow::Result<Response<HyperOutgoingBody>> {
        let Some(matched) = self.app.router.route(req.uri().path()) else {
            return Ok(text(StatusCode::NOT_FOUND, "Not Found\n"));
        };
        let Some(loaded) = self.components.get(matched.component) else {
            bail!(
                "route names component {:?} that was not loaded",
                matched.component
            );
        };

        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let host_header = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map_or_else(|| self.listen.to_string(), str::to_owned);
        let headers = [
            (
                "spin-full-url",
                format!("http://{host_header}{path_and_query}"),
            ),
            ("spin-path-info", matched.path_info.clone()),
            ("spin-matched-route", matched.raw_route.to_owned()),
            ("spin-base-path", "/".to_owned()),
            ("spin-raw-component-route", matched.raw_route.to_owned()),
            ("spin-component-route", matched.component_route.to_owned()),
            ("spin-client-addr", client.to_string()),
        ];
        for (name, value) in headers {
            parts
                .headers
                .insert(HeaderName::from_static(name), HeaderValue::try_from(value)?);
        }
        // Spin hands the guest an absolute URI whose authority is the listen address.
        parts.uri = format!("http://{}{path_and_query}", self.listen).parse()?;
        let req = Request::from_parts(parts, body);

        let _slot = self.slots.acquire().await?;
        run_guest(loaded, req).await
    }
}

/// Instantiates the component for one request and waits for the response head. The guest
/// keeps running in its own task while the body streams.
async fn run_guest(
    loaded: &Loaded,
    req: Request<Incoming>,
) -> anyhow::Result<Response<HyperOutgoingBody>> {
    let wasi = WasiCtx::builder()
        .inherit_stdout()
        .inherit_stderr()
        .envs(&loaded.environment)
        .build();
    let mut store = Store::new(
        loaded.pre.engine(),
        Ctx {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: DenyOutbound,
            grants: Arc::clone(&loaded.grants),
            stores: Arc::clone(&loaded.stores),
        },
    );
    store.epoch_deadline_async_yield_and_update(1);

    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)
        .map_err(anyhow_err)?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(sender)
        .map_err(anyhow_err)?;
    let pre = loaded.pre.clone();
    // The deadline wraps the guest itself: when it passes, the future holding the `Store` is
    // dropped, which stops the guest (it yields every epoch tick) and frees its instance.
    let task = tokio::spawn(tokio::time::timeout(REQUEST_TIMEOUT, async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    }));

    match receiver.await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(code)) => bail!("component answered with error {code:?}"),
        // The guest dropped the outparam without setting it: the task's result says why.
        Err(_) => match task.await {
            Ok(Ok(Ok(()))) => bail!("component returned without setting a response"),
            Ok(Ok(Err(trap))) => Err(anyhow_err(trap).context("component trapped")),
            Ok(Err(_elapsed)) => bail!("component did not answer within {REQUEST_TIMEOUT:?}"),
            Err(join) => Err(anyhow::Error::new(join).context("component task failed")),
        },
    }
}

fn engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 8)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 4)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(MAX_MEMORY);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config.epoch_interruption(true);
    // Recompiling ~1 MB of components costs a second or more per start; wasmtime's cache
    // (keyed by module bytes and engine settings, under the user cache dir) makes restarts
    // instant.
    match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(e) => eprintln!("warning: compilation cache disabled: {e}"),
    }
    Engine::new(&config).map_err(anyhow_err)
}

fn compile(engine: &Engine, source: &Path) -> anyhow::Result<Component> {
    let bytes = std::fs::read(source).with_context(|| {
        format!(
            "reading component {} (is it built? see spin.toml's [component.*.build])",
            source.display()
        )
    })?;
    Component::new(engine, bytes)
        .map_err(anyhow_err)
        .with_context(|| format!("compiling {}", source.display()))
}

/// The databases, opened once. Spin's file names: `sqlite_key_value.db` for KV and
/// `sqlite_db.db` for the `default` SQLite database, both in the state directory; any other
/// SQLite label a component declares must be defined by the runtime config (as with `spin up`,
/// an app declaring an undefined label does not start), which may also move `default`.
pub fn open_stores(app: &App, dir: &Path, runtime: &RuntimeConfig) -> anyhow::Result<Stores> {
    let mut sqlite = BTreeMap::new();
    for c in app.components.values() {
        for label in &c.key_value_stores {
            if label != "default" {
                bail!(
                    "component {:?}: key_value_stores label {label:?} is unknown (only \"default\" exists without a runtime config)",
                    c.id
                );
            }
        }
        for label in &c.sqlite_databases {
            if sqlite.contains_key(label) {
                continue;
            }
            let path = match runtime.sqlite_databases.get(label) {
                Some(path) => path.clone(),
                None if label == "default" => dir.join("sqlite_db.db"),
                None => bail!(
                    "component {:?}: sqlite_databases label {label:?} is not defined: add [sqlite_database.{label}] to the runtime config (--runtime-config-file)",
                    c.id
                ),
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            sqlite.insert(label.clone(), Db::open(&path)?);
        }
    }
    Ok(Stores {
        key_value: open_key_value(&dir.join("sqlite_key_value.db"))?,
        sqlite,
    })
}

/// `--sqlite @file.sql` runs a file, anything else is SQL text, as with `spin up --sqlite`.
fn run_sqlite_arg(db: &Db, arg: &str, manifest_dir: Option<&Path>) -> anyhow::Result<()> {
    let sql = match arg.strip_prefix('@') {
        Some(file) => {
            let path = Path::new(file);
            let path = if path.is_relative() && !path.exists() {
                manifest_dir.map_or_else(|| path.to_owned(), |d| d.join(path))
            } else {
                path.to_owned()
            };
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
        None => arg.to_owned(),
    };
    db.execute_script(&sql)
        .with_context(|| format!("--sqlite {arg} on {}", db.path().display()))
}

fn text(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `wasmtime::Error` is its own type in wasmtime 48 (convertible, with its chain, into anyhow).
fn anyhow_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from(e)
}
