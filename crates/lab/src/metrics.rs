//! A Prometheus registry per service, for the lessons' `GET /metrics`.
//!
//! The counting goes through the `metrics` facade and the text comes from
//! `metrics-exporter-prometheus`, so nothing formats Prometheus by hand.
//! Each [`Registry`] has a recorder of its own rather than the process-wide
//! one, so two services in one process (the tests and experiments run many)
//! never add up each other's counts. A lesson's `metrics.rs` names its
//! series and wraps each count in a method; this module is the plumbing.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// How often a histogram's recorded samples are folded into its buckets
/// when nobody scrapes (the exporter's own `install()` uses 5 s too).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// One service's metrics.
#[derive(Clone)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// The counters named at construction, looked up once: a handle is an
    /// atomic add, where `metrics::counter!(name)` builds a key, hashes it
    /// and takes a lock on every call.
    counters: Arc<HashMap<&'static str, Counter>>,
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
    ///
    /// Inside a Tokio runtime it also starts the upkeep task. The exporter
    /// keeps every histogram sample in memory until a scrape or an upkeep
    /// folds them into the buckets: a service that nobody scrapes would
    /// otherwise grow by a few bytes on every request, for ever.
    pub fn new(
        counters: &[&'static str],
        histograms: &[(&str, &[f64])],
    ) -> anyhow::Result<Registry> {
        let mut builder = PrometheusBuilder::new();
        for (name, buckets) in histograms {
            builder = builder.set_buckets_for_metric(Matcher::Full((*name).into()), buckets)?;
        }
        let recorder = Arc::new(builder.build_recorder());
        let handle = recorder.handle();
        let mut handles = HashMap::new();
        for &name in counters {
            let counter =
                metrics::with_local_recorder(recorder.as_ref(), || metrics::counter!(name));
            counter.absolute(0);
            handles.insert(name, counter);
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(upkeep(Arc::downgrade(&recorder)));
        }
        Ok(Registry {
            recorder,
            handle,
            counters: Arc::new(handles),
        })
    }

    /// A counter's handle, to keep and bump without a lookup.
    pub fn counter(&self, name: &'static str) -> Counter {
        match self.counters.get(name) {
            Some(c) => c.clone(),
            None => {
                metrics::with_local_recorder(self.recorder.as_ref(), || metrics::counter!(name))
            }
        }
    }

    /// A histogram's handle, with fixed labels, to keep and record into.
    pub fn histogram(
        &self,
        name: &'static str,
        labels: &[(&'static str, &'static str)],
    ) -> Histogram {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|&(k, v)| metrics::Label::from_static_parts(k, v))
            .collect();
        metrics::with_local_recorder(self.recorder.as_ref(), || metrics::histogram!(name, labels))
    }

    /// Runs `f` with this registry as the recorder: `metrics::counter!` and
    /// friends inside it count here.
    pub fn record(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(self.recorder.as_ref(), f);
    }

    /// Adds one to a counter (through its handle when it was named at
    /// construction).
    pub fn bump(&self, name: &'static str) {
        match self.counters.get(name) {
            Some(c) => c.increment(1),
            None => self.record(|| metrics::counter!(name).increment(1)),
        }
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

/// Folds the recorded histogram samples into their buckets every
/// [`UPKEEP_EVERY`], until the registry is dropped.
async fn upkeep(recorder: Weak<PrometheusRecorder>) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match recorder.upgrade() {
            Some(r) => r.handle().run_upkeep(),
            None => return,
        }
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
