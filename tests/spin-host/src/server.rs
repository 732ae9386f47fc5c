//! Compiling the components, and serving HTTP the way Spin's HTTP trigger does: route by the
//! manifest, add the `spin-*` request headers, and call the component's handler — a WASIp2
//! component (`wasi:http/incoming-handler@0.2`) in a fresh instance for each request, a WASIp3
//! one (`wasi:http/handler@0.3.0`, spin-sdk 7) in reused instances, with Spin 4.1's defaults:
//! up to 128 requests per instance, 16 at once, an idle instance dropped after 1 s
//! (spinframework/spin `crates/trigger-http/src/{lib,server}.rs`; the same
//! `wasmtime_wasi_http::handler::ProxyHandler` does the scheduling).
//!
//! A component that traps, never answers or runs too long costs its own request a 500; it
//! never takes the host down.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
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
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreContextMut,
};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView as _};

use crate::host::{Ctx, DenyOutbound, Grants, SpinImports, Stores};
use crate::host3::{Spin3, SpinImportsP3};
use crate::manifest::App;
use crate::runtime_config::RuntimeConfig;
use crate::store::{Db, open_key_value};

/// Requests served at once; requests beyond it wait for a slot.
const MAX_INSTANCES: u32 = 128;
/// Instances the pooling allocator holds: every in-flight WASIp2 request has one, and reused
/// WASIp3 instances stay alive while idle (up to the idle timeout), so twice the requests.
const POOL_INSTANCES: u32 = 2 * MAX_INSTANCES;
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
    /// How WASIp3 instances are reused (Spin's `--max-instance-reuse-count` and friends).
    pub reuse: Reuse,
}

/// Instance reuse for WASIp3 components, as Spin's HTTP trigger configures it. WASIp2
/// components ignore it (a fresh instance per request, as under Spin).
#[derive(Debug, Clone, Copy)]
pub struct Reuse {
    /// Requests one instance serves before it is retired (Spin's default: 128).
    pub max_instance_reuse_count: usize,
    /// Requests one instance serves at once (Spin's default: 16).
    pub max_instance_concurrent_reuse_count: usize,
    /// How long an idle instance is kept for the next request (Spin's default: 1 s).
    pub idle_instance_timeout: Duration,
}

impl Default for Reuse {
    fn default() -> Self {
        Reuse {
            max_instance_reuse_count: 128,
            max_instance_concurrent_reuse_count: 16,
            idle_instance_timeout: Duration::from_secs(1),
        }
    }
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
    handler: Handler,
    env: Arc<GuestEnv>,
}

/// How a component is called: its `wasi:http` world decides, as in Spin's
/// `HandlerType::from_instance_pre`.
enum Handler {
    /// `wasi:http/incoming-handler@0.2`: a fresh instance per request.
    P2(ProxyPre<Ctx>),
    /// `wasi:http/handler@0.3.0`: reused instances.
    P3(ProxyHandler<P3Instances>),
}

/// What every instance of one component starts with.
struct GuestEnv {
    grants: Arc<Grants>,
    environment: Vec<(String, String)>,
    stores: Arc<Stores>,
}

impl GuestEnv {
    /// A store for one instance: its own WASI context and resource table, the component's
    /// grants, the shared databases. Guests yield to tokio every epoch tick.
    fn store(&self, engine: &Engine) -> Store<Ctx> {
        let wasi = WasiCtx::builder()
            .inherit_stdout()
            .inherit_stderr()
            .envs(&self.environment)
            .build();
        let mut store = Store::new(
            engine,
            Ctx {
                wasi,
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: DenyOutbound,
                grants: Arc::clone(&self.grants),
                stores: Arc::clone(&self.stores),
            },
        );
        store.epoch_deadline_async_yield_and_update(1);
        store
    }
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
        // A spin-sdk 7 component imports WASI 0.3 and the Spin 3.x interfaces, and still
        // WASI 0.2 from Rust's std on wasm32-wasip2 (so both are linked, as Spin links them).
        wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(anyhow_err)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(anyhow_err)?;
        SpinImportsP3::add_to_linker::<_, Spin3>(&mut linker, |c| c).map_err(anyhow_err)?;

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
                .map_err(anyhow_err)
                .with_context(|| {
                    format!("component {id:?} imports something this host does not provide")
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
            let env = Arc::new(GuestEnv {
                grants: Arc::new(grants),
                environment,
                stores: Arc::clone(&stores),
            });
            let handler = match ServicePre::new(pre.clone()) {
                Ok(pre) => Handler::P3(ProxyHandler::new(P3Instances {
                    pre,
                    env: Arc::clone(&env),
                    reuse: opts.reuse,
                    component: id.clone(),
                    next_instance: AtomicU64::new(0),
                })),
                Err(_) => Handler::P2(ProxyPre::new(pre).map_err(anyhow_err).with_context(|| {
                    format!(
                        "component {id:?} exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3.0"
                    )
                })?),
            };
            components.insert(id, Loaded { handler, env });
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
        match &loaded.handler {
            Handler::P2(pre) => run_guest(pre, &loaded.env, req).await,
            Handler::P3(handler) => {
                let req = req.map(|body| body.map_err(Into::into).boxed_unsync());
                handler
                    .handle((), req)
                    .await
                    .map_err(|e| anyhow_err(e).context("component failed"))
            }
        }
    }
}

/// The reused instances of one WASIp3 component ([`ProxyHandler`] schedules requests onto
/// them).
struct P3Instances {
    pre: ServicePre<Ctx>,
    env: Arc<GuestEnv>,
    reuse: Reuse,
    component: String,
    next_instance: AtomicU64,
}

impl HandlerState for P3Instances {
    type StoreData = Ctx;
    type WorkerExpiration = P3Expiration;
    type WorkerState = P3Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Ctx, P3Expiration, P3Worker>> {
        let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
        if std::env::var_os("EDGEID_SPIN_HOST_LOG_REQUESTS").is_some() {
            eprintln!("{}: new instance #{id}", self.component);
        }
        let mut store = self.env.store(self.pre.engine());
        let service = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: |ctx: &mut Ctx| ctx.http(),
            expiration: P3Expiration {
                idle_timeout: self.reuse.idle_instance_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
            state: P3Worker {
                max_reuse: self.reuse.max_instance_reuse_count.max(1),
                max_concurrent: self.reuse.max_instance_concurrent_reuse_count.max(1),
            },
        })
    }
}

/// When one instance is retired: after `max_instance_reuse_count` requests, and never serving
/// more than `max_instance_concurrent_reuse_count` at once (Spin's `HttpWorkerState`).
struct P3Worker {
    max_reuse: usize,
    max_concurrent: usize,
}

impl WorkerState for P3Worker {
    type StoreData = Ctx;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    /// A request that has not answered within [`REQUEST_TIMEOUT`] expires (a 500), and the
    /// instance takes no new ones.
    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Ctx>,
        _data: (),
        _task: wasmtime::component::GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        Box::pin(tokio::time::sleep(REQUEST_TIMEOUT))
    }

    fn drop(&self, store: Store<Ctx>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            eprintln!("instance retired after an error: {e:?}");
        }
        drop(store);
    }
}

/// Retires an idle instance after the idle timeout, and a busy one whose newest request has
/// run for [`REQUEST_TIMEOUT`] (the second line of defence `ProxyHandler` asks for, polled
/// outside the guest's event loop). Spin's `HttpWorkerExpiration`.
struct P3Expiration {
    idle_timeout: Duration,
    /// Boxed so the expiration is `Unpin` (no pin projection needed).
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for P3Expiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let me = self.get_mut();
        let timeout = match status {
            WorkerStatus::Idle => me.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => REQUEST_TIMEOUT,
        };
        let Some(deadline) = start.checked_add(timeout) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        me.sleep.as_mut().poll(cx)
    }
}

/// Instantiates the component for one request and waits for the response head. The guest
/// keeps running in its own task while the body streams.
async fn run_guest(
    pre: &ProxyPre<Ctx>,
    env: &GuestEnv,
    req: Request<Incoming>,
) -> anyhow::Result<Response<HyperOutgoingBody>> {
    let mut store = env.store(pre.engine());

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
    let pre = pre.clone();
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
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
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
