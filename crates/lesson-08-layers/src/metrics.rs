//! `GET /metrics`: where each read was answered, what the invalidations
//! did, and the outbox, in Prometheus's text format (`lab::metrics`).

use axum::extract::State;
use axum::response::Response;
use lab::metrics::Registry;

use crate::AppState;

pub const L1_HITS: &str = "l1_hits_total";
pub const L2_HITS: &str = "l2_hits_total";
pub const MISSES: &str = "cache_misses_total";
pub const DB_QUERIES: &str = "db_queries_total";
pub const REDIS_ERRORS: &str = "redis_errors_total";
/// Fills Redis refused: a versioned fill older than the stored version, or
/// a lease fill whose lease a write deleted. Each is a stale set prevented.
pub const FILLS_REFUSED: &str = "fills_refused_total";
/// Values read from Redis older than an announced version: read again from
/// the database instead.
pub const L2_TOO_OLD: &str = "l2_older_than_announced_total";
/// Invalidation messages received (pub/sub or NOTIFY).
pub const INVALIDATIONS: &str = "invalidations_received_total";
/// Times L1 was dropped whole because the subscription was lost.
pub const L1_FLUSHES: &str = "l1_flushes_total";
/// Writes whose own invalidation failed, left to the outbox relay.
pub const QUEUED: &str = "invalidations_queued_total";
/// Changes the relay invalidated.
pub const RELAYED: &str = "outbox_relayed_total";
/// PUTs refused because too many writes were in flight.
pub const WRITES_SHED: &str = "writes_shed_total";

/// The service's counters, by what they mean.
#[derive(Clone, Debug)]
pub struct Metrics(Registry);

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        Ok(Metrics(Registry::new(
            &[
                L1_HITS,
                L2_HITS,
                MISSES,
                DB_QUERIES,
                REDIS_ERRORS,
                FILLS_REFUSED,
                L2_TOO_OLD,
                INVALIDATIONS,
                L1_FLUSHES,
                QUEUED,
                RELAYED,
                WRITES_SHED,
            ],
            &[],
        )?))
    }

    pub fn l1_hit(&self) {
        self.0.bump(L1_HITS);
    }
    pub fn l2_hit(&self) {
        self.0.bump(L2_HITS);
    }
    pub fn miss(&self) {
        self.0.bump(MISSES);
    }
    pub fn db_query(&self) {
        self.0.bump(DB_QUERIES);
    }
    pub fn redis_error(&self) {
        self.0.bump(REDIS_ERRORS);
    }
    pub fn fill_refused(&self) {
        self.0.bump(FILLS_REFUSED);
    }
    pub fn l2_too_old(&self) {
        self.0.bump(L2_TOO_OLD);
    }
    pub fn invalidation(&self) {
        self.0.bump(INVALIDATIONS);
    }
    pub fn l1_flush(&self) {
        self.0.bump(L1_FLUSHES);
    }
    pub fn queued(&self) {
        self.0.bump(QUEUED);
    }
    pub fn relayed(&self) {
        self.0.bump(RELAYED);
    }
    pub fn write_shed(&self) {
        self.0.bump(WRITES_SHED);
    }
    /// Sets a gauge (the client-side cache's own counts, the outbox length).
    pub fn set(&self, name: &'static str, value: f64) {
        self.0.set(name, value);
    }

    /// One counter's value, as a scrape would see it.
    pub fn value(&self, name: &str) -> u64 {
        self.0.value(name)
    }
}

/// `GET /metrics`, with the client-side cache's hit and invalidation
/// counts when the tracking design runs.
pub async fn render(State(state): State<AppState>) -> Response {
    if let Some(stats) = state.reads.get_cache_statistics() {
        state.metrics.set("client_cache_hits", stats.hit as f64);
        state.metrics.set("client_cache_misses", stats.miss as f64);
        state
            .metrics
            .set("client_cache_invalidations", stats.invalidate as f64);
    }
    state.metrics.0.response()
}
