//! `GET /metrics`: hits, misses, database queries, Redis errors and PUTs
//! shed for too many writes in flight, plus a latency histogram, in Prometheus's text format.
//!
//! The series are named here; the registry behind them (one per service, so
//! tests that run many services in one process never mix their counts) is
//! `lab::metrics::Registry`.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use lab::metrics::Registry;
use metrics::{Counter, Histogram};

use crate::AppState;

pub const HITS: &str = "cache_hits_total";
pub const MISSES: &str = "cache_misses_total";
pub const DB_QUERIES: &str = "db_queries_total";
pub const REDIS_ERRORS: &str = "redis_errors_total";
/// PUTs refused with a 503 because `MAX_WRITES_IN_FLIGHT` were running.
pub const WRITES_SHED: &str = "writes_shed_total";
pub const LATENCY: &str = "get_user_duration_seconds";

/// Buckets from a cache hit (well under a millisecond) to a slow database
/// (seconds), so both show up in the histogram.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The service's counters, by what they mean. The hit path's handles are
/// looked up once, here: `metrics::counter!(HITS)` on every request would
/// build a key, hash it and take a lock each time, for the same counter.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    hits: Counter,
    misses: Counter,
    hit_latency: Histogram,
    miss_latency: Histogram,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new(
            &[HITS, MISSES, DB_QUERIES, REDIS_ERRORS, WRITES_SHED],
            &[(LATENCY, BUCKETS)],
        )?;
        Ok(Metrics {
            hits: registry.counter(HITS),
            misses: registry.counter(MISSES),
            hit_latency: registry.histogram(LATENCY, &[("cache", "hit")]),
            miss_latency: registry.histogram(LATENCY, &[("cache", "miss")]),
            registry,
        })
    }

    pub fn hit(&self, took: Duration) {
        self.hits.increment(1);
        self.hit_latency.record(took.as_secs_f64());
    }

    pub fn miss(&self, took: Duration) {
        self.misses.increment(1);
        self.miss_latency.record(took.as_secs_f64());
    }

    pub fn db_query(&self) {
        self.registry.bump(DB_QUERIES);
    }

    pub fn redis_error(&self) {
        self.registry.bump(REDIS_ERRORS);
    }

    pub fn write_shed(&self) {
        self.registry.bump(WRITES_SHED);
    }

    /// One counter's value, as a Prometheus scrape would see it.
    pub fn counter(&self, name: &str) -> u64 {
        self.registry.value(name)
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

/// `GET /metrics`
pub async fn render(State(state): State<AppState>) -> Response {
    state.metrics.registry.response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_separates_hits_from_misses() {
        let m = Metrics::new().expect("metrics");
        m.db_query();
        m.hit(Duration::from_micros(300));
        assert_eq!(m.counter(DB_QUERIES), 1);
        assert_eq!(m.counter(HITS), 1);
        let text = m.render();
        assert!(
            text.contains("get_user_duration_seconds_bucket{cache=\"hit\",le=\"0.0005\"} 1"),
            "{text}"
        );
    }
}
