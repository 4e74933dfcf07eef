//! Lesson 2's hit path under load, against its parts: how close does a
//! Redis HIT through the lesson's whole service come to the least a Redis
//! HIT can cost?
//!
//! The book's other benches send one request at a time. A cache earns its
//! keep under concurrency, where per-request work that one connection hides
//! (allocations, timers, log lines, metrics) becomes throughput lost. Eight
//! targets on loopback, each under [`wrk`](super::load::wrk) with one and
//! with 32 connections:
//!
//! - **nginx static file**: the same bytes as a user's JSON, from disk:
//!   context, the most a web server does per request without an
//!   application;
//! - **axum constant (bare)**: a bare axum handler returning a constant:
//!   HTTP in Rust, nothing else;
//! - **lesson 2 /healthz (its stack)**: the same constant through lesson
//!   2's router and `lab`'s middleware (Server-Timing, metrics, the body
//!   limit): what the stack costs without Redis;
//! - **minimal hit path (floor)**: a bare axum handler doing one Redis
//!   `GET` through the same client lesson 2 uses, returning the bytes, no
//!   middleware: the floor for any Redis HIT;
//! - **lesson 2 HIT** at three log levels: `warn`, the default `--serve`
//!   filter ([`lab::SERVE_FILTER`]) and `debug`;
//! - **lesson 3 fresh HIT**: lesson 3's stale-fallback service answering a
//!   fresh entry (it parses the entry to read its age).
//!
//! Every server runs on a pinned thread of its own ([`PinnedServer`]), with
//! its own log subscriber writing to a file, so its CPU time per request is
//! read from `/proc` and its log level is its own. The targets are measured
//! in `rounds`, the order rotated each round, and each figure is the median
//! over the rounds; the ratios are taken within a round, then the median
//! ratio is shown, so a slow minute of the machine moves both sides of a
//! ratio together.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lab::Kind;
use lab::isolate::{PgSchema, RedisPrefix};
use lab::results::Results;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use super::load::pinned::PinnedServer;
use super::load::wrk::{self, Script, Shape};
use super::load::{
    Cpu, Measurement, ORIGIN_REDIS_TIMEOUT, Placement, StaticDir, client_cpus, lesson_2_origin,
    measure_one, nginx_worker, online_cpus, probe, wrk_version,
};
use crate::edge::EdgeConfig;

/// What to run.
#[derive(Clone, Debug)]
pub struct HitPathOptions {
    /// One round of 1 s measurements instead of three of 5 s.
    pub quick: bool,
}

impl HitPathOptions {
    /// (warm-up, measurement, rounds).
    pub fn durations(&self) -> (Duration, Duration, usize) {
        if self.quick {
            (Duration::from_secs(1), Duration::from_secs(1), 1)
        } else {
            (Duration::from_secs(2), Duration::from_secs(5), 3)
        }
    }
}

/// The log filter of the `warn` row: nothing below a warning.
pub const WARN_FILTER: &str = "warn";
/// The log filter of the `debug` row: what `RUST_LOG=debug` shows, with
/// the two libraries the default quietens still quiet.
pub const DEBUG_FILTER: &str = "debug,sqlx=error,hyper=warn";

/// The user every target serves.
const USER_ID: i64 = 42;
const USERS: i64 = 100;
const STATIC_FILE: &str = "user-42.json";

/// The eight things measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HitRow {
    NginxStatic,
    AxumConstant,
    Lesson2Healthz,
    MinimalHit,
    Lesson2HitWarn,
    Lesson2HitInfo,
    Lesson2HitDebug,
    Lesson3FreshHit,
}

impl HitRow {
    pub const ALL: [HitRow; 8] = [
        HitRow::NginxStatic,
        HitRow::AxumConstant,
        HitRow::Lesson2Healthz,
        HitRow::MinimalHit,
        HitRow::Lesson2HitWarn,
        HitRow::Lesson2HitInfo,
        HitRow::Lesson2HitDebug,
        HitRow::Lesson3FreshHit,
    ];

    /// The name tables, charts and claims use.
    pub fn label(self) -> &'static str {
        match self {
            HitRow::NginxStatic => "nginx static file",
            HitRow::AxumConstant => "axum constant (bare)",
            HitRow::Lesson2Healthz => "lesson 2 /healthz (its stack)",
            HitRow::MinimalHit => "minimal hit path (floor)",
            HitRow::Lesson2HitWarn => "lesson 2 HIT, log warn",
            HitRow::Lesson2HitInfo => "lesson 2 HIT, log default",
            HitRow::Lesson2HitDebug => "lesson 2 HIT, log debug",
            HitRow::Lesson3FreshHit => "lesson 3 fresh HIT",
        }
    }

    /// The log filter its server ran with (nginx: none of ours).
    pub fn filter(self) -> Option<&'static str> {
        match self {
            HitRow::NginxStatic => None,
            HitRow::Lesson2HitWarn => Some(WARN_FILTER),
            HitRow::Lesson2HitDebug => Some(DEBUG_FILTER),
            _ => Some(lab::SERVE_FILTER),
        }
    }
}

/// One target's measurements, one per round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RowResult {
    pub row: HitRow,
    pub path: String,
    pub body_bytes: u64,
    pub latency: Vec<Measurement>,
    pub throughput: Vec<Measurement>,
}

impl RowResult {
    /// Median over the rounds of `f` of the latency (1 connection) runs.
    fn latency_median(&self, f: impl Fn(&Measurement) -> Option<f64>) -> Option<f64> {
        median(self.latency.iter().filter_map(f).collect())
    }

    fn throughput_median(&self, f: impl Fn(&Measurement) -> Option<f64>) -> Option<f64> {
        median(self.throughput.iter().filter_map(f).collect())
    }
}

/// The results: `target/lab-experiments/hit_path.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HitPathResults {
    pub quick: bool,
    pub rounds: usize,
    pub warmup_s: f64,
    pub measure_s: f64,
    pub placement: Placement,
    pub wrk_version: String,
    /// Database queries behind lesson 2's three servers over the run. They
    /// share one key prefix, so 1 (the first server's warming miss) means
    /// every measured request was a Redis HIT.
    pub lesson_2_db_queries: u64,
    /// Bytes of log each server wrote over the whole run (warm-up, probes
    /// and every round), by row; the `/healthz` row shares the default
    /// server with `lesson 2 HIT, log default`.
    pub log_bytes: Vec<(HitRow, u64)>,
    pub rows: Vec<RowResult>,
}

impl Results for HitPathResults {
    const FILE: &'static str = "hit_path.json";
}

/// Which ratio.
#[derive(Clone, Copy, Debug)]
pub enum Metric {
    /// Requests a second at 32 connections.
    Throughput,
    /// The server's CPU time per request at 32 connections.
    Cpu,
    /// The median latency with one connection.
    Latency,
}

impl Metric {
    fn of(self, r: &RowResult, round: usize) -> Option<f64> {
        match self {
            Metric::Throughput => Some(r.throughput.get(round)?.wrk.rps()),
            Metric::Cpu => r.throughput.get(round)?.cpu_us_per_request,
            Metric::Latency => Some(r.latency.get(round)?.wrk.p50_us),
        }
    }
}

impl HitPathResults {
    pub fn get(&self, row: HitRow) -> Option<&RowResult> {
        self.rows.iter().find(|r| r.row == row)
    }

    /// `row`'s requests a second at 32 connections, median over rounds.
    pub fn rps(&self, row: HitRow) -> Option<f64> {
        self.get(row)?.throughput_median(|m| Some(m.wrk.rps()))
    }

    /// `row`'s server CPU time per request at 32 connections, median.
    pub fn cpu(&self, row: HitRow) -> Option<f64> {
        self.get(row)?.throughput_median(|m| m.cpu_us_per_request)
    }

    /// `a`'s `metric` over `b`'s, taken in each round, median over rounds.
    pub fn ratio(&self, metric: Metric, a: HitRow, b: HitRow) -> Option<f64> {
        let (a, b) = (self.get(a)?, self.get(b)?);
        let per_round = (0..self.rounds)
            .filter_map(|i| {
                let (x, y) = (metric.of(a, i)?, metric.of(b, i)?);
                (y > 0.0).then(|| x / y)
            })
            .collect();
        median(per_round)
    }

    /// The targets, each as (what, measured, limit, met).
    pub fn targets(&self) -> Vec<(String, Option<f64>, f64, bool)> {
        let floor = HitRow::MinimalHit;
        let mut out = Vec::new();
        for row in [HitRow::Lesson2HitInfo, HitRow::Lesson3FreshHit] {
            for (metric, what, limit, at_least) in [
                (
                    Metric::Throughput,
                    "requests a second at 32 connections",
                    0.9,
                    true,
                ),
                (
                    Metric::Cpu,
                    "CPU time per request at 32 connections",
                    1.1,
                    false,
                ),
                (
                    Metric::Latency,
                    "median latency with 1 connection",
                    1.05,
                    false,
                ),
            ] {
                let v = self.ratio(metric, row, floor);
                let met = v.is_some_and(|v| if at_least { v >= limit } else { v <= limit });
                let sign = if at_least { "≥" } else { "≤" };
                out.push((
                    format!(
                        "{}: {what} ÷ the floor's, target {sign} {limit:.2}×",
                        row.label()
                    ),
                    v,
                    limit,
                    met,
                ));
            }
        }
        out
    }

    /// The table, the targets and the run's conditions.
    pub fn table_md(&self) -> String {
        use std::fmt::Write;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "| target | body | log | 1 conn: p50 | 32 conns: req/s | 32 conns: p99 | 32 conns: CPU/req | req/s ÷ nginx | req/s ÷ floor | CPU ÷ floor | p50 ÷ floor |"
        );
        let _ = writeln!(md, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        let x = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.2}×"));
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} B | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.row.label(),
                r.body_bytes,
                r.row
                    .filter()
                    .map_or("(nginx)".into(), |f| format!("`{f}`")),
                us(r.latency_median(|m| Some(m.wrk.p50_us))),
                r.throughput_median(|m| Some(m.wrk.rps()))
                    .map_or("n/a".into(), |v| format!("{v:.0}")),
                us(r.throughput_median(|m| Some(m.wrk.p99_us))),
                r.throughput_median(|m| m.cpu_us_per_request)
                    .map_or("n/a".into(), |v| format!("{v:.1} µs")),
                x(self.ratio(Metric::Throughput, r.row, HitRow::NginxStatic)),
                x(self.ratio(Metric::Throughput, r.row, HitRow::MinimalHit)),
                x(self.ratio(Metric::Cpu, r.row, HitRow::MinimalHit)),
                x(self.ratio(Metric::Latency, r.row, HitRow::MinimalHit)),
            );
        }
        let _ = writeln!(md);
        for (what, v, _, met) in self.targets() {
            let _ = writeln!(
                md,
                "- {what}: {} ({}).",
                x(v),
                if met { "met" } else { "not met" }
            );
        }
        let logs: Vec<String> = self
            .log_bytes
            .iter()
            .map(|(row, b)| format!("{} {}", row.label(), size(*b)))
            .collect();
        let _ = writeln!(
            md,
            "- Log written over the whole run (warm-up and every round): {}.",
            logs.join(", ")
        );
        let _ = writeln!(
            md,
            "- Database queries behind lesson 2's three servers, which share one cache: {} (the warming miss).",
            self.lesson_2_db_queries
        );
        let _ = writeln!(
            md,
            "- wrk ({}), {} round(s) in rotated order, {:.0} s per measurement after {:.0} s of warm-up; each figure is the median over the rounds, each ratio the median of the rounds' ratios; {}.",
            self.wrk_version,
            self.rounds,
            self.measure_s,
            self.warmup_s,
            self.placement.describe()
        );
        md
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Bytes of log, readably.
fn size(bytes: u64) -> String {
    match bytes {
        0 => "none".into(),
        b if b < 1_000_000 => format!("{:.0} kB", (b as f64 / 1e3).max(1.0)),
        b => format!("{:.1} MB", b as f64 / 1e6),
    }
}

fn us(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} ms", v / 1000.0),
        Some(v) => format!("{v:.0} µs"),
    }
}

// ANCHOR: minimal_hit
/// The floor: one Redis `GET` and the bytes back, nothing else. No
/// middleware, no metrics, no span, no timeout but the client's own.
async fn minimal_hit(
    State((redis, prefix)): State<(ConnectionManager, String)>,
    Path(id): Path<i64>,
) -> Response {
    let mut redis = redis;
    match redis
        .get::<_, Option<Vec<u8>>>(format!("{prefix}user:{id}"))
        .await
    {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
// ANCHOR_END: minimal_hit

/// A log file a server writes to, deleted on drop.
struct LogFile(PathBuf);

impl LogFile {
    fn create(name: &str) -> anyhow::Result<(LogFile, std::fs::File)> {
        let path = std::env::temp_dir().join(format!(
            "lab-hit-path-{name}-{}-{}.log",
            std::process::id(),
            lab::isolate::unique_name()
        ));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("Failed to create {}", path.display()))?;
        Ok((LogFile(path), file))
    }

    fn bytes(&self) -> u64 {
        std::fs::metadata(&self.0).map_or(0, |m| m.len())
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A log subscriber for one server, writing to a new file.
fn log_for(name: &str, filter: &str) -> anyhow::Result<(LogFile, tracing::Dispatch)> {
    let (log, file) = LogFile::create(name)?;
    Ok((log, lab::tracing_to_file(filter, file)))
}

/// Runs the experiment: the servers, the probes, then the rounds.
pub async fn run(opts: &HitPathOptions) -> anyhow::Result<HitPathResults> {
    let (warmup, measure, rounds) = opts.durations();
    let wrk_bin = wrk::binary()?;
    let script = Script::write()?;
    let client_cpus = client_cpus()?;
    let server_cpus = lab::pin::server_cpus()?;

    let pg = lab::discover(Kind::Postgres).await?;
    let redis = lab::discover(Kind::Redis).await?;
    let schema = PgSchema::create(pg.url()).await?;
    lab::seed::ensure_users_pg(schema.pool(), USERS).await?;
    let prefix2 = RedisPrefix::new(redis.url());
    let prefix3 = RedisPrefix::new(redis.url());

    // Lesson 2 at three log levels; the default one also serves /healthz.
    let mut logs = Vec::new();
    let mut lesson_2 = Vec::new();
    for (row, name) in [
        (HitRow::Lesson2HitWarn, "l2-hit-warn"),
        (HitRow::Lesson2HitInfo, "l2-hit-default"),
        (HitRow::Lesson2HitDebug, "l2-hit-debug"),
    ] {
        let (log, dispatch) = log_for(name, row.filter().unwrap_or(WARN_FILTER))?;
        logs.push((row, log));
        let server = lesson_2_origin(
            name,
            pg.url(),
            schema.name(),
            redis.url(),
            prefix2.prefix(),
            server_cpus.clone(),
            Some(dispatch),
        )
        .await?;
        lesson_2.push((row, server));
    }

    // The floor and the bare constant.
    let (log, dispatch) = log_for("minimal", lab::SERVE_FILTER)?;
    logs.push((HitRow::MinimalHit, log));
    let (redis_url, key_prefix) = (redis.url().to_string(), prefix2.prefix().to_string());
    let minimal = PinnedServer::start(
        "minimal-hit",
        server_cpus.clone(),
        Some(dispatch),
        move || async move {
            // The same client, with the same timeouts, as lesson 2's.
            let conn = lesson_02_cache_aside::redis_manager(&redis_url, ORIGIN_REDIS_TIMEOUT)?;
            let router = Router::new()
                .route("/users/{id}", get(minimal_hit))
                .with_state((conn, key_prefix));
            Ok((router, ()))
        },
    )
    .await?;
    let (log, dispatch) = log_for("constant", lab::SERVE_FILTER)?;
    logs.push((HitRow::AxumConstant, log));
    let constant = PinnedServer::start(
        "axum-constant",
        server_cpus.clone(),
        Some(dispatch),
        || async {
            let router = Router::new().route(
                "/healthz",
                get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
            );
            Ok((router, ()))
        },
    )
    .await?;

    // Lesson 3, with its defaults but a soft TTL that outlasts the run:
    // every measured request is a fresh HIT.
    let (log, dispatch) = log_for("lesson-3", lab::SERVE_FILTER)?;
    logs.push((HitRow::Lesson3FreshHit, log));
    let (pg_url, schema_name, redis_url, key_prefix) = (
        pg.url().to_string(),
        schema.name().to_string(),
        redis.url().to_string(),
        prefix3.prefix().to_string(),
    );
    let lesson_3 = PinnedServer::start(
        "lesson-3",
        server_cpus.clone(),
        Some(dispatch),
        move || async move {
            use lesson_03_stale_fallback as l3;
            let settings = l3::Settings {
                soft_ttl: Duration::from_secs(3600),
                redis_timeout: ORIGIN_REDIS_TIMEOUT,
                db_timeout: Duration::from_secs(5),
                breaker: l3::breaker::BreakerConfig {
                    failures: 5,
                    open_for: Duration::from_secs(10),
                    rate: Some(l3::breaker::FailureRate::DEFAULT),
                },
                ..l3::Settings::for_tests(&key_prefix, l3::Mode::Fallback)
            };
            let pool = lab::isolate::schema_pool(&pg_url, &schema_name, 4).await?;
            let state = l3::state(pool, &redis_url, settings)?;
            Ok((l3::router(state), ()))
        },
    )
    .await?;

    // nginx, for the static file only (its origin is never asked).
    let static_dir = StaticDir::create()?;
    let (_, default_server) = &lesson_2[1];
    let origin_addr: std::net::SocketAddr = default_server
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .context("lesson 2's address")?;
    let mut config = EdgeConfig::new(origin_addr);
    config.static_root = Some(static_dir.path().to_path_buf());
    let nginx = config.spawn(None).await?;

    // Probes: warm every cache and check each target answers 200 with the
    // right X-Cache, and the same bytes where it should.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let user_path = format!("/users/{USER_ID}");
    let mut body = Vec::new();
    for (_, server) in &lesson_2 {
        let url = format!("{}{user_path}", server.base_url());
        probe(&http, &url, None).await?; // the miss that fills Redis
        body = probe(&http, &url, Some(("x-cache", "HIT"))).await?;
    }
    let l3_url = format!("{}{user_path}", lesson_3.base_url());
    probe(&http, &l3_url, None).await?;
    let l3_body = probe(&http, &l3_url, Some(("x-cache", "HIT"))).await?;
    let minimal_url = format!("{}{user_path}", minimal.base_url());
    let minimal_body = probe(&http, &minimal_url, None).await?;
    if minimal_body != body {
        bail!("the minimal hit path answered other bytes than lesson 2's HIT");
    }
    static_dir.write(STATIC_FILE, &body)?;
    let static_path = format!("/static/{STATIC_FILE}");
    let static_url = format!("{}{static_path}", nginx.base_url());
    let static_body = probe(&http, &static_url, None).await?;
    let worker = nginx_worker(nginx.pid().context("nginx is not running")?).await?;
    let healthz_url = format!("{}/healthz", default_server.base_url());
    let healthz_body = probe(&http, &healthz_url, None).await?;
    let constant_url = format!("{}/healthz", constant.base_url());
    let constant_body = probe(&http, &constant_url, None).await?;

    let thread = |s: &std::path::Path| Cpu::Thread(s.to_path_buf());
    let server_of = |row: HitRow| {
        lesson_2
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, s)| s)
            .expect("three lesson 2 servers")
    };
    let targets: Vec<(HitRow, String, String, usize, Cpu)> = vec![
        (
            HitRow::NginxStatic,
            static_path,
            static_url,
            static_body.len(),
            Cpu::Process(worker),
        ),
        (
            HitRow::AxumConstant,
            "/healthz".into(),
            constant_url,
            constant_body.len(),
            thread(constant.stat_path()),
        ),
        (
            HitRow::Lesson2Healthz,
            "/healthz".into(),
            healthz_url,
            healthz_body.len(),
            thread(default_server.stat_path()),
        ),
        (
            HitRow::MinimalHit,
            user_path.clone(),
            minimal_url,
            minimal_body.len(),
            thread(minimal.stat_path()),
        ),
        (
            HitRow::Lesson2HitWarn,
            user_path.clone(),
            format!(
                "{}{user_path}",
                server_of(HitRow::Lesson2HitWarn).base_url()
            ),
            body.len(),
            thread(server_of(HitRow::Lesson2HitWarn).stat_path()),
        ),
        (
            HitRow::Lesson2HitInfo,
            user_path.clone(),
            format!(
                "{}{user_path}",
                server_of(HitRow::Lesson2HitInfo).base_url()
            ),
            body.len(),
            thread(server_of(HitRow::Lesson2HitInfo).stat_path()),
        ),
        (
            HitRow::Lesson2HitDebug,
            user_path.clone(),
            format!(
                "{}{user_path}",
                server_of(HitRow::Lesson2HitDebug).base_url()
            ),
            body.len(),
            thread(server_of(HitRow::Lesson2HitDebug).stat_path()),
        ),
        (
            HitRow::Lesson3FreshHit,
            user_path.clone(),
            l3_url.clone(),
            l3_body.len(),
            thread(lesson_3.stat_path()),
        ),
    ];

    // Warm every target once (connections, caches, CPU frequency).
    for (row, _, url, _, _) in &targets {
        tracing::debug!("warming {}", row.label());
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
    let mut latency: Vec<Vec<Measurement>> = vec![Vec::new(); targets.len()];
    let mut throughput: Vec<Vec<Measurement>> = vec![Vec::new(); targets.len()];
    let mut wrk_allowed = String::from("?");
    for round in 0..rounds {
        // Rotated: no target is always measured first, or right after nginx.
        let order: Vec<usize> = (0..targets.len())
            .map(|i| (i + round * 3) % targets.len())
            .collect();
        for shape in [Shape::LATENCY, Shape::THROUGHPUT] {
            for &i in &order {
                let (row, _, url, _, cpu) = &targets[i];
                tracing::debug!(
                    "round {}: {} with {} connection(s)",
                    round + 1,
                    row.label(),
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
                    row.label(),
                )
                .await?;
                wrk_allowed = allowed;
                if shape == Shape::LATENCY {
                    latency[i].push(m);
                } else {
                    throughput[i].push(m);
                }
            }
        }
        println!("hit_path: round {} of {rounds} done", round + 1);
    }

    // After the load: still HITs, and lesson 2 never asked its database
    // again (one warming miss in all: the three servers share a prefix).
    probe(&http, &l3_url, Some(("x-cache", "HIT"))).await?;
    let mut lesson_2_db_queries = 0;
    for (_, server) in &lesson_2 {
        let url = format!("{}{user_path}", server.base_url());
        probe(&http, &url, Some(("x-cache", "HIT"))).await?;
        lesson_2_db_queries += server
            .extra()
            .counter(lesson_02_cache_aside::metrics::DB_QUERIES);
    }

    let placement = Placement {
        client_cpus,
        server_cpus,
        wrk_allowed,
        nginx_worker_allowed: wrk::cpus_allowed(&format!("/proc/{worker}/status")),
        origin_thread_allowed: server_of(HitRow::Lesson2HitInfo).cpus_allowed(),
        cores: online_cpus(),
    };
    let rows = targets
        .into_iter()
        .zip(latency.into_iter().zip(throughput))
        .map(
            |((row, path, _, bytes, _), (latency, throughput))| RowResult {
                row,
                path,
                body_bytes: bytes as u64,
                latency,
                throughput,
            },
        )
        .collect();
    drop(nginx);
    for (_, server) in lesson_2 {
        server.stop().await?;
    }
    minimal.stop().await?;
    constant.stop().await?;
    lesson_3.stop().await?;
    let log_bytes = logs.iter().map(|(row, f)| (*row, f.bytes())).collect();
    Ok(HitPathResults {
        quick: opts.quick,
        rounds,
        warmup_s: warmup.as_secs_f64(),
        measure_s: measure.as_secs_f64(),
        placement,
        wrk_version: wrk_version(&wrk_bin),
        lesson_2_db_queries,
        log_bytes,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::load::tests::measurement as m;

    fn results() -> HitPathResults {
        // Two rounds; the second is a slow minute of the machine for both.
        let row = |row, rps: f64, p50, cpu| RowResult {
            row,
            path: "/x".into(),
            body_bytes: 52,
            latency: vec![m(rps / 8.0, p50, cpu), m(rps / 16.0, p50 * 2.0, cpu * 2.0)],
            throughput: vec![m(rps, p50, cpu), m(rps / 2.0, p50 * 2.0, cpu * 2.0)],
        };
        HitPathResults {
            quick: true,
            rounds: 2,
            warmup_s: 1.0,
            measure_s: 1.0,
            placement: Placement::default(),
            wrk_version: "wrk 4.1".into(),
            lesson_2_db_queries: 1,
            log_bytes: vec![(HitRow::Lesson2HitDebug, 2_500_000)],
            rows: vec![
                row(HitRow::NginxStatic, 100_000.0, 40.0, 8.0),
                row(HitRow::MinimalHit, 50_000.0, 70.0, 18.0),
                row(HitRow::Lesson2HitInfo, 40_000.0, 77.0, 27.0),
                row(HitRow::Lesson3FreshHit, 46_000.0, 70.0, 19.0),
            ],
        }
    }

    #[test]
    fn ratios_are_taken_within_a_round() {
        let r = results();
        let (l2, floor) = (HitRow::Lesson2HitInfo, HitRow::MinimalHit);
        // The same 0.8 in both rounds, though the second ran at half speed.
        assert_eq!(r.ratio(Metric::Throughput, l2, floor), Some(0.8));
        assert_eq!(r.ratio(Metric::Cpu, l2, floor), Some(1.5));
        assert_eq!(r.ratio(Metric::Latency, l2, floor), Some(1.1));
        assert_eq!(
            r.ratio(Metric::Throughput, floor, HitRow::NginxStatic),
            Some(0.5)
        );
        assert_eq!(
            r.ratio(Metric::Throughput, HitRow::AxumConstant, floor),
            None
        );
    }

    #[test]
    fn the_targets_say_met_or_not() {
        let r = results();
        let t = r.targets();
        assert_eq!(t.len(), 6);
        let l2: Vec<bool> = t[..3].iter().map(|t| t.3).collect();
        assert_eq!(l2, [false, false, false], "{t:?}");
        let l3: Vec<bool> = t[3..].iter().map(|t| t.3).collect();
        assert_eq!(l3, [true, true, true], "{t:?}");
        let md = r.table_md();
        assert!(
            md.contains("lesson 2 HIT, log default: requests a second at 32 connections ÷ the floor's, target ≥ 0.90×: 0.80× (not met)"),
            "{md}"
        );
        assert!(
            md.contains("| lesson 3 fresh HIT | 52 B | `info,sqlx=error,hyper=warn` |"),
            "{md}"
        );
        assert!(md.contains("lesson 2 HIT, log debug 2.5 MB"), "{md}");
        // Medians over the rounds: 100000 and 50000 → 75000.
        assert!(md.contains("| 75000 |"), "{md}");
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn results_survive_a_round_trip_through_json() {
        let r = results();
        let back: HitPathResults =
            serde_json::from_str(&serde_json::to_string(&r).expect("serialised")).expect("read");
        assert_eq!(back.table_md(), r.table_md());
    }
}
