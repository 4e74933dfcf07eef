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
//!
//! The experiment is in three parts: this module holds the plan, the
//! vocabulary both halves share ([`VARIANTS`], a sample, the results) and
//! [`run`], which connects them; `load` serves the four variants and sends
//! them the load; `summary` turns the samples into phases, a timeline and
//! tables. `load` and `summary` know nothing of each other.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use serde::{Deserialize, Serialize};

use crate::breaker::{BreakerConfig, FailureRate};

mod load;
mod sick;
mod summary;

pub use load::warm;
use load::{db_attempts, drive, serve_variants};
pub use sick::{SickPlan, SickResults, SickRow, run_sick};
use summary::summarise;
pub use summary::{Bucket, PhaseRow};

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
                rate: Some(FailureRate::DEFAULT),
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
                rate: Some(FailureRate::DEFAULT),
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

/// What one run found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutageResults {
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

/// `cargo bench` (the `outage` bench target) writes the results to
/// `target/lab-experiments/outage.json`; `just report` reads them from there.
impl lab::results::Results for OutageResults {
    const FILE: &'static str = "outage.json";
}

// ANCHOR: run
/// Runs the experiment. `progress` prints a line per second when set.
pub async fn run(plan: &Plan, progress: bool) -> anyhow::Result<OutageResults> {
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
    .context("the outage experiment needs a private PostgreSQL (the local initdb and postgres, or Docker)")?;
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
    let caching: Vec<String> = targets[1..].iter().map(|t| t.base.clone()).collect();
    warm(&client, &caching, plan.warm).await?;

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
        println!("{}", summary::ticker_line(&all, from, to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plans_make_keys_go_stale_during_the_outage() {
        for p in [Plan::short(), Plan::long()] {
            assert!(p.outage > p.soft_ttl * 2, "{p:?}");
            assert!(p.outage > p.breaker.open_for, "{p:?}");
            assert!(p.db_timeout > p.latency * 5, "{p:?}");
        }
    }
}
