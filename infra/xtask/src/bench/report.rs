//! The report: throughput and CPU per request per host and endpoint against the peer (median
//! and spread over the rounds), the CPU of a complete sign-in, issue 12's targets with met /
//! not met, the wasm sizes, and the conditions the figures were measured under.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::bail;

use super::load::Load;
use super::signin::SignIn;
use super::{
    BenchArgs, Endpoint, Kind, Measurement, TOKEN_BODY, VariantResult, WARM_UP_SECONDS, bench_dir,
};
use crate::host;

const MIB: u64 = 1024 * 1024;

pub(super) struct Size {
    function: String,
    /// `spin`, `spin (WASIp3)` or `cloudflare`.
    build: &'static str,
    file: PathBuf,
    raw: u64,
    gzipped: u64,
    /// Written since `since` (this run's builds), else left from an earlier build.
    fresh: bool,
}

/// Each function's Spin component (both builds) and Cloudflare Worker wasm, wherever they were
/// built; `fresh` when the file was written after `since`.
pub(super) fn sizes(since: std::time::SystemTime) -> Vec<Size> {
    let root = host::repo_root();
    let mut out = Vec::new();
    for function in function_names(&root) {
        let file_name = format!("edgeid_{function}.wasm");
        let spin = root.join("target/wasm32-wasip2/release").join(&file_name);
        // Where `cargo xtask build --host spin --wasip3` puts the WASIp3 build.
        let spin3 = root.join("target/spin-wasip3").join(&file_name);
        let fdir = root.join("functions").join(&function);
        let cloudflare = [fdir.join("build"), fdir.join("build").join("worker")]
            .into_iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "wasm"));
        for (build, file) in [
            ("spin", Some(spin)),
            ("spin (WASIp3)", Some(spin3)),
            ("cloudflare", cloudflare),
        ] {
            let Some(file) = file.filter(|f| f.is_file()) else {
                continue;
            };
            if let (Ok(meta), Ok(gzipped)) = (std::fs::metadata(&file), gzipped_len(&file)) {
                let fresh = meta.modified().is_ok_and(|m| m >= since);
                out.push(Size {
                    function: function.clone(),
                    build,
                    raw: meta.len(),
                    gzipped,
                    file,
                    fresh,
                });
            }
        }
    }
    out
}

fn function_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("functions"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `gzip -9 -c FILE | wc -c`.
/// Issue 12's size targets per function, gzipped: discovery links no argon2, no pages and no
/// mail; token and userinfo no login pages; nothing is above 450 KiB (and all under 1 MiB).
pub(super) fn size_target(function: &str) -> u64 {
    match function {
        "discovery" => 150 * 1024,
        "token" | "userinfo" => 300 * 1024,
        _ => 450 * 1024,
    }
    .min(MIB)
}

pub(super) fn gzipped_len(file: &Path) -> anyhow::Result<u64> {
    let out = Command::new("gzip")
        .arg("-9")
        .arg("-c")
        .arg(file)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("gzip {} failed", file.display());
    }
    Ok(out.stdout.len() as u64)
}
pub(super) struct Report<'a> {
    pub(super) args: &'a BenchArgs,
    pub(super) results: &'a [VariantResult],
    pub(super) sizes: &'a [Size],
    pub(super) failures: &'a [(String, String)],
    pub(super) load_avg: (Option<String>, Option<String>),
    pub(super) elapsed: Duration,
}

/// The median and the spread (min–max) of one figure over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spread {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) n: usize,
}

impl Spread {
    /// `None` when no round gave the figure. The median of an even count is the mean of the
    /// middle two.
    pub(super) fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// `median (min–max)` with `f` formatting each number; the spread only with two or more.
    fn show(&self, f: impl Fn(f64) -> String) -> String {
        if self.n < 2 {
            f(self.median)
        } else {
            format!("{} ({}–{})", f(self.median), f(self.min), f(self.max))
        }
    }
}

fn show(s: Option<Spread>, f: impl Fn(f64) -> String) -> String {
    s.map_or_else(|| "-".into(), |s| s.show(f))
}

fn rps(x: f64) -> String {
    format!("{x:.0}")
}

fn times(x: f64) -> String {
    format!("{x:.2}×")
}

/// Microseconds as `123 µs`, or `12.3 ms` from 10 ms on.
fn micros(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1} ms", x / 1000.0)
    } else {
        format!("{x:.0} µs")
    }
}

fn cpu_us(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e6)
}

/// The figures of one variant, per round.
struct Figures<'a> {
    r: &'a VariantResult,
}

impl<'a> Figures<'a> {
    fn load(m: &Measurement, e: Endpoint) -> Option<&Load> {
        m.loads.iter().find(|(x, _)| *x == e).map(|(_, l)| l)
    }

    fn rps(&self, e: Endpoint, peer: bool) -> Option<Spread> {
        Spread::of(
            self.r
                .pairs
                .iter()
                .filter_map(|p| Self::load(if peer { &p.peer } else { &p.ours }, e).map(|l| l.rps)),
        )
    }

    fn cpu(&self, e: Endpoint, peer: bool) -> Option<Spread> {
        Spread::of(
            self.r
                .pairs
                .iter()
                .filter_map(|p| cpu_us(Self::load(if peer { &p.peer } else { &p.ours }, e)?.cpu)),
        )
    }

    /// ours/peer req/s, each round against the peer of the same round.
    fn ratio(&self, e: Endpoint) -> Option<Spread> {
        Spread::of(self.r.pairs.iter().filter_map(|p| {
            let (o, q) = (Self::load(&p.ours, e)?, Self::load(&p.peer, e)?);
            (q.rps > 0.0).then(|| o.rps / q.rps)
        }))
    }

    /// ours / the empty JS Worker, same round.
    fn empty_ratio(&self, e: Endpoint) -> Option<Spread> {
        Spread::of(self.r.pairs.iter().filter_map(|p| {
            let (o, w) = (Self::load(&p.ours, e)?, p.ours.empty_worker.as_ref()?);
            (w.rps > 0.0).then(|| o.rps / w.rps)
        }))
    }

    fn empty(&self, f: impl Fn(&Load) -> Option<f64>) -> Option<Spread> {
        Spread::of(
            self.r
                .pairs
                .iter()
                .filter_map(|p| p.ours.empty_worker.as_ref().and_then(&f)),
        )
    }

    fn bad(&self) -> (u64, u64) {
        self.r
            .pairs
            .iter()
            .flat_map(|p| p.ours.loads.iter().chain(&p.peer.loads))
            .fold((0, 0), |(b, t), (_, l)| (b + l.bad, t + l.ok + l.bad))
    }

    fn signins(&self, peer: bool) -> impl Iterator<Item = &'a SignIn> + 'a {
        let r: &'a VariantResult = self.r;
        r.pairs.iter().filter_map(move |p| {
            (if peer { &p.peer } else { &p.ours })
                .signin
                .as_ref()?
                .as_ref()
                .ok()
        })
    }

    fn signin(&self, peer: bool, f: impl Fn(&SignIn) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.signins(peer).filter_map(f))
    }

    /// CPU per complete sign-in minus one argon2id hash (the peer hashes nothing).
    fn without_argon2(&self, peer: bool) -> Option<Spread> {
        self.signin(peer, |s| s.without_argon2_us(!peer))
    }

    /// The sign-in failures of this variant (`peer: false`) or of its peers.
    fn signin_errors(&self, peer: bool) -> Vec<String> {
        self.r
            .pairs
            .iter()
            .map(|p| if peer { &p.peer } else { &p.ours })
            .filter_map(|m| match m.signin.as_ref()? {
                Err(e) => Some(e.clone()),
                Ok(s) if s.failed > 0 => Some(format!(
                    "{} failed requests, first: {}",
                    s.failed,
                    s.first_error.as_deref().unwrap_or("?")
                )),
                Ok(_) => None,
            })
            .collect()
    }
}

/// One line of the targets table.
struct Check {
    target: String,
    figure: String,
    met: Option<bool>,
}

impl Report<'_> {
    pub(super) fn render(&self) -> String {
        let mut s = String::new();
        let rounds = self.args.rounds;
        let _ = writeln!(s, "## Benchmark (`cargo xtask bench`)\n");
        let _ = writeln!(
            s,
            "Median of {rounds} round(s) per (peer, host) pair, spread (min–max) in brackets; \
             every ratio is against the peer measured in the same round.\n"
        );

        // Throughput and CPU per request.
        let mut rows = vec![row([
            "host",
            "endpoint",
            "req/s",
            "server CPU/req",
            "peer req/s",
            "peer CPU/req",
            "ours/peer (req/s)",
            "note",
        ])];
        for r in self.results {
            let f = Figures { r };
            for e in Endpoint::ALL {
                let mut note = String::new();
                if let Some(x) = f.empty_ratio(e) {
                    push_note(&mut note, &format!("{} the empty JS Worker", x.show(times)));
                }
                rows.push(row([
                    r.variant.label,
                    e.label(),
                    &show(f.rps(e, false), rps),
                    &show(f.cpu(e, false), micros),
                    &show(f.rps(e, true), rps),
                    &show(f.cpu(e, true), micros),
                    &show(f.ratio(e), times),
                    &note,
                ]));
            }
            // Phase B of the sign-ins: the token endpoint with an RS256 ID token.
            let token_rps = |peer| f.signin(peer, |s| Some(s.token.rps()));
            let token_cpu = |peer| f.signin(peer, |s| cpu_us(s.token.cpu));
            let ratio = Spread::of(r.pairs.iter().filter_map(|p| {
                let ours = p.ours.signin.as_ref()?.as_ref().ok()?.token.rps();
                let peer = p.peer.signin.as_ref()?.as_ref().ok()?.token.rps();
                (peer > 0.0).then(|| ours / peer)
            }));
            if token_cpu(false).is_some() {
                rows.push(row([
                    r.variant.label,
                    "token (authorization_code, RS256 ID token)",
                    &show(token_rps(false), rps),
                    &show(token_cpu(false), micros),
                    &show(token_rps(true), rps),
                    &show(token_cpu(true), micros),
                    &show(ratio, times),
                    &format!(
                        "{} client threads, the codes of the sign-in phase",
                        self.args.signin_workers
                    ),
                ]));
            }
            if f.empty(|l| Some(l.rps)).is_some() {
                rows.push(row([
                    r.variant.label,
                    "empty JS Worker (baseline)",
                    &show(f.empty(|l| Some(l.rps)), rps),
                    &show(f.empty(|l| cpu_us(l.cpu)), micros),
                    "",
                    "",
                    "",
                    "",
                ]));
            }
            let (bad, total) = f.bad();
            if bad > 0 {
                rows.push(row([
                    r.variant.label,
                    "(unexpected responses)",
                    "",
                    "",
                    "",
                    "",
                    "",
                    &format!(
                        "{bad} of {total} responses (ours and the peer's) unexpected or failed"
                    ),
                ]));
            }
        }
        for (host, err) in self.failures {
            // The whole error went to stderr; the table keeps its gist.
            rows.push(row([host, "(failed)", "", "", "", "", "", &gist(err)]));
        }
        s.push_str(&table(&rows));

        // Sign-ins.
        if self.args.signin_workers > 0 {
            let _ = writeln!(
                s,
                "\n### Complete sign-in (server CPU)\n\n\
                 authorize → login page → login POST → code → token (PKCE, RS256 ID token) → \
                 userinfo, {} client threads. A: every request up to the code, per sign-in \
                 (edgeid verifies the argon2id password here); B: the code redemption; C: one \
                 userinfo call. Complete = A + B + C. \"sign-ins\" counts all rounds: the CPU \
                 figures are as fine as /proc's 10 ms clock tick divided by the sign-ins of a \
                 round.\n",
                self.args.signin_workers
            );
            let mut rows = vec![row([
                "provider",
                "sign-ins",
                "sign-ins/s (A)",
                "A: authorize + login",
                "B: token",
                "C: userinfo",
                "complete sign-in",
                "argon2id hash",
                "apart from argon2",
                "peer, same rounds",
                "note",
            ])];
            let mut peer_all: Vec<&SignIn> = Vec::new();
            for r in self.results {
                let f = Figures { r };
                peer_all.extend(f.signins(true));
                let mut note = String::new();
                if let Some(e) = f.signin_errors(false).first() {
                    push_note(&mut note, &gist(e));
                }
                if let Some(e) = f.signin_errors(true).first() {
                    push_note(&mut note, &format!("peer: {}", gist(e)));
                }
                rows.push(row([
                    r.variant.label,
                    &f.signins(false)
                        .map(|s| s.login.count)
                        .sum::<u64>()
                        .to_string(),
                    &show(f.signin(false, |s| Some(s.login.rps())), rps),
                    &show(f.signin(false, |s| cpu_us(s.login.cpu)), micros),
                    &show(f.signin(false, |s| cpu_us(s.token.cpu)), micros),
                    &show(f.signin(false, |s| cpu_us(s.userinfo.cpu)), micros),
                    &show(f.signin(false, |s| cpu_us(s.complete())), micros),
                    &show(f.signin(false, |s| cpu_us(s.argon2)), micros),
                    &show(f.without_argon2(false), micros),
                    &show(f.without_argon2(true), micros),
                    &note,
                ]));
            }
            if !peer_all.is_empty() {
                let all = |g: &dyn Fn(&SignIn) -> Option<f64>| {
                    Spread::of(peer_all.iter().filter_map(|s| g(s)))
                };
                rows.push(row([
                    "oidc-provider (peer), all rounds",
                    &peer_all
                        .iter()
                        .map(|s| s.login.count)
                        .sum::<u64>()
                        .to_string(),
                    &show(all(&|s| Some(s.login.rps())), rps),
                    &show(all(&|s| cpu_us(s.login.cpu)), micros),
                    &show(all(&|s| cpu_us(s.token.cpu)), micros),
                    &show(all(&|s| cpu_us(s.userinfo.cpu)), micros),
                    &show(all(&|s| cpu_us(s.complete())), micros),
                    "none",
                    &show(all(&|s| cpu_us(s.complete())), micros),
                    "",
                    "development login: any name, no password check",
                ]));
            }
            s.push_str(&table(&rows));
        }

        // Issue 12's targets.
        let _ = writeln!(s, "\n### Targets (issue 12)\n");
        let mut rows = vec![row(["target", "figure (median, min–max)", "met"])];
        for c in self.checks() {
            rows.push(row([
                &c.target,
                &c.figure,
                match c.met {
                    Some(true) => "met",
                    Some(false) => "not met",
                    None => "not measured",
                },
            ]));
        }
        s.push_str(&table(&rows));

        let _ = writeln!(s, "\n### wasm sizes\n");
        let mut size_rows = vec![row([
            "function",
            "host",
            "raw",
            "gzip -9",
            "target (gzipped)",
            "met",
            "file",
            "note",
        ])];
        for z in self.sizes {
            let rel = z.file.strip_prefix(host::repo_root()).unwrap_or(&z.file);
            size_rows.push(row([
                &z.function,
                z.build,
                &kib(z.raw),
                &kib(z.gzipped),
                &format!("≤ {}", kib(size_target(&z.function))),
                if z.gzipped <= size_target(&z.function) {
                    "yes"
                } else {
                    "NO"
                },
                &format!("`{}`", rel.display()),
                if z.fresh {
                    ""
                } else {
                    "not rebuilt by this run"
                },
            ]));
        }
        if self.sizes.is_empty() {
            size_rows.push(row(["(no wasm built)", "", "", "", "", "", "", ""]));
        }
        s.push_str(&table(&size_rows));

        // Every round's own figures, for whoever doubts a median.
        let _ = writeln!(s, "\n### Each round\n");
        let mut round_rows = vec![row([
            "pair",
            "round",
            "measured",
            "client_credentials req/s",
            "CPU/req",
            "discovery req/s",
            "JWKS req/s",
            "sign-ins",
            "complete sign-in CPU",
            "argon2id",
        ])];
        for r in self.results {
            for pair in &r.pairs {
                let order = if pair.peer_first {
                    [(true, true), (false, false)]
                } else {
                    [(false, true), (true, false)]
                };
                for (peer, first) in order {
                    let m = if peer { &pair.peer } else { &pair.ours };
                    let load = |e| Figures::load(m, e);
                    let cc = load(Endpoint::ClientCredentials);
                    let signin = m.signin.as_ref().and_then(|s| s.as_ref().ok());
                    round_rows.push(row([
                        r.variant.label,
                        &pair.round.to_string(),
                        &format!(
                            "{} ({})",
                            if peer { "the peer" } else { "edgeid" },
                            if first { "first" } else { "second" }
                        ),
                        &cc.map_or_else(|| "-".into(), |l| rps(l.rps)),
                        &cc.and_then(|l| cpu_us(l.cpu))
                            .map_or_else(|| "-".into(), micros),
                        &load(Endpoint::Discovery).map_or_else(|| "-".into(), |l| rps(l.rps)),
                        &load(Endpoint::Jwks).map_or_else(|| "-".into(), |l| rps(l.rps)),
                        &signin.map_or_else(|| "-".into(), |s| s.login.count.to_string()),
                        &signin
                            .and_then(|s| cpu_us(s.complete()))
                            .map_or_else(|| "-".into(), micros),
                        &signin
                            .and_then(|s| cpu_us(s.argon2))
                            .map_or_else(|| "-".into(), micros),
                    ]));
                }
            }
        }
        s.push_str(&table(&round_rows));

        let a = self.args;
        let _ = writeln!(s, "\n### Conditions\n");
        let mut notes = vec![
            format!(
                "date: {}; commit: {}",
                run_text("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
                commit()
            ),
            format!(
                "load: `hey -z {}s -c {}{}` per measurement after {WARM_UP_SECONDS} s of warm-up, loopback, \
                 HTTP/1.1 {}; client_credentials is `POST` with `client_secret_basic` and `{TOKEN_BODY}`",
                a.seconds,
                a.concurrency,
                if a.disable_keepalive {
                    " -disable-keepalive"
                } else {
                    ""
                },
                if a.disable_keepalive {
                    "with a new connection per request"
                } else {
                    "keep-alive"
                },
            ),
            format!(
                "rounds: {} per (peer, host) pair, the peer first in odd rounds and second in even \
                 ones; every provider started once and kept up for all rounds",
                a.rounds
            ),
            format!(
                "machine: {} CPUs shared by the load tool, the server and anything else running; \
                 load average (1/5/15 min) {} at the start, {} at the end; bench took {} s",
                std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
                self.load_avg.0.as_deref().unwrap_or("?"),
                self.load_avg.1.as_deref().unwrap_or("?"),
                self.elapsed.as_secs(),
            ),
            format!(
                "peer: oidc-provider {} on Node {} (`infra/bench/peer.mjs`, NODE_ENV=production, one \
                 process), in-memory adapter; client_credentials tokens are RFC 9068 JWTs signed ES256 \
                 through a resource server (`resourceIndicators`, `accessTokenFormat: 'jwt'`); sign-ins \
                 through its development login (no password check), consent skipped for the bench \
                 client (`loadExistingGrant`), RS256 ID tokens, opaque access tokens for its userinfo; \
                 JWKS with one ES256 and one RS256 key (edgeid's also lists the next key of each)",
                peer_version(),
                run_text(
                    &bench_dir().join("node_modules/.bin/node").to_string_lossy(),
                    &["--version"]
                ),
            ),
        ];
        for r in self.results {
            notes.push(format!("{}: {}", r.variant.label, r.variant.conditions));
        }
        notes.extend([
            "server CPU/req: user + system CPU time of the server's process tree (from /proc, \
             clock-tick resolution) over the run, divided by the responses; steadier than req/s when \
             other work shares the machine"
                .to_owned(),
            "argon2id hash: in each round right before the sign-ins, on each host's own build, the server CPU of `POST /admin/users` with a \
             password minus the same without one (two alternating batches of each, sent by as many \
             threads as the sign-ins use, since argon2id's memory traffic costs more CPU when hashes \
             run side by side on a busy machine); this includes the password-policy check and the \
             credential row, so it slightly overstates the hash and the \"apart from argon2\" figure \
             is slightly flattering"
                .to_owned(),
            "targets are reported, not asserted; expect noise on a shared machine, and check with \
             `--disable-keepalive` too"
                .to_owned(),
        ]);
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
        s
    }

    /// Issue 12's targets against this run's figures.
    fn checks(&self) -> Vec<Check> {
        let cc = Endpoint::ClientCredentials;
        let of_kind = |k: Kind| -> Vec<Figures<'_>> {
            self.results
                .iter()
                .filter(|r| r.variant.kind == k)
                .map(|r| Figures { r })
                .collect()
        };
        let mut out = Vec::new();
        let mut at_most = |target: String,
                           figs: &[Figures<'_>],
                           limit: f64,
                           get: &dyn Fn(&Figures<'_>) -> Option<Spread>| {
            if figs.is_empty() {
                out.push(Check {
                    target,
                    figure: "not in this run".into(),
                    met: None,
                });
                return;
            }
            for f in figs {
                let v = get(f);
                out.push(Check {
                    target: format!("{} — {}", target, f.r.variant.label),
                    figure: show(v, micros),
                    met: v.map(|v| v.median <= limit),
                });
            }
        };
        at_most(
            "Spin test host, WASIp2: client_credentials ≤ 600 µs CPU/req".into(),
            &of_kind(Kind::SpinWasip2),
            600.0,
            &|f| f.cpu(cc, false),
        );
        at_most(
            "Spin test host, WASIp3: client_credentials ≤ 250 µs CPU/req".into(),
            &of_kind(Kind::SpinWasip3),
            250.0,
            &|f| f.cpu(cc, false),
        );
        at_most(
            "workerd: client_credentials ≤ 500 µs CPU/req".into(),
            &of_kind(Kind::Workerd),
            500.0,
            &|f| f.cpu(cc, false),
        );
        for k in [Kind::SpinWasip2, Kind::SpinWasip3, Kind::Workerd] {
            at_most(
                format!(
                    "{}: complete sign-in (RS256 ID token) apart from argon2 ≤ 8 ms CPU",
                    match k {
                        Kind::SpinWasip2 => "Spin, WASIp2",
                        Kind::SpinWasip3 => "Spin, WASIp3",
                        _ => "workerd",
                    }
                ),
                &of_kind(k),
                8000.0,
                &|f| f.without_argon2(false),
            );
        }
        let mut at_least = |target: &str,
                            figs: &[Figures<'_>],
                            limit: f64,
                            get: &dyn Fn(&Figures<'_>) -> Option<Spread>,
                            extra: &dyn Fn(&Figures<'_>) -> String| {
            if figs.is_empty() {
                out.push(Check {
                    target: target.into(),
                    figure: "not in this run".into(),
                    met: None,
                });
                return;
            }
            for f in figs {
                let v = get(f);
                out.push(Check {
                    target: format!("{} — {}", target, f.r.variant.label),
                    figure: format!("{}{}", show(v, times), extra(f)),
                    met: v.map(|v| v.median >= limit),
                });
            }
        };
        let cpu_note = |f: &Figures<'_>| format!("; CPU {}/req", show(f.cpu(cc, false), micros));
        at_least(
            "Spin test host, WASIp3: client_credentials ≥ 1× the peer's req/s",
            &of_kind(Kind::SpinWasip3),
            1.0,
            &|f| f.ratio(cc),
            &cpu_note,
        );
        at_least(
            "workerd: client_credentials ≥ 0.4× the empty JS Worker's req/s",
            &of_kind(Kind::Workerd),
            0.4,
            &|f| f.empty_ratio(cc),
            &cpu_note,
        );
        at_least(
            "native: client_credentials ≥ 5× the peer's req/s (median of the rounds)",
            &of_kind(Kind::Native),
            5.0,
            &|f| f.ratio(cc),
            &cpu_note,
        );
        for e in [Endpoint::Discovery, Endpoint::Jwks] {
            at_least(
                &format!(
                    "native: {} ≥ 10× the peer's req/s (earlier bench target)",
                    e.label()
                ),
                &of_kind(Kind::Native),
                10.0,
                &|f| f.ratio(e),
                &|_| String::new(),
            );
        }
        if !self.sizes.is_empty() {
            let within = self
                .sizes
                .iter()
                .filter(|z| z.gzipped <= size_target(&z.function))
                .count();
            out.push(Check {
                target: "sizes: discovery ≤ 150 KiB, token and userinfo ≤ 300 KiB, none above 450 KiB gzipped".into(),
                figure: format!("{within} of {} components within (table below)", self.sizes.len()),
                met: Some(within == self.sizes.len()),
            });
        }
        out
    }
}

/// The first line of an error, cut at 100 characters.
fn gist(err: &str) -> String {
    let first = err.lines().next().unwrap_or_default();
    match first.char_indices().nth(100) {
        Some((cut, _)) => format!("{}… (details above)", &first[..cut]),
        None => first.to_owned(),
    }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// A markdown table with padded columns, readable as plain text too.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
            .max(3)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    // Right-align a column whose every filled cell is a number (or `-`).
    let numeric = |i: usize| {
        let mut cells = rows
            .iter()
            .skip(1)
            .filter_map(|r| r.get(i))
            .filter(|c| !c.is_empty())
            .peekable();
        cells.peek().is_some()
            && cells.all(|c| c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-'))
    };
    let mut s = String::new();
    for (n, r) in rows.iter().enumerate() {
        s.push('|');
        for (i, w) in widths.iter().enumerate() {
            let c = r.get(i).map_or("", String::as_str);
            let pad = w.saturating_sub(c.chars().count());
            if numeric(i) && n > 0 {
                let _ = write!(s, " {}{c} |", " ".repeat(pad));
            } else {
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            }
        }
        s.push('\n');
        if n == 0 {
            s.push('|');
            for (i, w) in widths.iter().enumerate() {
                let dashes = "-".repeat(*w);
                if numeric(i) {
                    let _ = write!(s, " {}: |", &dashes[1..]);
                } else {
                    let _ = write!(s, " {dashes} |");
                }
            }
            s.push('\n');
        }
    }
    s
}

fn push_note(note: &mut String, more: &str) {
    if !note.is_empty() {
        note.push_str("; ");
    }
    note.push_str(more);
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

pub(super) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn commit() -> String {
    let root = host::repo_root();
    let head = run_text(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = Command::new("git")
        .args(["-C", &root.to_string_lossy(), "status", "--porcelain"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

/// The oidc-provider version installed in `infra/bench`.
fn peer_version() -> String {
    let path = bench_dir().join("node_modules/oidc-provider/package.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// A command's trimmed stdout, or `?`.
pub(super) fn run_text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

pub(super) fn us(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{} µs", d.as_micros()))
}

pub(super) fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue12_spread_is_median_and_min_max() {
        let s = Spread::of([5.0, 1.0, 3.0]).expect("three values");
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 5.0, 3));
        let s = Spread::of([4.0, 1.0, 2.0, 10.0]).expect("four values");
        assert_eq!(s.median, 3.0, "the mean of the middle two");
        assert_eq!(Spread::of([f64::NAN]), None, "no finite value: no figure");
        assert_eq!(s.show(times), "3.00× (1.00×–10.00×)");
        assert_eq!(Spread::of([2.0]).map(|s| s.show(rps)).as_deref(), Some("2"));
        assert_eq!(micros(12_345.0), "12.3 ms");
    }
}
