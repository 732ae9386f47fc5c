//! The wasm signing micro-benchmark's runner (`cargo xtask bench sign` builds and starts it).
//!
//! Runs WASI command components (`tests/signbench`: one signer candidate each) in a FRESH
//! instance per iteration, as Spin runs a WASIp2 component for every request: a new `Store`,
//! instantiation from a pre-instantiated component, the `wasi:cli/run` call, and the drop that
//! hands the slot back to the pool. Same wasmtime, same engine settings as the test host
//! (pooling allocator, epoch interruption, async calls), so this binary reuses the host's build.
//!
//! Usage: `signbench [--iterations N] LABEL=PATH.wasm ...`. A label ending in `@instantiate`
//! only instantiates (the floor: no call). Prints one tab-separated line per label:
//! `label, iterations, median CPU µs, p10 CPU µs, p90 CPU µs, median wall µs`. CPU time is
//! this thread's (the runner is single-threaded), so other work on a shared machine inflates
//! it far less than the wall clock.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Iterations run in turn per candidate before the next candidate's turn, so that a noisy
/// second on a shared machine lands on every candidate alike rather than on one.
const CHUNK: usize = 25;
const WARM_UP: usize = 5;

struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct Candidate {
    label: String,
    pre: CommandPre<Ctx>,
    call: bool,
    /// (thread CPU time, wall time) per iteration.
    samples: Vec<(Duration, Duration)>,
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The test host's engine (`server.rs`): pooling allocator sized alike, epoch interruption,
/// wasmtime's compilation cache.
fn engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(128)
        .total_core_instances(128 * 8)
        .total_memories(128 * 2)
        .total_tables(128 * 4)
        .total_stacks(128)
        .max_memory_size(256 << 20);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config.epoch_interruption(true);
    if let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
        config.cache(Some(cache));
    }
    Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))
}

async fn iteration(engine: &Engine, c: &Candidate) -> anyhow::Result<(Duration, Duration)> {
    let (cpu, started) = (thread_cpu(), Instant::now());
    let mut store = Store::new(
        engine,
        Ctx {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_epoch_deadline(u64::MAX / 2);
    let command = c
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if c.call {
        let result = command
            .wasi_cli_run()
            .call_run(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if result.is_err() {
            bail!("{}: the candidate failed (exit status non-zero)", c.label);
        }
    }
    drop(store);
    Ok((thread_cpu().saturating_sub(cpu), started.elapsed()))
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    let i = (sorted.len().saturating_sub(1) * p) / 100;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut iterations = 300usize;
    let mut specs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--iterations" {
            iterations = args
                .next()
                .context("--iterations needs a number")?
                .parse()
                .context("--iterations")?;
        } else {
            specs.push(a);
        }
    }
    if specs.is_empty() || iterations == 0 {
        bail!("usage: signbench [--iterations N] LABEL=PATH.wasm ...");
    }
    let engine = engine()?;
    let mut linker = Linker::<Ctx>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut candidates = Vec::new();
    for spec in specs {
        let (label, path) = spec.split_once('=').context("expected LABEL=PATH")?;
        let component = Component::from_file(&engine, path)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("compiling {path}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(CommandPre::new)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("linking {path}"))?;
        candidates.push(Candidate {
            call: !label.ends_with("@instantiate"),
            label: label.trim_end_matches("@instantiate").to_owned(),
            pre,
            samples: Vec::with_capacity(iterations),
        });
    }
    for c in &candidates {
        for _ in 0..WARM_UP {
            iteration(&engine, c).await?;
        }
    }
    while candidates.iter().any(|c| c.samples.len() < iterations) {
        for i in 0..candidates.len() {
            for _ in 0..CHUNK {
                if candidates[i].samples.len() >= iterations {
                    break;
                }
                let d = iteration(&engine, &candidates[i]).await?;
                candidates[i].samples.push(d);
            }
        }
    }
    for c in &candidates {
        let mut cpu: Vec<Duration> = c.samples.iter().map(|s| s.0).collect();
        let mut wall: Vec<Duration> = c.samples.iter().map(|s| s.1).collect();
        cpu.sort();
        wall.sort();
        println!(
            "{}\t{}\t{:.1}\t{:.1}\t{:.1}\t{:.1}",
            c.label,
            cpu.len(),
            percentile(&cpu, 50),
            percentile(&cpu, 10),
            percentile(&cpu, 90),
            percentile(&wall, 50)
        );
    }
    Ok(())
}
