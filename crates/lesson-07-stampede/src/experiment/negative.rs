//! Experiment 4: ids that do not exist. Clients keep asking for 100 users
//! that were never created, with "not found" cached for 10 s and not at
//! all.
//!
//! Why this shape: 100 ids repeated (a typo in a link, a scraper going
//! round the same list) is the case a negative entry helps; 32 clients on
//! the four instances are enough that, uncached, every request is a
//! query, and 20 ms loads (a primary-key miss costs what a hit does) keep
//! the uncached run from being pure pool queueing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fixture::{Fixture, USERS, closed_loop, spread};
use crate::Strategy;
use crate::db::Queries;

pub const SHOWS: &str =
    "repeated requests for ids that do not exist, with and without negative caching";

pub const CLIENTS: usize = 32;
pub const INSTANCES: usize = 4;
pub const IDS: i64 = 100;
/// The first missing id: far above the seeded users.
pub const FIRST_ID: i64 = 900_001;
pub const LATENCY: Duration = Duration::from_millis(20);
/// The service's default, then off.
pub const NEGATIVE_TTLS: [Duration; 2] = [Duration::from_secs(10), Duration::ZERO];

/// One negative-TTL setting's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NegativeRow {
    pub negative_ttl_s: u64,
    pub ids: i64,
    pub clients: usize,
    pub instances: usize,
    pub latency_ms: u64,
    pub duration_ms: u64,
    pub requests: u64,
    /// Answers other than the expected 404.
    pub errors: u64,
    pub db_queries: u64,
    pub pg_calls: i64,
    pub negative_hits: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn run(fx: &Fixture, duration: Duration) -> anyhow::Result<Vec<NegativeRow>> {
    const { assert!(FIRST_ID > USERS) };
    let mut rows = Vec::new();
    for negative_ttl in NEGATIVE_TTLS {
        let row = run_one(fx, negative_ttl, duration).await?;
        println!(
            "  negative TTL {:>2} s  {:>6} requests, {:>5} DB loads ({:>5} by PostgreSQL's count), {:>6} negative hits, p50 {}, p99 {}",
            row.negative_ttl_s,
            row.requests,
            row.db_queries,
            row.pg_calls,
            row.negative_hits,
            lab::units::millis(row.p50_ms),
            lab::units::millis(row.p99_ms)
        );
        rows.push(row);
    }
    Ok(rows)
}

async fn run_one(
    fx: &Fixture,
    negative_ttl: Duration,
    duration: Duration,
) -> anyhow::Result<NegativeRow> {
    let mut settings = fx.settings(
        Strategy::SingleFlight,
        &format!("negative{}", negative_ttl.as_secs()),
    );
    settings.latency = LATENCY;
    settings.negative_ttl = negative_ttl;
    let queries = Arc::new(Queries::recording());
    let fleet = fx.fleet(&settings, INSTANCES, &queries).await?;
    let routers = fleet.routers();
    fx.pg.reset().await?;
    let t0 = Instant::now();
    // Spread, not in rotation: clients walking the ids in step would form
    // a convoy behind whichever asks for an id first, and the short run
    // would be spent loading the ids once instead of asking again.
    let tally = closed_loop(&routers, CLIENTS, t0 + duration, |i, k| {
        FIRST_ID - 1 + spread(k * CLIENTS as u64 + i as u64, IDS)
    })
    .await?;
    let pg_calls = fx.pg_loads().await?;
    let c = fleet.counts();
    fleet.close().await;
    Ok(NegativeRow {
        negative_ttl_s: negative_ttl.as_secs(),
        ids: IDS,
        clients: CLIENTS,
        instances: INSTANCES,
        latency_ms: LATENCY.as_millis() as u64,
        duration_ms: duration.as_millis() as u64,
        requests: tally.requests,
        errors: tally.requests - tally.not_found,
        db_queries: c.db_queries,
        pg_calls,
        negative_hits: c.negative_hits,
        p50_ms: tally.quantile_ms(0.5),
        p99_ms: tally.quantile_ms(0.99),
    })
}
