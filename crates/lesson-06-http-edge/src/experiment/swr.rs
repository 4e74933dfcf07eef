//! Experiment 4, stale-while-revalidate: an entry that has just expired,
//! under load from many clients at once. With `proxy_cache_background_update`
//! (and stale allowed while `updating`) every client keeps getting the old
//! copy at cache speed while one subrequest refreshes it; then HITs. The
//! comparison turns the background refresh off and leaves stale serving to
//! the origin's `stale-while-revalidate` header alone: whoever finds the
//! entry expired first waits for the origin. And a baseline with no stale
//! serving at all (`stale-while-revalidate=0`, `proxy_cache_use_stale off`):
//! every client that finds the entry expired goes to the origin and waits
//! (`proxy_cache_lock` only guards a *new* entry, not an expired one).
//!
//! The verdict is the origin's count for the key during the load (one
//! refresh); the latencies are the measurement.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, client, get, quantile_ms, tally, tally_text};
use crate::edge::UseStale;
use crate::origin::{OriginSettings, USERS};
use crate::policy::Lifetimes;

/// One variant under load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwrRow {
    pub variant: String,
    pub clients: usize,
    pub seconds: f64,
    pub answers: usize,
    pub errors: usize,
    pub statuses: Vec<(String, usize)>,
    /// Requests that reached the origin during the load: the refreshes.
    pub origin_requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers that took at least half the origin's latency: the ones
    /// that waited for it.
    pub waited: usize,
    /// The slowest answer's `X-Cache-Status`.
    pub slowest_status: String,
    /// The fill, a MISS through the edge: what an answer from the origin costs.
    pub miss_ms: f64,
}

/// Both variants, with the settings they shared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwrResults {
    pub s_maxage_s: u64,
    pub stale_while_revalidate_s: u64,
    pub origin_latency_ms: u64,
    pub rows: Vec<SwrRow>,
}

/// Name, `proxy_cache_background_update`, `proxy_cache_use_stale`, and
/// the origin's `stale-while-revalidate`.
const VARIANTS: [(&str, bool, UseStale, u64); 3] = [
    (
        "background update on (chapter)",
        true,
        UseStale::Directive,
        SWR_S,
    ),
    (
        "background update off, origin's header only",
        false,
        UseStale::OriginHeaders,
        SWR_S,
    ),
    ("no stale serving at all", false, UseStale::OriginHeaders, 0),
];
/// Long enough that the entry stays within it for the whole experiment.
const SWR_S: u64 = 60;

/// Fills both edges together, waits until both entries have expired, then
/// loads one and then the other (both still within stale-while-revalidate).
pub async fn run(fx: &Fixture, plan: &Plan) -> anyhow::Result<SwrResults> {
    let http = client()?;
    let mut setups = Vec::new();
    for (_, background, use_stale, swr) in VARIANTS {
        let settings = OriginSettings {
            latency: plan.swr_latency,
            lifetimes: Lifetimes {
                browser: Duration::ZERO,
                edge: plan.swr_s_maxage,
                stale_while_revalidate: Duration::from_secs(swr),
                stale_if_error: Duration::ZERO,
            },
            ..OriginSettings::default()
        };
        let origin = fx.origin(settings).await?;
        let edge = origin
            .edge(|c| {
                c.background_update = background;
                c.use_stale = use_stale;
            })
            .await?;
        let url = format!("{}/users/33", edge.base_url());
        let fill = get(&http, &url, &[]).await;
        anyhow::ensure!(fill.status == 200, "the fill failed ({})", fill.status);
        setups.push((origin, edge, url, fill.took));
    }
    // nginx counts lifetimes in whole seconds: one more makes sure it expired.
    tokio::time::sleep(plan.swr_s_maxage + Duration::from_millis(1100)).await;
    let mut rows = Vec::new();
    for ((name, ..), (origin, _edge, url, miss)) in VARIANTS.into_iter().zip(setups) {
        let before = origin.handle.count(USERS);
        let hits = load(&http, &url, plan.swr_clients, plan.swr_for).await?;
        let took: Vec<Duration> = hits.iter().map(|h| h.took).collect();
        let row = SwrRow {
            variant: name.into(),
            clients: plan.swr_clients,
            seconds: plan.swr_for.as_secs_f64(),
            answers: hits.len(),
            errors: hits.iter().filter(|h| h.status != 200).count(),
            statuses: tally(hits.iter().map(|h| h.cache.as_str())),
            origin_requests: origin.handle.count(USERS) - before,
            p50_ms: quantile_ms(&took, 0.5),
            p99_ms: quantile_ms(&took, 0.99),
            max_ms: quantile_ms(&took, 1.0),
            waited: took.iter().filter(|t| **t >= plan.swr_latency / 2).count(),
            slowest_status: hits
                .iter()
                .max_by_key(|h| h.took)
                .map_or("-".into(), |h| h.cache.clone()),
            miss_ms: miss.as_secs_f64() * 1000.0,
        };
        println!(
            "  {name:<45} {} answers, {} waited, p50 {:.1} ms, max {:.0} ms ({}), {} origin request(s) ({})",
            row.answers,
            row.waited,
            row.p50_ms,
            row.max_ms,
            row.slowest_status,
            row.origin_requests,
            tally_text(&row.statuses)
        );
        rows.push(row);
    }
    Ok(SwrResults {
        s_maxage_s: plan.swr_s_maxage.as_secs(),
        stale_while_revalidate_s: SWR_S,
        origin_latency_ms: plan.swr_latency.as_millis() as u64,
        rows,
    })
}

/// `clients` closed loops on one URL for `dur`: bounded in time and count.
async fn load(
    http: &reqwest::Client,
    url: &str,
    clients: usize,
    dur: Duration,
) -> anyhow::Result<Vec<super::fixture::Hit>> {
    let until = Instant::now() + dur;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_string());
            tokio::spawn(async move {
                let mut out = Vec::new();
                while Instant::now() < until && out.len() < 100_000 {
                    out.push(get(&http, &url, &[]).await);
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    Ok(all)
}
