//! Experiment 5, revalidation: `GET /big` (1 MiB) expires at the edge
//! almost at once. With `proxy_cache_revalidate on` nginx refreshes it with
//! `If-None-Match`, and the unchanged body costs the origin a 304 with no
//! body; off, every refresh downloads the whole MiB again. The counts come
//! from the origin ([`BIG`], [`NOT_MODIFIED`]); the time per refresh is
//! measured too, but on loopback a MiB costs next to nothing to copy, so
//! it is within noise either way: the gain this shows is the bytes the
//! origin did not send (and, across a real network, the time they take).
//!
//! Then the same question one hop nearer the user: a client that sends the
//! edge its `If-None-Match` gets a 304 from the edge, and no body.

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, client, get, quantile_ms, tally, tally_text};
use crate::edge::UseStale;
use crate::origin::{BIG, NOT_MODIFIED, OriginSettings};

/// What this experiment shows, in plain words: the demo prints it under
/// the heading.
pub const SHOWS: &str = "what refreshing an unchanged 1 MiB page costs the origin: a 304 without a body, or the body again.";

/// One setting of `proxy_cache_revalidate` over K expiries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevalidateRow {
    pub revalidate: bool,
    pub refreshes: usize,
    /// The edge's status on each refresh (REVALIDATED, EXPIRED, MISS, …).
    pub statuses: Vec<(String, usize)>,
    /// Origin answers during the refreshes: 200s with the body, 304s without.
    pub origin_full: u64,
    pub origin_304: u64,
    /// Body bytes the origin sent for the refreshes.
    pub origin_body_bytes: u64,
    pub median_refresh_ms: f64,
}

/// Both settings and the client's own conditional GET.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevalidateResults {
    pub body_bytes: u64,
    pub rows: Vec<RevalidateRow>,
    /// The edge's answer to a client's matching `If-None-Match`.
    pub client_status: u16,
    pub client_bytes: u64,
    pub client_ms: f64,
    /// The same GET without it: the body, in full.
    pub client_full_bytes: u64,
    pub client_full_ms: f64,
}

/// Both settings at once (their own origins), so they share the waits.
pub async fn run(fx: &Fixture, plan: &Plan) -> anyhow::Result<RevalidateResults> {
    let body_bytes = OriginSettings::default().big_bytes as u64;
    let (on, off) = tokio::join!(one(fx, plan, true), one(fx, plan, false));
    let (on, (status, bytes, ms, full_bytes, full_ms)) = on?;
    let (off, _) = off?;
    for r in [&on, &off] {
        println!(
            "  proxy_cache_revalidate {:<3} {} refreshes: origin sent {} × 200 and {} × 304 ({} of body), median {:.1} ms ({})",
            if r.revalidate { "on" } else { "off" },
            r.refreshes,
            r.origin_full,
            r.origin_304,
            lab::units::kib_or_mib(r.origin_body_bytes),
            r.median_refresh_ms,
            tally_text(&r.statuses)
        );
    }
    println!("  {}", bytes_not_time(&on, &off));
    println!(
        "  a client's If-None-Match at the edge → {status}, {bytes} bytes, median {ms:.1} ms (without it: {} in {full_ms:.1} ms)",
        lab::units::kib_or_mib(full_bytes)
    );
    Ok(RevalidateResults {
        body_bytes,
        rows: vec![on, off],
        client_status: status,
        client_bytes: bytes,
        client_ms: ms,
        client_full_bytes: full_bytes,
        client_full_ms: full_ms,
    })
}

/// What the two rows show, stated as bytes and not as time: on loopback
/// the time per refresh is within noise, whichever is smaller.
pub fn bytes_not_time(on: &RevalidateRow, off: &RevalidateRow) -> String {
    format!(
        "the gain is the body bytes from the origin ({} with revalidation, {} without), not time: \
         on loopback a refresh takes about as long either way ({:.0} vs {:.0} ms, within noise)",
        lab::units::kib_or_mib(on.origin_body_bytes),
        lab::units::kib_or_mib(off.origin_body_bytes),
        on.median_refresh_ms,
        off.median_refresh_ms
    )
}

type ClientSide = (u16, u64, f64, u64, f64);

async fn one(
    fx: &Fixture,
    plan: &Plan,
    revalidate: bool,
) -> anyhow::Result<(RevalidateRow, ClientSide)> {
    let settings = OriginSettings::default();
    let body = settings.big_bytes as u64;
    let origin = fx.origin(settings).await?;
    let edge = origin
        .edge(|c| {
            c.revalidate = revalidate;
            // The refresh in the client's own request, so its time is the
            // refresh's: with the chapter's background update the client
            // would get the stale copy at once and the refresh go unseen.
            c.background_update = false;
            c.use_stale = UseStale::OriginHeaders;
        })
        .await?;
    let http = client()?;
    let url = format!("{}/big", edge.base_url());
    let fill = get(&http, &url, &[]).await;
    anyhow::ensure!(
        fill.status == 200,
        "the fill of /big failed ({})",
        fill.status
    );
    let (full0, nm0) = (origin.handle.count(BIG), origin.handle.count(NOT_MODIFIED));
    let mut hits = Vec::new();
    for _ in 0..plan.refreshes {
        // Past the entry's lifetime, in nginx's whole seconds.
        tokio::time::sleep(plan.big_wait).await;
        hits.push(get(&http, &url, &[]).await);
    }
    let nm = origin.handle.count(NOT_MODIFIED) - nm0;
    let full = origin.handle.count(BIG) - full0 - nm;
    let took: Vec<Duration> = hits.iter().map(|h| h.took).collect();
    let row = RevalidateRow {
        revalidate,
        refreshes: hits.len(),
        statuses: tally(hits.iter().map(|h| h.cache.as_str())),
        origin_full: full,
        origin_304: nm,
        origin_body_bytes: full * body,
        median_refresh_ms: quantile_ms(&took, 0.5),
    };
    // The client side, right after a refresh: the edge answers from its copy.
    let resp = http.get(&url).send().await.context("GET /big")?;
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    drop(resp);
    // Alternated, five each, the median of each: one sample could be the
    // one that found the entry expired and refreshed it first.
    let (mut fulls, mut conds) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        fulls.push(get(&http, &url, &[]).await);
        conds.push(get(&http, &url, &[("if-none-match", etag.as_str())]).await);
    }
    let median = |hs: &[super::fixture::Hit]| {
        quantile_ms(&hs.iter().map(|h| h.took).collect::<Vec<_>>(), 0.5)
    };
    // The worst of each: any 200 among the conditional GETs shows.
    let cond = conds
        .iter()
        .max_by_key(|h| h.bytes)
        .cloned()
        .context("no answers")?;
    let full = fulls
        .iter()
        .min_by_key(|h| h.bytes)
        .cloned()
        .context("no answers")?;
    let client_side = (
        cond.status,
        cond.bytes as u64,
        median(&conds),
        full.bytes as u64,
        median(&fulls),
    );
    Ok((row, client_side))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(revalidate: bool, bytes: u64, ms: f64) -> RevalidateRow {
        RevalidateRow {
            revalidate,
            refreshes: 3,
            statuses: Vec::new(),
            origin_full: bytes >> 20,
            origin_304: 3 - (bytes >> 20),
            origin_body_bytes: bytes,
            median_refresh_ms: ms,
        }
    }

    #[test]
    fn the_gain_is_stated_in_bytes_even_when_revalidation_looks_slower() {
        let text = bytes_not_time(&row(true, 0, 22.4), &row(false, 3 << 20, 18.4));
        assert!(
            text.contains("(0 KiB with revalidation, 3.0 MiB without)"),
            "{text}"
        );
        assert!(text.contains("22 vs 18 ms, within noise"), "{text}");
        assert!(
            !text.contains("faster") && !text.contains("saved"),
            "{text}"
        );
    }
}
