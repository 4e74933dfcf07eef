//! Experiment 1: the herd. Hot keys expire under load, on a fleet of
//! instances, once per strategy; the database's loads are counted by the
//! service and by PostgreSQL itself.
//!
//! Why this shape:
//!
//! - **4 instances**, each with its own pool and its own single-flight
//!   map: single-flight is per process, so one instance would make it look
//!   as good as a lease. With four, it makes up to four loads per expiry,
//!   and the lease's one is visible as the difference.
//! - **64 closed-loop clients over 10 hot keys**: about six callers per key
//!   at any moment, each asking again as soon as it is answered, so every
//!   key is read hundreds of times a second and an expiry is always met
//!   by a crowd. Sixteen clients per instance against ten connections
//!   also lets the naive herd queue for the pool, as it would in
//!   production.
//! - **a 1 s TTL and 50 ms loads**: many expiries in a few seconds (each
//!   key expires once a second), and a load long enough that the whole
//!   crowd misses before the first fill lands.
//!
//! The same code runs [`super::baseline`]'s published shape.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fixture::{BUCKET, Fixture, POOL, closed_loop, get, timeline};
use crate::Strategy;
use crate::db::Queries;

pub const SHOWS: &str =
    "the database loads per expiry of a hot key, per strategy, on four instances";

/// One run's workload.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Shape {
    pub instances: usize,
    pub clients: usize,
    /// Users `1..=keys`; client `i` asks for `(i + k) % keys + 1` on its
    /// `k`-th request: every key always has its share of the clients.
    pub keys: i64,
    pub ttl: Duration,
    /// Spent inside PostgreSQL by every load (`pg_sleep`).
    pub latency: Duration,
    pub duration: Duration,
}

impl Shape {
    /// The herd: see the module's comment for why each number.
    pub fn herd(duration: Duration) -> Shape {
        Shape {
            instances: 4,
            clients: 64,
            keys: 10,
            ttl: Duration::from_secs(1),
            latency: Duration::from_millis(50),
            duration,
        }
    }

    /// How many loads a perfect cache makes: one per key per TTL started
    /// (the first fill included).
    pub fn ideal_refreshes(&self) -> u64 {
        let ttls = self
            .duration
            .as_millis()
            .div_ceil(self.ttl.as_millis().max(1));
        self.keys as u64 * ttls as u64
    }
}

/// One strategy's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HerdRow {
    pub strategy: Strategy,
    pub shape: Shape,
    pub requests: u64,
    /// Answers other than 200.
    pub errors: u64,
    /// Loads the service started (`Queries::total`, over the fleet).
    pub db_queries: u64,
    /// Loads PostgreSQL ran (`pg_stat_statements`), the check on the above.
    pub pg_calls: i64,
    /// Loads started while another load of the same user was running.
    pub overlapping: u64,
    pub misses: u64,
    pub coalesced: u64,
    pub early: u64,
    pub lease_timeouts: u64,
    pub redis_errors: u64,
    /// [`Shape::ideal_refreshes`].
    pub ideal_refreshes: u64,
    /// `db_queries / ideal_refreshes`.
    pub per_refresh: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Requests whose load found all of their instance's connections
    /// busy, and queued ([`super::fixture::Tally::queued`]).
    pub queued: u64,
    /// Loads started per [`BUCKET`] since the run began.
    pub timeline: Vec<u32>,
    pub bucket_ms: u64,
}

/// The herd, once per strategy.
pub async fn run(fx: &Fixture, duration: Duration) -> anyhow::Result<Vec<HerdRow>> {
    let shape = Shape::herd(duration);
    let mut rows = Vec::new();
    for strategy in Strategy::ALL {
        let row = run_one(fx, strategy, shape, "herd").await?;
        print_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// One line per run as it ends.
pub fn print_row(r: &HerdRow) {
    println!(
        "  {:<13} {:>6} requests, {:>4} DB loads ({:>4} by PostgreSQL's count), {:>5.1} per refresh, {:>4} simultaneous, p99 {}",
        r.strategy.name(),
        r.requests,
        r.db_queries,
        r.pg_calls,
        r.per_refresh,
        r.overlapping,
        lab::units::millis(r.p99_ms)
    );
}

/// `strategy` under `shape`. The clock starts with one read of each key,
/// all at once (the first fills, counted like any other load), and the
/// clients start when those are answered. Letting 64 clients find the
/// keys cold instead would open with a herd of another kind, which no
/// refresh can prevent (XFetch has nothing to refresh yet): every load in
/// the table is then the first fill or an expiry's, and a perfect cache
/// makes exactly `ideal_refreshes` of them.
pub async fn run_one(
    fx: &Fixture,
    strategy: Strategy,
    shape: Shape,
    name: &str,
) -> anyhow::Result<HerdRow> {
    let mut settings = fx.settings(strategy, name);
    settings.ttl = shape.ttl;
    settings.latency = shape.latency;
    let queries = Arc::new(Queries::recording());
    let fleet = fx.fleet(&settings, shape.instances, &queries).await?;
    let routers = fleet.routers();
    fx.pg.reset().await?;
    let keys = shape.keys;
    let t0 = Instant::now();
    let fills = (1..=keys).map(|id| {
        let router = routers[id as usize % routers.len()].clone();
        async move { (id, get(&router, id).await.status) }
    });
    for (id, status) in futures_util::future::join_all(fills).await {
        anyhow::ensure!(
            status == 200,
            "the first read of user {id} answered {status}"
        );
    }
    // Keys in a fixed rotation: client i starts at key i % keys + 1, so
    // the clients are spread over every key from the first request.
    let tally = closed_loop(&routers, shape.clients, t0 + shape.duration, move |i, k| {
        (i as i64 + k as i64) % keys + 1
    })
    .await?;
    let pg_calls = fx.pg_loads().await?;
    let c = fleet.counts();
    let starts = queries.take_log();
    fleet.close().await;
    let ideal = shape.ideal_refreshes();
    Ok(HerdRow {
        strategy,
        shape,
        requests: tally.requests,
        errors: tally.requests - tally.ok,
        db_queries: c.db_queries,
        pg_calls,
        overlapping: c.overlapping,
        misses: c.misses,
        coalesced: c.coalesced,
        early: c.early,
        lease_timeouts: c.lease_timeouts,
        redis_errors: c.redis_errors,
        ideal_refreshes: ideal,
        per_refresh: c.db_queries as f64 / ideal.max(1) as f64,
        p50_ms: tally.quantile_ms(0.5),
        p99_ms: tally.quantile_ms(0.99),
        max_ms: tally.quantile_ms(1.0),
        queued: tally.queued(POOL as usize),
        timeline: timeline(&starts, t0, shape.duration),
        bucket_ms: BUCKET.as_millis() as u64,
    })
}
