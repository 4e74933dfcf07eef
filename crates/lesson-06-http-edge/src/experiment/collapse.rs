//! Experiment 2, request collapsing: N clients ask for the same cold key at
//! the same moment. With `proxy_cache_lock` one of them goes to the origin
//! and the others wait for its answer; without it, all N do. And a lock
//! that gives up sooner than the origin answers (`proxy_cache_lock_timeout`)
//! lets the waiters through: they reach the origin after all, uncached.
//!
//! The verdict is the origin's own count of `GET /users/{id}`, not a time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, client, counted, get, quantile_ms, tally, tally_text};
use crate::origin::{OriginSettings, USERS};

/// What this experiment shows, in plain words: the demo prints it under
/// the heading.
pub const SHOWS: &str =
    "whether N clients asking at once for a page the edge lacks cost the origin 1 request or N.";

/// One run of N concurrent cold requests.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CollapseRow {
    pub variant: String,
    pub clients: usize,
    pub origin_latency_ms: u64,
    /// `None`: no lock.
    pub lock_timeout_ms: Option<u64>,
    /// Requests that reached the origin: the verdict.
    pub origin_requests: u64,
    /// The edge's `X-Cache-Status` values with their counts.
    pub statuses: Vec<(String, usize)>,
    /// Answers that were not 200.
    pub errors: usize,
    pub p50_ms: f64,
    pub max_ms: f64,
}

/// The three variants, one after the other, each with a fresh origin and edge.
pub async fn run(fx: &Fixture, plan: &Plan) -> anyhow::Result<Vec<CollapseRow>> {
    let long_lock = Duration::from_secs(5);
    let variants = [
        ("lock on", Some(long_lock), plan.collapse_latency),
        ("lock off", None, plan.collapse_latency),
        (
            "lock timeout < origin latency",
            Some(plan.lock_timeout),
            plan.slow_origin,
        ),
    ];
    let mut rows = Vec::new();
    for (i, (name, lock, latency)) in variants.into_iter().enumerate() {
        let row = one(
            fx,
            name,
            plan.collapse_clients,
            lock,
            latency,
            10 + i as i64,
        )
        .await?;
        println!(
            "  {name:<30} {} clients → {} ({})",
            row.clients,
            counted(row.origin_requests, "origin request"),
            tally_text(&row.statuses)
        );
        rows.push(row);
    }
    Ok(rows)
}

async fn one(
    fx: &Fixture,
    variant: &str,
    clients: usize,
    lock: Option<Duration>,
    latency: Duration,
    id: i64,
) -> anyhow::Result<CollapseRow> {
    let origin = fx
        .origin(OriginSettings {
            latency,
            ..OriginSettings::default()
        })
        .await?;
    let edge = origin
        .edge(|c| {
            c.lock = lock.is_some();
            if let Some(t) = lock {
                c.lock_timeout = t;
            }
        })
        .await?;
    let http = client()?;
    let url = format!("{}/users/{id}", edge.base_url());
    // All N start together: a barrier, so none of them finds the entry
    // already filled by an early one.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(clients));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, barrier) = (http.clone(), url.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                get(&http, &url, &[]).await
            })
        })
        .collect();
    let mut hits = Vec::with_capacity(clients);
    for t in tasks {
        hits.push(t.await?);
    }
    let took: Vec<Duration> = hits.iter().map(|h| h.took).collect();
    Ok(CollapseRow {
        variant: variant.to_string(),
        clients,
        origin_latency_ms: latency.as_millis() as u64,
        lock_timeout_ms: lock.map(|t| t.as_millis() as u64),
        origin_requests: origin.handle.count(USERS),
        statuses: tally(hits.iter().map(|h| h.cache.as_str())),
        errors: hits.iter().filter(|h| h.status != 200).count(),
        p50_ms: quantile_ms(&took, 0.5),
        max_ms: quantile_ms(&took, 1.0),
    })
}
