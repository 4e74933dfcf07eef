//! `GET /metrics`: hits, misses, database queries and Redis errors, plus a
//! latency histogram, in Prometheus's text format.
//!
//! The counting goes through the `metrics` facade and the text comes from
//! `metrics-exporter-prometheus`, so nothing here formats Prometheus by hand.
//! Each `Metrics` has a recorder of its own rather than the process-global
//! one, so two services in one process (the tests run many) never add up
//! each other's counts.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::AppState;

pub const HITS: &str = "cache_hits_total";
pub const MISSES: &str = "cache_misses_total";
pub const DB_QUERIES: &str = "db_queries_total";
pub const REDIS_ERRORS: &str = "redis_errors_total";
pub const LATENCY: &str = "get_user_duration_seconds";

/// Buckets from a cache hit (well under a millisecond) to a slow database
/// (seconds), so both show up in the histogram.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.into()), BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            recorder: Arc::new(recorder),
            handle,
        };
        // Register every series at zero, so a dashboard sees them from the start.
        m.with(|| {
            for name in [HITS, MISSES, DB_QUERIES, REDIS_ERRORS] {
                metrics::counter!(name).absolute(0);
            }
        });
        Ok(m)
    }

    fn with(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(self.recorder.as_ref(), f);
    }

    pub fn hit(&self, took: Duration) {
        self.with(|| {
            metrics::counter!(HITS).increment(1);
            metrics::histogram!(LATENCY, "cache" => "hit").record(took.as_secs_f64());
        });
    }

    pub fn miss(&self, took: Duration) {
        self.with(|| {
            metrics::counter!(MISSES).increment(1);
            metrics::histogram!(LATENCY, "cache" => "miss").record(took.as_secs_f64());
        });
    }

    pub fn db_query(&self) {
        self.with(|| metrics::counter!(DB_QUERIES).increment(1));
    }

    pub fn redis_error(&self) {
        self.with(|| metrics::counter!(REDIS_ERRORS).increment(1));
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// One counter's value, read back from the rendered text: the same
    /// number a Prometheus scrape would see.
    pub fn counter(&self, name: &str) -> u64 {
        self.render()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// `GET /metrics`
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_per_service_and_prometheus_shaped() {
        let a = Metrics::new().expect("metrics");
        let b = Metrics::new().expect("metrics");
        a.db_query();
        a.db_query();
        a.hit(Duration::from_micros(300));
        assert_eq!(a.counter(DB_QUERIES), 2);
        assert_eq!(a.counter(HITS), 1);
        assert_eq!(
            b.counter(DB_QUERIES),
            0,
            "another service's counts stay its own"
        );
        let text = a.render();
        assert!(text.contains("# TYPE cache_hits_total counter"), "{text}");
        assert!(
            text.contains("get_user_duration_seconds_bucket{cache=\"hit\",le=\"0.0005\"} 1"),
            "{text}"
        );
    }
}
