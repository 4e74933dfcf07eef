//! `GET /metrics`: how each read was answered, in Prometheus's text
//! format (`lab::metrics`). The database's own counts are in
//! [`crate::db::Queries`].

use axum::extract::State;
use axum::response::Response;
use lab::metrics::Registry;

use crate::AppState;

/// Answered from a fresh entry in Redis (a negative one included).
pub const HITS: &str = "cache_hits_total";
/// Found no entry in Redis.
pub const MISSES: &str = "cache_misses_total";
/// Of those, the answers that came from another request's load (single-
/// flight waiters, lease waiters) instead of a query of their own.
pub const COALESCED: &str = "coalesced_total";
/// XFetch: fresh entries recomputed early by the read that drew it.
pub const EARLY: &str = "early_recomputes_total";
/// `404`s answered from a negative entry, without the database.
pub const NEGATIVE_HITS: &str = "negative_hits_total";
/// Lease waiters that gave up waiting and loaded themselves.
pub const LEASE_TIMEOUTS: &str = "lease_timeouts_total";
/// Lease fills Redis refused: the lease was deleted (an invalidation) or
/// had expired.
pub const FILLS_REFUSED: &str = "fills_refused_total";
pub const DB_QUERIES: &str = "db_queries_total";
pub const REDIS_ERRORS: &str = "redis_errors_total";

/// The service's counters, by what they mean.
#[derive(Clone, Debug)]
pub struct Metrics(Registry);

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        Ok(Metrics(Registry::new(
            &[
                HITS,
                MISSES,
                COALESCED,
                EARLY,
                NEGATIVE_HITS,
                LEASE_TIMEOUTS,
                FILLS_REFUSED,
                DB_QUERIES,
                REDIS_ERRORS,
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
    pub fn coalesced(&self) {
        self.0.bump(COALESCED);
    }
    pub fn early(&self) {
        self.0.bump(EARLY);
    }
    pub fn negative_hit(&self) {
        self.0.bump(NEGATIVE_HITS);
    }
    pub fn lease_timeout(&self) {
        self.0.bump(LEASE_TIMEOUTS);
    }
    pub fn fill_refused(&self) {
        self.0.bump(FILLS_REFUSED);
    }
    pub fn db_query(&self) {
        self.0.bump(DB_QUERIES);
    }
    pub fn redis_error(&self) {
        self.0.bump(REDIS_ERRORS);
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
