//! Experiment 1: an edge HIT against the origin's own Redis HIT and against
//! nginx serving a static file, under a real load generator, in one run.
//!
//! The article says a CDN answers a cached response "without touching the
//! origin". How much is that worth, on the same machine? Three targets on
//! loopback, each asked for the same user JSON (about 55 bytes):
//!
//! - **edge HIT**: nginx's `proxy_cache` (the lesson's [`EdgeConfig`])
//!   serving a warmed `/users/42`: the origin is not asked at all;
//! - **origin Redis HIT**: lesson 2's service answering `/users/42` from
//!   Redis: the best an application cache does (HTTP, a Redis round trip,
//!   no database);
//! - **nginx static**: the same nginx serving a file of the same size from
//!   `/static/`: the floor, nginx with no cache lookup at all.
//!
//! [`wrk`] drives each twice: one connection (latency) and 32
//! connections (throughput). Besides requests per second, it records the
//! **CPU time per request** of the serving process (the nginx worker, the
//! origin's thread), read from `/proc` before and after: on 2 cores the
//! throughput moves with whatever else runs, the CPU cost much less.
//!
//! # Placement
//!
//! `LAB_PIN_CLIENT` and `LAB_PIN_SERVERS` (see `lab::pin`) put wrk on the
//! client CPUs and nginx and lesson 2's origin on the server CPUs. The
//! origin runs on a thread of its own with a current-thread Tokio runtime,
//! pinned to the server CPUs, so it never shares a core with wrk: all of
//! its work (HTTP, Redis client, metrics) is on that one thread, which is
//! also what makes its CPU time readable. Unset, nothing is pinned, and the
//! results say so. The CPUs each process was allowed on are read from
//! `/proc` during the run and recorded, not assumed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use lab::Kind;
use lab::isolate::{PgSchema, RedisPrefix};
use lab::results::Results;
use serde::{Deserialize, Serialize};

use crate::edge::EdgeConfig;
use crate::origin::{self, OriginSettings};
use crate::policy::Lifetimes;
use pinned::PinnedServer;
use wrk::{Script, Shape, WrkSummary};

/// What this experiment shows, in plain words: the demo prints it under
/// the heading.
pub const SHOWS: &str = "what an answer from the edge's cache costs, next to the origin's own Redis cache and nginx serving a file.";

pub mod pinned;
pub mod wrk;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// About 2 s per measurement instead of 10.
    pub quick: bool,
}

impl LoadOptions {
    /// (warm-up, measurement) per target and shape.
    pub fn durations(&self) -> (Duration, Duration) {
        if self.quick {
            (Duration::from_secs(1), Duration::from_secs(2))
        } else {
            (Duration::from_secs(3), Duration::from_secs(10))
        }
    }
}

/// The user every target serves.
const USER_ID: i64 = 42;
/// Users seeded in the experiment's own schema.
const USERS: i64 = 100;
/// The static file's name under `/static/`.
const STATIC_FILE: &str = "user-42.json";

/// The three things measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    EdgeHit,
    OriginRedisHit,
    NginxStatic,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::EdgeHit, Target::OriginRedisHit, Target::NginxStatic];

    /// The name tables and charts show.
    pub fn label(self) -> &'static str {
        match self {
            Target::EdgeHit => "edge HIT (nginx proxy_cache)",
            Target::OriginRedisHit => "origin Redis HIT (lesson 2)",
            Target::NginxStatic => "nginx static file",
        }
    }
}

/// One wrk run and the server's CPU time over it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub shape: Shape,
    pub wrk: WrkSummary,
    /// The serving process's (or thread's) user+system CPU time over the
    /// run, per request served; `None` where `/proc` could not be read.
    pub cpu_us_per_request: Option<f64>,
}

impl Measurement {
    /// The share of one core the server was busy: under 100% at 32
    /// connections means something else (the load generator on its one
    /// core, or the Redis behind the origin) set the pace, not the server.
    pub fn server_busy(&self) -> Option<f64> {
        Some(self.cpu_us_per_request? * self.wrk.rps() / 1e6)
    }
}

/// One target's two measurements.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetResult {
    pub target: Target,
    /// The path asked for.
    pub path: String,
    /// Body bytes of one answer (the probe's).
    pub body_bytes: u64,
    pub latency: Measurement,
    pub throughput: Measurement,
}

/// Where everything ran.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Placement {
    /// `LAB_PIN_CLIENT`, parsed; `None`: unpinned.
    pub client_cpus: Option<Vec<usize>>,
    /// `LAB_PIN_SERVERS`, parsed; `None`: unpinned.
    pub server_cpus: Option<Vec<usize>>,
    /// `Cpus_allowed_list` of each, read from `/proc` during the run.
    pub wrk_allowed: String,
    pub nginx_worker_allowed: String,
    pub origin_thread_allowed: String,
    /// CPUs on the machine.
    pub cores: usize,
}

impl Placement {
    /// One line for the table's caption.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} cores; allowed CPUs seen in /proc: wrk {}, nginx worker {}, origin thread {})",
            self.pinned(),
            self.cores,
            self.wrk_allowed,
            self.nginx_worker_allowed,
            self.origin_thread_allowed
        )
    }

    /// Who was pinned where, in a few words (the terminal's caption).
    pub fn pinned(&self) -> String {
        match (&self.client_cpus, &self.server_cpus) {
            (Some(c), Some(s)) => format!("pinned: wrk on CPU {c:?}, servers on CPU {s:?}"),
            (Some(c), None) => format!("wrk pinned to CPU {c:?}, servers unpinned"),
            (None, Some(s)) => format!("wrk unpinned, servers pinned to CPU {s:?}"),
            (None, None) => "unpinned: wrk and the servers may share a core, run to run".into(),
        }
    }
}

/// Experiment 1's results: `target/lab-experiments/edge_load.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadResults {
    pub quick: bool,
    pub warmup_s: f64,
    pub measure_s: f64,
    pub placement: Placement,
    pub wrk_version: String,
    /// Requests for `/users/…` that reached the edge's origin over the whole
    /// run: 1 (the fill) means every measured edge request was a HIT.
    pub edge_origin_requests: u64,
    /// Database queries lesson 2's origin made: 1 (the warming miss) means
    /// every measured request was a Redis HIT.
    pub redis_origin_db_queries: u64,
    pub targets: Vec<TargetResult>,
}

impl Results for LoadResults {
    const FILE: &'static str = "edge_load.json";
}

impl LoadResults {
    pub fn get(&self, t: Target) -> Option<&TargetResult> {
        self.targets.iter().find(|r| r.target == t)
    }

    /// `a`'s throughput (32 connections) over `b`'s.
    pub fn throughput_ratio(&self, a: Target, b: Target) -> Option<f64> {
        let (a, b) = (self.get(a)?, self.get(b)?);
        ratio(a.throughput.wrk.rps(), b.throughput.wrk.rps())
    }

    /// `a`'s CPU time per request (32 connections) over `b`'s.
    pub fn cpu_ratio(&self, a: Target, b: Target) -> Option<f64> {
        let (a, b) = (self.get(a)?, self.get(b)?);
        ratio(
            a.throughput.cpu_us_per_request?,
            b.throughput.cpu_us_per_request?,
        )
    }

    /// `a`'s median latency (1 connection) over `b`'s.
    pub fn latency_ratio(&self, a: Target, b: Target) -> Option<f64> {
        let (a, b) = (self.get(a)?, self.get(b)?);
        ratio(a.latency.wrk.p50_us, b.latency.wrk.p50_us)
    }

    /// The table and the ratio lines the chapter quotes.
    pub fn table_md(&self) -> String {
        use std::fmt::Write;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "| target | body | 1 conn: p50 | 1 conn: p99 | 1 conn: CPU/req | 32 conns: req/s | 32 conns: p50 | 32 conns: p99 | 32 conns: CPU/req | errors |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for r in &self.targets {
            let (l, t) = (&r.latency, &r.throughput);
            let _ = writeln!(
                md,
                "| {} | {} B | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
                r.target.label(),
                r.body_bytes,
                us(l.wrk.p50_us),
                us(l.wrk.p99_us),
                cpu(l.cpu_us_per_request),
                t.wrk.rps(),
                us(t.wrk.p50_us),
                us(t.wrk.p99_us),
                cpu(t.cpu_us_per_request),
                l.wrk.errors() + t.wrk.errors(),
            );
        }
        let x = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.2}×"));
        let (e, o, s) = (Target::EdgeHit, Target::OriginRedisHit, Target::NginxStatic);
        let _ = writeln!(
            md,
            "\n- edge HIT / nginx static: throughput {}, CPU per request {}, median latency {}.",
            x(self.throughput_ratio(e, s)),
            x(self.cpu_ratio(e, s)),
            x(self.latency_ratio(e, s)),
        );
        let _ = writeln!(
            md,
            "- edge HIT / origin Redis HIT: throughput {}, CPU per request {}, median latency {}.",
            x(self.throughput_ratio(e, o)),
            x(self.cpu_ratio(e, o)),
            x(self.latency_ratio(e, o)),
        );
        let busy: Vec<String> = self
            .targets
            .iter()
            .map(|r| {
                let b = r.throughput.server_busy();
                format!(
                    "{} {}",
                    r.target.label(),
                    b.map_or("n/a".into(), |b| format!("{:.0}%", b * 100.0))
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "- Server busy at 32 connections (CPU time / wall time): {}. Under 100%, the server was not what set the pace.",
            busy.join(", ")
        );
        let _ = writeln!(
            md,
            "- Requests that reached the edge's origin: {} (the fill); database queries behind lesson 2: {} (the warming miss).",
            self.edge_origin_requests, self.redis_origin_db_queries
        );
        let _ = writeln!(
            md,
            "- wrk ({}), {:.0} s per measurement after {:.0} s of warm-up; {}.",
            self.wrk_version,
            self.measure_s,
            self.warmup_s,
            self.placement.describe()
        );
        md
    }
}

impl LoadResults {
    /// The terminal's version of [`LoadResults::table_md`]: plain text
    /// under 100 columns, the same figures (the report keeps the Markdown).
    pub fn table_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  {:<28}  {:>10} {:>8}  {:>9}",
            "", "1 conn:", "", "32 conns:"
        );
        let _ = writeln!(
            out,
            "  {:<28}  {:>10} {:>8}  {:>9} {:>8} {:>8}  {:>6}",
            "target", "p50", "p99", "req/s", "p99", "CPU/req", "errors"
        );
        for r in &self.targets {
            let (l, t) = (&r.latency, &r.throughput);
            let _ = writeln!(
                out,
                "  {:<28}  {:>10} {:>8}  {:>9.0} {:>8} {:>8}  {:>6}",
                r.target.label(),
                us(l.wrk.p50_us),
                us(l.wrk.p99_us),
                t.wrk.rps(),
                us(t.wrk.p99_us),
                cpu(t.cpu_us_per_request),
                l.wrk.errors() + t.wrk.errors(),
            );
        }
        let x = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.2}×"));
        let (e, o, s) = (Target::EdgeHit, Target::OriginRedisHit, Target::NginxStatic);
        for (name, other) in [("nginx static", s), ("origin Redis HIT", o)] {
            let _ = writeln!(
                out,
                "  edge HIT vs {name}: {} the throughput, {} the CPU per request",
                x(self.throughput_ratio(e, other)),
                x(self.cpu_ratio(e, other)),
            );
        }
        let _ = writeln!(
            out,
            "  requests to the edge's origin: {} (the fill); lesson 2's database queries: {} (the warming miss)",
            self.edge_origin_requests, self.redis_origin_db_queries
        );
        let _ = write!(
            out,
            "  wrk, {:.0} s per measurement after {:.0} s of warm-up\n  {}",
            self.measure_s,
            self.warmup_s,
            self.placement.pinned()
        );
        out
    }

    /// Experiment 1's conclusion in one sentence.
    pub fn finding(&self) -> String {
        let (e, o, s) = (Target::EdgeHit, Target::OriginRedisHit, Target::NginxStatic);
        let rps = |t| self.get(t).map_or(0.0, |r| r.throughput.wrk.rps());
        let x = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1}×"));
        format!(
            "an edge HIT served {} the origin's Redis HIT throughput ({:.0} vs {:.0} req/s at 32 connections) \
             and {} nginx static's, and the edge's origin saw {} in all (the fill)",
            x(self.throughput_ratio(e, o)),
            rps(e),
            rps(o),
            x(self.throughput_ratio(e, s)),
            super::fixture::counted(self.edge_origin_requests, "request")
        )
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

fn cpu(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1} µs"))
}

/// Runs the experiment: the servers, the probes, then the load.
pub async fn run(opts: &LoadOptions) -> anyhow::Result<LoadResults> {
    let (warmup, measure) = opts.durations();
    let wrk_bin = wrk::binary()?;
    let script = Script::write()?;
    let client_cpus = client_cpus()?;
    let server_cpus = lab::pin::server_cpus()?;

    let pg = lab::discover(Kind::Postgres).await?;
    let redis = lab::discover(Kind::Redis).await?;
    let schema = PgSchema::create(pg.url()).await?;
    lab::seed::ensure_users_pg(schema.pool(), USERS).await?;
    let prefix = RedisPrefix::new(redis.url());

    // Lesson 6's origin, behind the edge. Its edge lifetime outlasts the
    // run, so every measured request is a fresh HIT (not STALE/UPDATING).
    let settings = OriginSettings {
        lifetimes: Lifetimes {
            edge: Duration::from_secs(3600),
            ..Lifetimes::default()
        },
        ..OriginSettings::default()
    };
    let (router, handle) = origin::origin(schema.pool().clone(), settings)?;
    let edge_origin = lab::http::spawn_server(router, 0).await?;

    // Lesson 2's origin, on a pinned thread of its own.
    let redis_origin = lesson_2_origin(
        "lesson-2-origin",
        pg.url(),
        schema.name(),
        redis.url(),
        prefix.prefix(),
        server_cpus.clone(),
        None,
    )
    .await?;

    // nginx: the edge in front of lesson 6's origin, and /static/ beside it.
    let static_dir = StaticDir::create()?;
    let mut config = EdgeConfig::new(edge_origin.addr);
    config.static_root = Some(static_dir.path().to_path_buf());
    let nginx = config.spawn(None).await?;

    // Probes: fill the edge, warm Redis, write the static file, and check
    // each answers 200 from where it should.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let edge_path = format!("/users/{USER_ID}");
    let static_path = format!("/static/{STATIC_FILE}");
    let edge_url = format!("{}{edge_path}", nginx.base_url());
    let origin_url = format!("{}{edge_path}", redis_origin.base_url());
    let static_url = format!("{}{static_path}", nginx.base_url());
    probe(&http, &edge_url, None).await?; // the MISS that fills the edge
    let body = probe(&http, &edge_url, Some(("x-cache-status", "HIT"))).await?;
    probe(&http, &origin_url, None).await?; // the miss that fills Redis
    let origin_body = probe(&http, &origin_url, Some(("x-cache", "HIT"))).await?;
    // The same bytes as the edge's answer: the same size, so the static
    // file's cost differs only in how nginx finds it.
    static_dir.write(STATIC_FILE, &body)?;
    let static_body = probe(&http, &static_url, None).await?;
    // After the probes: nginx listens (the master's socket) a moment
    // before it has forked its worker.
    let worker = nginx_worker(nginx.pid().context("nginx is not running")?).await?;

    let targets = [
        (
            Target::EdgeHit,
            &edge_path,
            &edge_url,
            body.len(),
            Cpu::Process(worker),
        ),
        (
            Target::OriginRedisHit,
            &edge_path,
            &origin_url,
            origin_body.len(),
            Cpu::Thread(redis_origin.stat_path().to_path_buf()),
        ),
        (
            Target::NginxStatic,
            &static_path,
            &static_url,
            static_body.len(),
            Cpu::Process(worker),
        ),
    ];
    let mut wrk_allowed = String::from("?");

    // Warm up every target (connections, caches, CPU frequency), then
    // measure: all latencies first, then all throughputs, so the three
    // targets of one shape are measured minutes apart at most.
    for (_, _, url, _, _) in &targets {
        wrk::run(
            &wrk_bin,
            &script,
            url,
            Shape::THROUGHPUT,
            warmup,
            client_cpus.as_deref(),
        )
        .await?;
    }
    let mut measured: Vec<[Option<Measurement>; 2]> = vec![[None, None]; targets.len()];
    for (s, shape) in [Shape::LATENCY, Shape::THROUGHPUT].into_iter().enumerate() {
        for (i, (target, _, url, _, cpu)) in targets.iter().enumerate() {
            // DEBUG: the demo says once what it measures; this is per run.
            tracing::debug!(
                "measuring {} with {} connection(s)",
                target.label(),
                shape.connections
            );
            let (m, allowed) = measure_one(
                &wrk_bin,
                &script,
                url,
                shape,
                measure,
                client_cpus.as_deref(),
                cpu,
                target.label(),
            )
            .await?;
            wrk_allowed = allowed;
            measured[i][s] = Some(m);
        }
    }

    // After the load: still a HIT, and the origins were not asked again.
    probe(&http, &edge_url, Some(("x-cache-status", "HIT"))).await?;
    probe(&http, &origin_url, Some(("x-cache", "HIT"))).await?;
    let edge_origin_requests = handle.count(origin::USERS);
    let redis_origin_db_queries = redis_origin
        .extra()
        .counter(lesson_02_cache_aside::metrics::DB_QUERIES);

    let placement = Placement {
        client_cpus,
        server_cpus,
        wrk_allowed,
        nginx_worker_allowed: wrk::cpus_allowed(&format!("/proc/{worker}/status")),
        origin_thread_allowed: redis_origin.cpus_allowed(),
        cores: online_cpus(),
    };
    let results = LoadResults {
        quick: opts.quick,
        warmup_s: warmup.as_secs_f64(),
        measure_s: measure.as_secs_f64(),
        placement,
        wrk_version: wrk_version(&wrk_bin),
        edge_origin_requests,
        redis_origin_db_queries,
        targets: targets
            .iter()
            .zip(measured)
            .map(|((target, path, _, bytes, _), [latency, throughput])| {
                Ok(TargetResult {
                    target: *target,
                    path: path.to_string(),
                    body_bytes: *bytes as u64,
                    latency: latency.context("a latency run is missing")?,
                    throughput: throughput.context("a throughput run is missing")?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    drop(nginx);
    redis_origin.stop().await?;
    edge_origin.shutdown().await?;
    Ok(results)
}

/// One wrk run against `url` and the CPU time `cpu` spent over it, per
/// request; also the CPUs wrk was allowed on. Fails on any answer of 400
/// or more: the figures would not be of the thing measured.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn measure_one(
    wrk_bin: &Path,
    script: &Script,
    url: &str,
    shape: Shape,
    duration: Duration,
    client_cpus: Option<&[usize]>,
    cpu: &Cpu,
    label: &str,
) -> anyhow::Result<(Measurement, String)> {
    let before = cpu.read();
    let run = wrk::run(wrk_bin, script, url, shape, duration, client_cpus).await?;
    let after = cpu.read();
    if run.summary.status_errors > 0 || run.summary.requests == 0 {
        bail!(
            "{label} under {shape:?}: {} answers of 400 or more in {} requests; the figures would not be of a cache",
            run.summary.status_errors,
            run.summary.requests
        );
    }
    let cpu_us_per_request = match (before, after) {
        (Some(b), Some(a)) if a >= b => {
            Some((a - b) as f64 * 1e6 / clock_ticks() / run.summary.requests as f64)
        }
        _ => None,
    };
    let measurement = Measurement {
        shape,
        wrk: run.summary,
        cpu_us_per_request,
    };
    Ok((measurement, run.cpus_allowed))
}

/// `LAB_PIN_CLIENT`, parsed (`lab::pin` pins the calling thread with it;
/// here it is where wrk goes).
pub(crate) fn client_cpus() -> anyhow::Result<Option<Vec<usize>>> {
    match std::env::var(lab::pin::CLIENT_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(lab::pin::parse_cpus(&v).with_context(|| {
                format!("{}={v:?}", lab::pin::CLIENT_ENV)
            })?))
        }
        _ => Ok(None),
    }
}

/// GETs `url`, checks a 200 (and `header: value` when given), returns the body.
pub(crate) async fn probe(
    http: &reqwest::Client,
    url: &str,
    want: Option<(&str, &str)>,
) -> anyhow::Result<Vec<u8>> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        bail!("GET {url}: {status}, expected 200");
    }
    if let Some((name, value)) = want {
        let got = resp.headers().get(name).and_then(|v| v.to_str().ok());
        if got != Some(value) {
            bail!("GET {url}: {name} is {got:?}, expected {value:?}");
        }
    }
    Ok(resp.bytes().await?.to_vec())
}

/// Whose CPU time a target costs.
#[derive(Clone, Debug)]
pub(crate) enum Cpu {
    /// A process: the nginx worker.
    Process(u32),
    /// A thread's `/proc/self/task/TID/stat`: the origin's thread.
    Thread(PathBuf),
}

impl Cpu {
    /// utime + stime, in clock ticks.
    pub(crate) fn read(&self) -> Option<u64> {
        let path = match self {
            Cpu::Process(pid) => PathBuf::from(format!("/proc/{pid}/stat")),
            Cpu::Thread(p) => p.clone(),
        };
        let stat = parse_stat(&std::fs::read_to_string(path).ok()?)?;
        Some(stat.utime + stat.stime)
    }
}

/// The fields of `/proc/…/stat` the experiment reads.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
}

/// `pid (comm) state ppid … utime stime …`: `comm` may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
fn parse_stat(s: &str) -> Option<Stat> {
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state is field 3 of proc(5), so field n is f[n - 3].
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

/// The one worker process of the nginx whose master is `master`, waiting
/// up to a few seconds for it to appear.
pub(crate) async fn nginx_worker(master: u32) -> anyhow::Result<u32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match nginx_workers(master)?.as_slice() {
            [one] => return Ok(*one),
            other if std::time::Instant::now() > deadline => {
                bail!("expected one nginx worker under pid {master}, found {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The worker processes of the nginx whose master is `master`.
fn nginx_workers(master: u32) -> anyhow::Result<Vec<u32>> {
    let mut workers = Vec::new();
    for entry in std::fs::read_dir("/proc").context("Failed to list /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The master's children are the worker and, with a proxy_cache,
        // the cache manager and loader; the title says which is which.
        let title = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if parse_stat(&stat).is_some_and(|s| s.ppid == master)
            && String::from_utf8_lossy(&title).contains("worker process")
        {
            workers.push(pid);
        }
    }
    Ok(workers)
}

/// The machine's CPUs. Not `available_parallelism`: that counts the CPUs
/// this (possibly pinned) process may use.
pub(crate) fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| lab::pin::parse_cpus(s.trim()).ok())
        .map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |cpus| cpus.len(),
        )
}

/// Clock ticks per second (the unit of utime and stime): `getconf
/// CLK_TCK`, which is 100 on every Linux the workshop runs on.
pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t: &f64| t > 0.0)
        .unwrap_or(100.0)
}

/// `wrk --version`'s first line, e.g. `wrk debian/4.1.0-3+b2 [epoll]`.
pub(crate) fn wrk_version(bin: &Path) -> String {
    let out = std::process::Command::new(bin).arg("--version").output();
    out.ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .next()
                .map(|l| l.split(" Copyright").next().unwrap_or(l).trim().to_string())
        })
        .unwrap_or_else(|| "wrk".into())
}

/// A folder nginx serves at `/static/`, deleted on drop. Readable by
/// everyone: as root, nginx's workers run as `nobody`.
#[derive(Debug)]
pub(crate) struct StaticDir(PathBuf);

impl StaticDir {
    pub(crate) fn create() -> anyhow::Result<StaticDir> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!(
            "lab-edge-static-{}-{}",
            std::process::id(),
            lab::isolate::unique_name()
        ));
        std::fs::create_dir(&path)
            .with_context(|| format!("Failed to create {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(StaticDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("Failed to write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(())
    }
}

impl Drop for StaticDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Redis client's timeout in the measured services: a loopback Redis
/// under load answers in well under a millisecond, and no measured request
/// may fail on a scheduling hiccup.
pub(crate) const ORIGIN_REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// Lesson 2's service as an origin on a pinned thread named `name` (see
/// [`pinned`]; `perf` and `top` show the name), logging through `log`: its
/// Redis HIT is a row here and in lesson 2's hit-path bench.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn lesson_2_origin(
    name: &str,
    pg_url: &str,
    schema: &str,
    redis_url: &str,
    key_prefix: &str,
    cpus: Option<Vec<usize>>,
    log: Option<tracing::Dispatch>,
) -> anyhow::Result<PinnedServer<lesson_02_cache_aside::metrics::Metrics>> {
    let (pg_url, schema, redis_url) = (
        pg_url.to_string(),
        schema.to_string(),
        redis_url.to_string(),
    );
    let settings = lesson_02_cache_aside::Settings {
        // Longer than the run: every measured request is a HIT.
        ttl: Duration::from_secs(3600),
        redis_timeout: ORIGIN_REDIS_TIMEOUT,
        key_prefix: key_prefix.to_string(),
        latency: Duration::ZERO,
        db_timeout: Duration::from_secs(5),
    };
    PinnedServer::start(name, cpus, log, move || async move {
        let pool = lab::isolate::schema_pool(&pg_url, &schema, 4).await?;
        let state = lesson_02_cache_aside::state(pool, &redis_url, settings)?;
        let metrics = state.metrics.clone();
        Ok((lesson_02_cache_aside::router(state), metrics))
    })
    .await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "1234 (nginx: a (b) c) S 1200 1234 1234 0 -1 4194624 150 0 0 0 \
                    271 38 0 0 20 0 1 0 5000 10000000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 1200,
                utime: 271,
                stime: 38
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn this_threads_stat_parses() {
        let me = std::fs::read_link("/proc/thread-self").expect("a Linux /proc");
        let stat =
            std::fs::read_to_string(Path::new("/proc").join(me).join("stat")).expect("readable");
        let s = parse_stat(&stat).expect("parses");
        assert_eq!(s.ppid, std::os::unix::process::parent_id());
    }

    pub(crate) fn measurement(rps: f64, p50: f64, cpu: f64) -> Measurement {
        Measurement {
            shape: Shape::THROUGHPUT,
            wrk: WrkSummary {
                requests: rps as u64 * 10,
                duration_us: 10_000_000,
                p50_us: p50,
                p99_us: p50 * 3.0,
                ..WrkSummary::default()
            },
            cpu_us_per_request: Some(cpu),
        }
    }

    fn results() -> LoadResults {
        let row = |target, rps, p50, cpu| TargetResult {
            target,
            path: "/x".into(),
            body_bytes: 70,
            latency: measurement(rps / 4.0, p50, cpu),
            throughput: measurement(rps, p50 * 10.0, cpu),
        };
        LoadResults {
            quick: true,
            warmup_s: 1.0,
            measure_s: 2.0,
            placement: Placement::default(),
            wrk_version: "wrk 4.1".into(),
            edge_origin_requests: 1,
            redis_origin_db_queries: 1,
            targets: vec![
                row(Target::EdgeHit, 30_000.0, 60.0, 20.0),
                row(Target::OriginRedisHit, 10_000.0, 120.0, 80.0),
                row(Target::NginxStatic, 40_000.0, 50.0, 15.0),
            ],
        }
    }

    #[test]
    fn the_ratios_divide_the_right_rows() {
        let r = results();
        let (e, o, s) = (Target::EdgeHit, Target::OriginRedisHit, Target::NginxStatic);
        assert_eq!(r.throughput_ratio(e, s), Some(0.75));
        assert_eq!(r.throughput_ratio(e, o), Some(3.0));
        assert_eq!(r.cpu_ratio(e, o), Some(0.25));
        assert_eq!(r.latency_ratio(e, o), Some(0.5));
        let md = r.table_md();
        assert!(
            md.contains("edge HIT / nginx static: throughput 0.75×"),
            "{md}"
        );
        assert!(
            md.contains("edge HIT / origin Redis HIT: throughput 3.00×"),
            "{md}"
        );
        assert!(md.contains("| 30000 |"), "{md}");
        assert!(md.contains("unpinned"), "{md}");
    }

    #[test]
    fn the_terminal_table_is_narrow_and_says_the_same() {
        let r = results();
        let text = r.table_text();
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "too wide: {line}");
            assert_eq!(line, line.trim_end(), "trailing spaces");
        }
        for label in Target::ALL.map(Target::label) {
            assert!(text.contains(label), "{text}");
        }
        assert!(text.contains("30000"), "{text}");
        assert!(
            text.contains("edge HIT vs nginx static: 0.75× the throughput"),
            "{text}"
        );
        assert!(
            text.contains("edge HIT vs origin Redis HIT: 3.00× the throughput, 0.25× the CPU"),
            "{text}"
        );
        assert!(!text.contains('|'), "plain text, not Markdown: {text}");
        let finding = r.finding();
        assert!(
            finding.contains("3.0× the origin's Redis HIT throughput"),
            "{finding}"
        );
        assert!(finding.contains("0.8× nginx static's"), "{finding}");
    }

    #[test]
    fn results_survive_a_round_trip_through_json() {
        let r = results();
        let back: LoadResults =
            serde_json::from_str(&serde_json::to_string(&r).expect("serialised")).expect("read");
        assert_eq!(back.table_md(), r.table_md());
    }
}
