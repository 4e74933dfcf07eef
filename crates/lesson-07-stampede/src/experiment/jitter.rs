//! Experiment 3: mass expiry. A warm-up writes 1,000 keys within half a
//! second, as a deploy or a cache restart does; one TTL later they all
//! come back to the database together, unless each entry's TTL was cut by
//! a random share (TTL jitter).
//!
//! Why this shape:
//!
//! - **leases**, so that what is measured is many keys at once, not the
//!   herd on each (experiment 1's): one load per expired key, fleet-wide.
//!   With single-flight, a key that expires while the fleet is busy is
//!   loaded by several instances, which blurs the comparison (tried:
//!   jitter then *added* loads, because entries live shorter);
//! - **1,000 keys, 20 ms loads, 40 connections**: the warm-up's 1,000
//!   loads take at least 0.5 s of the pools' time, so the batch is written
//!   within about half a second, and its expiry is as bunched;
//! - **a 4 s TTL**: the whole batch expires inside the run (after a short
//!   warm-up), and 50% jitter spreads it over 2 s, three times the
//!   warm-up's own spread (25% was tried: 1 s, too close to the warm-up's
//!   to show much);
//! - **64 clients over uniformly spread keys**: every key is read every
//!   few tens of ms, so an expired key is reloaded within a bucket of its
//!   expiry, and the timeline shows when the entries expired.
//!
//! What it measures is the database's side: how many loads arrive per
//! 100 ms. The clients' latency moves little: 64 closed-loop clients can
//! have at most 64 loads waiting, against 40 connections, so the storm
//! queues briefly however bunched it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fixture::{BUCKET, Fixture, closed_loop, get, spread, timeline};
use crate::Strategy;
use crate::db::Queries;

pub const SHOWS: &str =
    "1,000 keys written together expire together, unless their TTLs are jittered";

pub const KEYS: i64 = 1_000;
pub const CLIENTS: usize = 64;
pub const INSTANCES: usize = 4;
pub const TTL: Duration = Duration::from_secs(4);
pub const LATENCY: Duration = Duration::from_millis(20);
/// Off, then half the TTL: entries live 2 to 4 s.
pub const JITTERS: [f64; 2] = [0.0, 0.5];

/// One jitter setting's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JitterRow {
    pub jitter: f64,
    pub keys: i64,
    pub clients: usize,
    pub instances: usize,
    pub ttl_ms: u64,
    pub latency_ms: u64,
    /// How long the warm-up's fills took, and how many loads it made.
    pub warmup_ms: f64,
    pub warmup_loads: u64,
    /// The measured part, after the warm-up.
    pub duration_ms: u64,
    pub requests: u64,
    pub errors: u64,
    pub db_queries: u64,
    pub pg_calls: i64,
    /// The most loads started in one [`BUCKET`], and when (s after the
    /// warm-up).
    pub peak: u32,
    pub peak_at_s: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Loads per bucket since the end of the warm-up.
    pub timeline: Vec<u32>,
    pub bucket_ms: u64,
}

pub async fn run(fx: &Fixture, duration: Duration) -> anyhow::Result<Vec<JitterRow>> {
    let mut rows = Vec::new();
    for jitter in JITTERS {
        let row = run_one(fx, jitter, duration).await?;
        println!(
            "  jitter {:<4}  warm-up {:>4.0} ms, then {:>4} DB loads, at most {:>3} in {} ms ({:.1} s in), p99 {}, max {}",
            row.jitter,
            row.warmup_ms,
            row.db_queries,
            row.peak,
            row.bucket_ms,
            row.peak_at_s,
            lab::units::millis(row.p99_ms),
            lab::units::millis(row.max_ms)
        );
        rows.push(row);
    }
    Ok(rows)
}

async fn run_one(fx: &Fixture, jitter: f64, duration: Duration) -> anyhow::Result<JitterRow> {
    let mut settings = fx.settings(Strategy::Lease, &format!("jitter{jitter}"));
    settings.ttl = TTL;
    settings.latency = LATENCY;
    settings.jitter = jitter;
    let queries = Arc::new(Queries::recording());
    let fleet = fx.fleet(&settings, INSTANCES, &queries).await?;
    let routers = fleet.routers();

    // The warm-up: every key once, the keys dealt out to the clients,
    // each client as fast as its answers come.
    let started = Instant::now();
    let warm: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let router = routers[c % routers.len()].clone();
            tokio::spawn(async move {
                let mut bad = 0u64;
                for id in (c as i64 + 1..=KEYS).step_by(CLIENTS) {
                    if get(&router, id).await.status != 200 {
                        bad += 1;
                    }
                }
                bad
            })
        })
        .collect();
    let mut bad = 0;
    for w in warm {
        bad += w.await?;
    }
    anyhow::ensure!(bad == 0, "{bad} warm-up requests failed");
    let warmup_ms = started.elapsed().as_secs_f64() * 1000.0;
    let warmed = fleet.counts();
    queries.take_log();
    fx.pg.reset().await?;

    let t0 = Instant::now();
    let tally = closed_loop(&routers, CLIENTS, t0 + duration, |i, k| {
        spread(k * CLIENTS as u64 + i as u64, KEYS)
    })
    .await?;
    let pg_calls = fx.pg_loads().await?;
    let db_queries = fleet.counts().since(&warmed).db_queries;
    let starts = queries.take_log();
    fleet.close().await;
    let timeline = timeline(&starts, t0, duration);
    let (peak_i, peak) = timeline
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
        .unwrap_or((0, 0));
    Ok(JitterRow {
        jitter,
        keys: KEYS,
        clients: CLIENTS,
        instances: INSTANCES,
        ttl_ms: TTL.as_millis() as u64,
        latency_ms: LATENCY.as_millis() as u64,
        warmup_ms,
        warmup_loads: warmed.db_queries,
        duration_ms: duration.as_millis() as u64,
        requests: tally.requests,
        errors: tally.requests - tally.ok,
        db_queries,
        pg_calls,
        peak,
        peak_at_s: (peak_i as u64 * BUCKET.as_millis() as u64) as f64 / 1000.0,
        p99_ms: tally.quantile_ms(0.99),
        max_ms: tally.quantile_ms(1.0),
        timeline,
        bucket_ms: BUCKET.as_millis() as u64,
    })
}
