//! A Prometheus registry per service, for the lessons' `GET /metrics`.
//!
//! The counting goes through the `metrics` facade and the text comes from
//! `metrics-exporter-prometheus`, so nothing formats Prometheus by hand.
//! Each [`Registry`] has a recorder of its own rather than the process-wide
//! one, so two services in one process (the tests and experiments run many)
//! never add up each other's counts. A lesson's `metrics.rs` names its
//! series and wraps each count in a method; this module is the plumbing.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// One service's metrics.
#[derive(Clone)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    /// A registry whose `counters` start at zero, so a dashboard sees every
    /// series from the first scrape, and whose `histograms` get the given
    /// buckets (in seconds).
    pub fn new(
        counters: &[&'static str],
        histograms: &[(&str, &[f64])],
    ) -> anyhow::Result<Registry> {
        let mut builder = PrometheusBuilder::new();
        for (name, buckets) in histograms {
            builder = builder.set_buckets_for_metric(Matcher::Full((*name).into()), buckets)?;
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let registry = Registry {
            recorder: Arc::new(recorder),
            handle,
        };
        registry.record(|| {
            for name in counters {
                metrics::counter!(*name).absolute(0);
            }
        });
        Ok(registry)
    }

    /// Runs `f` with this registry as the recorder: `metrics::counter!` and
    /// friends inside it count here.
    pub fn record(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(self.recorder.as_ref(), f);
    }

    /// Adds one to a counter.
    pub fn bump(&self, name: &'static str) {
        self.record(|| metrics::counter!(name).increment(1));
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, value: f64) {
        self.record(|| metrics::gauge!(name).set(value));
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The text as a `GET /metrics` response.
    pub fn response(&self) -> Response {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            self.render(),
        )
            .into_response()
    }

    /// One unlabelled series' value, read back from the rendered text: the
    /// same number a Prometheus scrape would see.
    pub fn value(&self, name: &str) -> u64 {
        self.render()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_registry_and_prometheus_shaped() {
        let a = Registry::new(
            &["hits_total", "misses_total"],
            &[("took_seconds", &[0.001, 1.0])],
        )
        .expect("registry");
        let b = Registry::new(&["hits_total"], &[]).expect("registry");
        a.bump("hits_total");
        a.bump("hits_total");
        a.record(|| metrics::histogram!("took_seconds").record(0.0005));
        a.set("open", 1.0);
        assert_eq!(a.value("hits_total"), 2);
        assert_eq!(a.value("misses_total"), 0, "registered at zero");
        assert_eq!(a.value("open"), 1);
        assert_eq!(
            b.value("hits_total"),
            0,
            "another registry's counts stay its own"
        );
        let text = a.render();
        assert!(text.contains("# TYPE hits_total counter"), "{text}");
        assert!(
            text.contains("took_seconds_bucket{le=\"0.001\"} 1"),
            "{text}"
        );
    }
}
