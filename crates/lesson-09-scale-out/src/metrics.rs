//! `GET /metrics`: how each read was answered and where its fill came
//! from, in Prometheus's text format (`lab::metrics`).

use axum::extract::State;
use axum::response::Response;
use lab::metrics::Registry;

use crate::AppState;
use crate::replica::Source;

/// Answered from Redis (on a master, or a replica with `replica-reads`).
pub const HITS: &str = "cache_hits_total";
/// Redis answered: no such key.
pub const MISSES: &str = "cache_misses_total";
/// Redis calls that failed or timed out (GET, SET, DEL): each GET among
/// them was answered from the database, as a miss.
pub const REDIS_ERRORS: &str = "redis_errors_total";
/// Cache fills read from the primary, and from the replica.
pub const FILLS_PRIMARY: &str = "fills_from_primary_total";
pub const FILLS_REPLICA: &str = "fills_from_replica_total";
/// `PUT`s that reached the database.
pub const WRITES: &str = "writes_total";

/// The service's counters, by what they mean.
#[derive(Clone, Debug)]
pub struct Metrics(Registry);

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        Ok(Metrics(Registry::new(
            &[
                HITS,
                MISSES,
                REDIS_ERRORS,
                FILLS_PRIMARY,
                FILLS_REPLICA,
                WRITES,
            ],
            &[],
        )?))
    }

    pub fn hit(&self) {
        self.0.bump(HITS);
    }
    pub fn miss(&self) {
        self.0.bump(MISSES);
    }
    pub fn redis_error(&self) {
        self.0.bump(REDIS_ERRORS);
    }
    pub fn fill(&self, source: Source) {
        self.0.bump(match source {
            Source::Primary => FILLS_PRIMARY,
            Source::Replica => FILLS_REPLICA,
        });
    }
    pub fn write(&self) {
        self.0.bump(WRITES);
    }

    /// One counter's value, as a scrape would see it.
    pub fn value(&self, name: &str) -> u64 {
        self.0.value(name)
    }
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    state.metrics.0.response()
}
