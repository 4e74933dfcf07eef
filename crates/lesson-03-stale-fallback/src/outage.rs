//! The outage experiment: four services, one real database outage.
//!
//! On a private PostgreSQL and Redis it serves four variants side by side:
//! lesson 1 (no cache), lesson 2 (cache-aside), lesson 3 (stale fallback
//! with a breaker) and lesson 3 cache-first. It warms the same keys in each,
//! sends each the same steady load over loopback (mostly warm keys, some
//! never seen), then **stops PostgreSQL** mid-run and starts it again. Every
//! response is recorded with the time it was sent, and summarised per phase
//! (before, during, after the outage) and per time bucket.
//!
//! Time is scaled down so the run takes about a minute: the soft TTL (and
//! lesson 2's TTL) is a few seconds instead of 60, so keys go stale during
//! the outage as they would in a long outage at production TTLs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::breaker::{BreakerConfig, Status};
use crate::{Mode, Settings};

/// Where `cargo bench` (the `outage` bench target) writes its report,
/// in `target/lab-experiments/`; `just report` reads it from there.
pub const RESULTS_FILE: &str = "outage.json";

/// The experiment's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub before: Duration,
    pub outage: Duration,
    pub after: Duration,
    /// Requests per second sent to each variant.
    pub rate: u32,
    /// Users in the table.
    pub users: i64,
    /// Keys requested (and so cached) before the load starts: ids 1..=warm.
    pub warm: i64,
    /// Share of requests for ids above `warm`, most of them never seen.
    pub cold_share: f64,
    /// Simulated query latency (pg_sleep).
    pub latency: Duration,
    pub db_timeout: Duration,
    /// Lesson 3's soft TTL, and lesson 2's TTL, so both age alike.
    pub soft_ttl: Duration,
    pub breaker: BreakerConfig,
    /// The timeline's resolution.
    pub bucket: Duration,
}

impl Plan {
    /// `just lesson-3`: about 20 s of load.
    pub fn short() -> Plan {
        Plan {
            before: Duration::from_secs(5),
            outage: Duration::from_secs(8),
            after: Duration::from_secs(7),
            rate: 40,
            users: 10_000,
            warm: 500,
            cold_share: 0.2,
            latency: Duration::from_millis(20),
            db_timeout: Duration::from_millis(250),
            soft_ttl: Duration::from_secs(2),
            breaker: BreakerConfig {
                failures: 5,
                open_for: Duration::from_secs(2),
            },
            bucket: Duration::from_millis(500),
        }
    }

    /// The book's figures: about a minute of load.
    pub fn long() -> Plan {
        Plan {
            before: Duration::from_secs(15),
            outage: Duration::from_secs(25),
            after: Duration::from_secs(20),
            rate: 50,
            users: 10_000,
            warm: 1_000,
            soft_ttl: Duration::from_secs(5),
            breaker: BreakerConfig {
                failures: 5,
                open_for: Duration::from_secs(5),
            },
            bucket: Duration::from_secs(1),
            ..Plan::short()
        }
    }
}

/// The four services under test.
pub const VARIANTS: [&str; 4] = [
    "lesson 1: no cache",
    "lesson 2: cache-aside",
    "lesson 3: stale fallback",
    "lesson 3: cache-first",
];

/// One response, as the load generator saw it.
#[derive(Clone, Copy, Debug)]
struct Sample {
    variant: usize,
    /// When it was sent, since the load started.
    sent: Duration,
    took: Duration,
    /// 0 when the request failed without a response.
    status: u16,
    /// A 2xx that is not a stale copy.
    fresh: bool,
    warm: bool,
    /// Lesson 3's breaker was open (or probing) when it was sent.
    breaker_open: bool,
}

/// One variant in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseRow {
    pub variant: String,
    pub phase: String,
    pub requests: usize,
    /// Share of 2xx answers, in percent.
    pub ok_pct: f64,
    /// The same, for warm keys only (cached before the load started).
    pub ok_warm_pct: f64,
    /// Share of answers that were stale copies.
    pub stale_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One variant in one time bucket: a point of the timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bucket {
    pub variant: String,
    /// The bucket's start, in seconds since the load started.
    pub t: f64,
    pub requests: usize,
    pub ok_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What one run found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub plan: Plan,
    /// When PostgreSQL was stopped, and when it answered again, in seconds
    /// since the load started.
    pub outage_start: f64,
    pub outage_end: f64,
    pub phases: Vec<PhaseRow>,
    pub timeline: Vec<Bucket>,
    /// Per variant: from PostgreSQL answering again to the first fresh
    /// (not stale) 2xx, in ms; `None` if none came before the run ended.
    pub recovery_ms: Vec<(String, Option<f64>)>,
    /// Per lesson-3 variant: p99 of the outage's requests sent while the
    /// breaker was open or probing.
    pub breaker_open_p99_ms: Vec<(String, Option<f64>)>,
    /// Per lesson-3 variant: database calls made during the outage.
    pub outage_db_attempts: Vec<(String, u64)>,
}

/// A tiny deterministic generator (SplitMix64), so every run sends the same
/// sequence of keys without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// One variant being served.
struct Target {
    base: String,
    /// Lesson 3's state, to read its breaker and counters.
    lesson3: Option<crate::AppState>,
    _server: lab::http::Running,
}

// ANCHOR: run
/// Runs the experiment. `progress` prints a line per second when set.
pub async fn run(plan: &Plan, progress: bool) -> anyhow::Result<Report> {
    let say = |s: &str| {
        if progress {
            println!("{s}");
        }
    };
    say("spawning a private PostgreSQL and Redis (this experiment stops PostgreSQL)…");
    let mut pg = Instance::start_new(
        Kind::Postgres,
        SpawnOptions::with_settings([("max_connections", "200")]),
    )
    .await
    .context("the outage experiment needs a private PostgreSQL (initdb and postgres binaries)")?;
    let redis = Instance::start_new(Kind::Redis, SpawnOptions::plain())
        .await
        .context("the outage experiment needs a private Redis (redis-server on PATH)")?;
    let pool = sqlx::PgPool::connect(&pg.url()).await?;
    lab::seed::ensure_users_pg(&pool, plan.users).await?;
    pool.close().await;

    let targets = serve_variants(plan, &pg.url(), &redis.url()).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()?;
    say(&format!(
        "warming ids 1..={} in each cache (cache-first loads them in the background)…",
        plan.warm
    ));
    warm(&client, &targets, plan.warm).await?;

    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let start = Instant::now();
    let stop_at = start + plan.before + plan.outage + plan.after;
    let mut load = Vec::new();
    for (variant, t) in targets.iter().enumerate() {
        load.push(tokio::spawn(drive(
            variant,
            t.base.clone(),
            t.lesson3.clone(),
            plan.clone(),
            client.clone(),
            samples.clone(),
            start,
            stop_at,
        )));
    }
    say(&format!(
        "load: {} req/s to each variant, {:.0}% to keys never warmed; the outage starts at {:?}",
        plan.rate,
        plan.cold_share * 100.0,
        plan.before
    ));
    let ticker = progress.then(|| tokio::spawn(ticker(samples.clone(), start, stop_at)));

    tokio::time::sleep_until((start + plan.before).into()).await;
    let attempts_before = db_attempts(&targets);
    // The outage starts when the stop begins: requests sent while
    // PostgreSQL shuts down already meet it.
    let outage_start = start.elapsed();
    pg.stop().await?;
    say(&format!(
        "{:>5.1}s  PostgreSQL STOPPED",
        outage_start.as_secs_f64()
    ));
    tokio::time::sleep_until((start + plan.before + plan.outage).into()).await;
    let attempts_during: Vec<u64> = db_attempts(&targets)
        .iter()
        .zip(&attempts_before)
        .map(|(a, b)| a - b)
        .collect();
    let restart = Instant::now();
    pg.start().await?;
    let outage_end = start.elapsed();
    say(&format!(
        "{:>5.1}s  PostgreSQL answers again (it took {:.1?} to start)",
        outage_end.as_secs_f64(),
        restart.elapsed()
    ));
    for l in load {
        l.await?;
    }
    if let Some(t) = ticker {
        t.abort();
    }
    // Every request has a 5 s timeout: wait for the stragglers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    drop(targets);
    Ok(summarise(
        plan,
        &samples,
        outage_start,
        outage_end,
        &attempts_during,
    ))
}
// ANCHOR_END: run

async fn serve_variants(plan: &Plan, pg_url: &str, redis_url: &str) -> anyhow::Result<Vec<Target>> {
    let pool = || lab::isolate::schema_pool(pg_url, "public", 10);
    let mut targets = Vec::new();

    let l1 = lesson_01_naive::AppState {
        pool: pool().await?,
        latency: plan.latency,
        db_timeout: plan.db_timeout,
    };
    targets.push((lesson_01_naive::router(l1), None));

    let l2 = lesson_02_cache_aside::state(
        pool().await?,
        redis_url,
        lesson_02_cache_aside::Settings {
            ttl: plan.soft_ttl,
            redis_timeout: Duration::from_millis(50),
            key_prefix: "l2:".into(),
            latency: plan.latency,
            db_timeout: plan.db_timeout,
        },
    )?;
    targets.push((lesson_02_cache_aside::router(l2), None));

    for (mode, prefix) in [(Mode::Fallback, "l3:"), (Mode::CacheFirst, "cf:")] {
        let settings = Settings {
            soft_ttl: plan.soft_ttl,
            hard_ttl: Duration::from_secs(3600),
            mode,
            breaker: plan.breaker,
            redis_timeout: Duration::from_millis(50),
            db_timeout: plan.db_timeout,
            latency: plan.latency,
            key_prefix: prefix.into(),
        };
        let s = crate::state(pool().await?, redis_url, settings)?;
        targets.push((crate::router(s.clone()), Some(s)));
    }

    let mut out = Vec::new();
    for (router, lesson3) in targets {
        let server = lab::http::spawn_server(router, 0).await?;
        out.push(Target {
            base: server.base_url(),
            lesson3,
            _server: server,
        });
    }
    Ok(out)
}

/// GETs ids 1..=warm from every caching variant until each answers 200.
async fn warm(client: &reqwest::Client, targets: &[Target], warm: i64) -> anyhow::Result<()> {
    let gate = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::new();
    for t in &targets[1..] {
        for id in 1..=warm {
            let (client, url, gate) = (
                client.clone(),
                format!("{}/users/{id}", t.base),
                gate.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await?;
                // Cache-first answers 503 until its background load lands.
                for _ in 0..100 {
                    if client.get(&url).send().await?.status().is_success() {
                        return anyhow::Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                anyhow::bail!("{url} never answered 200 while warming")
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Sends `plan.rate` requests per second to one variant until `stop_at`.
/// Open loop: a slow answer does not delay the next request, as with real
/// users; at most 256 are in flight, so a stuck service cannot run away
/// with the client.
#[allow(clippy::too_many_arguments)]
async fn drive(
    variant: usize,
    base: String,
    lesson3: Option<crate::AppState>,
    plan: Plan,
    client: reqwest::Client,
    samples: Arc<Mutex<Vec<Sample>>>,
    start: Instant,
    stop_at: Instant,
) {
    // The same key sequence for every variant, so they see the same load.
    let mut rng = Rng(42);
    let gate = Arc::new(Semaphore::new(256));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / plan.rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inflight = Vec::new();
    loop {
        tick.tick().await;
        if Instant::now() >= stop_at {
            break;
        }
        let warm = rng.unit() >= plan.cold_share;
        let id = if warm {
            rng.range(1, plan.warm)
        } else {
            rng.range(plan.warm + 1, plan.users)
        };
        let breaker_open = lesson3
            .as_ref()
            .is_some_and(|s| s.breaker.status() != Status::Closed);
        let sent = start.elapsed();
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            record(
                &samples,
                Sample {
                    variant,
                    sent,
                    took: Duration::ZERO,
                    status: 0,
                    fresh: false,
                    warm,
                    breaker_open,
                },
            );
            continue;
        };
        let (client, url, samples) = (
            client.clone(),
            format!("{base}/users/{id}"),
            samples.clone(),
        );
        inflight.push(tokio::spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            let (status, stale) = match client.get(&url).send().await {
                Ok(r) => {
                    let stale = r.headers().get("x-cache").is_some_and(|v| v == "STALE");
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    (status, stale)
                }
                Err(_) => (0, false),
            };
            let ok = (200..300).contains(&status);
            record(
                &samples,
                Sample {
                    variant,
                    sent,
                    took: t0.elapsed(),
                    status,
                    fresh: ok && !stale,
                    warm,
                    breaker_open,
                },
            );
        }));
    }
    for t in inflight {
        let _ = t.await;
    }
}

fn record(samples: &Mutex<Vec<Sample>>, s: Sample) {
    samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
}

fn db_attempts(targets: &[Target]) -> Vec<u64> {
    targets
        .iter()
        .map(|t| {
            t.lesson3
                .as_ref()
                .map_or(0, |s| crate::Stats::get(&s.stats.db_attempts))
        })
        .collect()
}

/// Prints, once a second, each variant's share of 2xx in the last second.
async fn ticker(samples: Arc<Mutex<Vec<Sample>>>, start: Instant, stop_at: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < stop_at {
        tick.tick().await;
        let now = start.elapsed();
        let from = now.saturating_sub(Duration::from_secs(2));
        let to = now.saturating_sub(Duration::from_secs(1));
        let all = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut line = format!("{:>5.1}s ", to.as_secs_f64());
        for (v, name) in VARIANTS.iter().enumerate() {
            let s: Vec<&Sample> = all
                .iter()
                .filter(|s| s.variant == v && s.sent >= from && s.sent < to)
                .collect();
            let ok = s.iter().filter(|s| (200..300).contains(&s.status)).count();
            let pct = if s.is_empty() {
                0.0
            } else {
                100.0 * ok as f64 / s.len() as f64
            };
            line.push_str(&format!(" | {}: {pct:>3.0}% ok", short_name(name)));
        }
        println!("{line}");
    }
}

fn short_name(variant: &str) -> &str {
    variant.split(": ").nth(1).unwrap_or(variant)
}

fn is_ok(s: &Sample) -> bool {
    (200..300).contains(&s.status)
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The q-th quantile (0..=1) of latencies in ms, nearest rank.
fn quantile(took: &mut [Duration], q: f64) -> f64 {
    if took.is_empty() {
        return 0.0;
    }
    took.sort_unstable();
    let rank = ((q * took.len() as f64).ceil() as usize).clamp(1, took.len());
    took[rank - 1].as_secs_f64() * 1000.0
}

fn summarise(
    plan: &Plan,
    samples: &[Sample],
    outage_start: Duration,
    outage_end: Duration,
    attempts_during: &[u64],
) -> Report {
    let phase_of = |s: &Sample| {
        if s.sent < outage_start {
            "before"
        } else if s.sent < outage_end {
            "during"
        } else {
            "after"
        }
    };
    let mut phases = Vec::new();
    let mut recovery_ms = Vec::new();
    let mut breaker_open_p99_ms = Vec::new();
    let mut outage_db_attempts = Vec::new();
    for (v, name) in VARIANTS.iter().enumerate() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.variant == v).collect();
        for phase in ["before", "during", "after"] {
            let p: Vec<&Sample> = mine
                .iter()
                .copied()
                .filter(|s| phase_of(s) == phase)
                .collect();
            let warm: Vec<&Sample> = p.iter().copied().filter(|s| s.warm).collect();
            let mut took: Vec<Duration> = p.iter().map(|s| s.took).collect();
            phases.push(PhaseRow {
                variant: name.to_string(),
                phase: phase.into(),
                requests: p.len(),
                ok_pct: pct(p.iter().filter(|s| is_ok(s)).count(), p.len()),
                ok_warm_pct: pct(warm.iter().filter(|s| is_ok(s)).count(), warm.len()),
                stale_pct: pct(p.iter().filter(|s| is_ok(s) && !s.fresh).count(), p.len()),
                p50_ms: quantile(&mut took, 0.50),
                p99_ms: quantile(&mut took, 0.99),
            });
        }
        let first_fresh = mine
            .iter()
            .filter(|s| s.sent >= outage_end && s.fresh)
            .map(|s| (s.sent + s.took).saturating_sub(outage_end))
            .min();
        recovery_ms.push((
            name.to_string(),
            first_fresh.map(|d| d.as_secs_f64() * 1000.0),
        ));
        if v >= 2 {
            let mut open: Vec<Duration> = mine
                .iter()
                .filter(|s| phase_of(s) == "during" && s.breaker_open)
                .map(|s| s.took)
                .collect();
            let p99 = (!open.is_empty()).then(|| quantile(&mut open, 0.99));
            breaker_open_p99_ms.push((name.to_string(), p99));
            outage_db_attempts.push((name.to_string(), attempts_during[v]));
        }
    }

    let mut timeline = Vec::new();
    let total = plan.before + plan.outage + plan.after;
    let n = (total.as_secs_f64() / plan.bucket.as_secs_f64()).ceil() as u32;
    for (v, name) in VARIANTS.iter().enumerate() {
        for b in 0..n {
            let from = plan.bucket * b;
            let to = from + plan.bucket;
            let s: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.variant == v && s.sent >= from && s.sent < to)
                .collect();
            let mut took: Vec<Duration> = s.iter().map(|s| s.took).collect();
            timeline.push(Bucket {
                variant: name.to_string(),
                t: from.as_secs_f64(),
                requests: s.len(),
                ok_pct: pct(s.iter().filter(|s| is_ok(s)).count(), s.len()),
                p50_ms: quantile(&mut took, 0.50),
                p99_ms: quantile(&mut took, 0.99),
            });
        }
    }
    Report {
        plan: plan.clone(),
        outage_start: outage_start.as_secs_f64(),
        outage_end: outage_end.as_secs_f64(),
        phases,
        timeline,
        recovery_ms,
        breaker_open_p99_ms,
        outage_db_attempts,
    }
}

impl Report {
    /// The results as Markdown tables: the chapter includes them, and the
    /// demo prints them (they read fine in a terminal too).
    pub fn table_md(&self) -> String {
        let mut md = String::new();
        md.push_str(
            "| variant | phase | requests | 2xx | 2xx, warm keys | stale answers | p50 | p99 |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.phases {
            md.push_str(&format!(
                "| {} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {} | {} |\n",
                r.variant,
                r.phase,
                r.requests,
                r.ok_pct,
                r.ok_warm_pct,
                r.stale_pct,
                lab::units::millis(r.p50_ms),
                lab::units::millis(r.p99_ms)
            ));
        }
        md.push_str("\n| variant | fresh data again after PostgreSQL answers | p99 during the outage, breaker open | database calls during the outage |\n");
        md.push_str("|---|---:|---:|---:|\n");
        for (name, rec) in &self.recovery_ms {
            let open = self
                .breaker_open_p99_ms
                .iter()
                .find(|(n, _)| n == name)
                .map_or("–".to_string(), |(_, p)| {
                    p.map_or("never open".into(), lab::units::millis)
                });
            let calls = self
                .outage_db_attempts
                .iter()
                .find(|(n, _)| n == name)
                .map_or("–".to_string(), |(_, c)| c.to_string());
            md.push_str(&format!(
                "| {name} | {} | {open} | {calls} |\n",
                rec.map_or("not within the run".into(), lab::units::millis)
            ));
        }
        md
    }

    /// What the run shows, in sentences, against the lesson's bar: during
    /// the outage the stale-fallback service answers every request for a
    /// key it has cached, with a p99 under 10 ms once the breaker is open.
    pub fn findings(&self) -> String {
        let during = |v: usize| self.row(v, "during");
        let warm = |v: usize| during(v).map_or(0.0, |r| r.ok_warm_pct);
        let open_p99 = self
            .breaker_open_p99_ms
            .iter()
            .find(|(n, _)| n == VARIANTS[2])
            .and_then(|(_, p)| *p);
        let met = warm(2) >= 100.0 && open_p99.is_some_and(|p| p < 10.0);
        let recovery = |v: usize| {
            self.recovery_ms
                .get(v)
                .and_then(|(_, r)| *r)
                .map_or("not within the run".to_string(), lab::units::millis)
        };
        format!(
            "During the outage, requests for warm keys got a 2xx from {:.1}% (no cache), {:.1}% (cache-aside), \
             {:.1}% (stale fallback) and {:.1}% (cache-first). The stale-fallback service's p99 while its breaker \
             was open was {}. The bar (100% of warm keys, p99 under 10 ms with the breaker open) was **{}** in this run. \
             Fresh data came back {} (no cache), {} (cache-aside), {} (stale fallback) and {} (cache-first) \
             after PostgreSQL answered again.\n",
            warm(0),
            warm(1),
            warm(2),
            warm(3),
            open_p99.map_or(
                "not measured (the breaker never opened)".to_string(),
                lab::units::millis
            ),
            if met { "met" } else { "not met" },
            recovery(0),
            recovery(1),
            recovery(2),
            recovery(3),
        )
    }

    /// The timeline as CSV, one row per variant and bucket.
    pub fn timeline_csv(&self) -> String {
        let mut csv = String::from("variant,t_s,requests,ok_pct,p50_ms,p99_ms\n");
        for b in &self.timeline {
            csv.push_str(&format!(
                "{},{:.1},{},{:.1},{:.3},{:.3}\n",
                b.variant, b.t, b.requests, b.ok_pct, b.p50_ms, b.p99_ms
            ));
        }
        csv
    }

    /// A phase row, for the demo's summary and the tests.
    pub fn row(&self, variant: usize, phase: &str) -> Option<&PhaseRow> {
        self.phases
            .iter()
            .find(|r| r.variant == VARIANTS[variant] && r.phase == phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut [], 0.99), 0.0);
    }

    #[test]
    fn the_key_sequence_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng(42), Rng(42));
        for _ in 0..1000 {
            let x = a.range(501, 10_000);
            assert_eq!(x, b.range(501, 10_000));
            assert!((501..=10_000).contains(&x));
        }
    }

    fn sample(
        variant: usize,
        sent_ms: u64,
        status: u16,
        fresh: bool,
        breaker_open: bool,
    ) -> Sample {
        Sample {
            variant,
            sent: Duration::from_millis(sent_ms),
            took: Duration::from_millis(if fresh || status != 200 { 250 } else { 2 }),
            status,
            fresh,
            warm: true,
            breaker_open,
        }
    }

    /// A synthetic run: the outage from 5 s to 13 s; lesson 1 fails during
    /// it, lesson 3 answers stale, then fresh again from 14 s.
    pub(crate) fn synthetic() -> Report {
        let mut samples = Vec::new();
        for t in (0..20_000).step_by(100) {
            let down = (5_000..13_000).contains(&t);
            samples.push(sample(0, t, if down { 503 } else { 200 }, !down, false));
            samples.push(sample(1, t, if down { 503 } else { 200 }, !down, false));
            let stale = (5_000..14_000).contains(&t);
            samples.push(sample(2, t, 200, !stale, down && t >= 5_500));
            samples.push(sample(3, t, 200, !stale, down && t >= 5_500));
        }
        summarise(
            &Plan::short(),
            &samples,
            Duration::from_secs(5),
            Duration::from_secs(13),
            &[0, 0, 5, 4],
        )
    }

    #[test]
    fn phases_recovery_and_the_bar_are_computed_from_the_samples() {
        let r = synthetic();
        let during = r.row(0, "during").expect("row");
        assert_eq!((during.requests, during.ok_pct), (80, 0.0));
        assert_eq!(r.row(0, "before").expect("row").ok_pct, 100.0);
        let stale = r.row(2, "during").expect("row");
        assert_eq!((stale.ok_warm_pct, stale.stale_pct), (100.0, 100.0));
        assert_eq!(stale.p99_ms, 2.0);
        // Lesson 1's first fresh answer after 13 s was sent at 13.0 s and took 250 ms.
        assert_eq!(r.recovery_ms[0].1, Some(250.0));
        assert_eq!(r.recovery_ms[2].1, Some(1250.0));
        assert_eq!(r.outage_db_attempts[0], (VARIANTS[2].to_string(), 5));
        let text = r.findings();
        assert!(text.contains("**met**"), "{text}");
        let md = r.table_md();
        assert!(md.contains("| lesson 3: stale fallback | during | 80 | 100.0% | 100.0% | 100.0% | 2.0 ms | 2.0 ms |"), "{md}");
        let csv = r.timeline_csv();
        assert!(
            csv.starts_with("variant,t_s,requests,ok_pct,p50_ms,p99_ms\n"),
            "{csv}"
        );
        assert_eq!(
            csv.lines().count(),
            1 + 4 * 40,
            "4 variants × 40 half-second buckets"
        );
    }

    #[test]
    fn the_plans_make_keys_go_stale_during_the_outage() {
        for p in [Plan::short(), Plan::long()] {
            assert!(p.outage > p.soft_ttl * 2, "{p:?}");
            assert!(p.outage > p.breaker.open_for, "{p:?}");
            assert!(p.db_timeout > p.latency * 5, "{p:?}");
        }
    }
}
