//! Experiment 3, stale-if-error: fill the edge, break the origin, and watch
//! what a client gets every ~150 ms as the entry expires.
//!
//! Two outages (the origin answering 500, and the origin gone: connection
//! refused) under two edge policies ([`UseStale`]): nginx's own
//! `proxy_cache_use_stale error … http_500` serves the stale copy for as
//! long as the entry is in the cache; with it off, only the origin's
//! `stale-if-error=E` allows it, so the edge answers stale until
//! s-maxage + E after the fill, then passes the error on.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, Origin, client, get};
use crate::edge::UseStale;
use crate::origin::OriginSettings;
use crate::policy::Lifetimes;

/// One answer in a timeline: seconds since the fill, status (0 = no
/// answer), `X-Cache-Status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub t: f64,
    pub status: u16,
    pub cache: String,
}

/// What a timeline shows, in seconds since the fill.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StaleWindow {
    /// The first and last answer served stale (200 + STALE or UPDATING).
    pub first_stale: Option<f64>,
    pub last_stale: Option<f64>,
    /// The first answer that was not a 200.
    pub first_error: Option<f64>,
    /// Still serving stale when the watch ended.
    pub stale_at_end: bool,
    /// Share of answers that were 200, in %.
    pub ok_pct: f64,
}

impl StaleWindow {
    /// How long stale answers were served, as observed (s).
    pub fn seconds(&self) -> Option<f64> {
        Some(self.last_stale? - self.first_stale?)
    }
}

/// One outage under one policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StaleRun {
    /// "500" or "killed".
    pub outage: String,
    /// "Directive" or "OriginHeaders".
    pub use_stale: String,
    /// When the origin broke, since the fill (s).
    pub broke_at: f64,
    pub window: StaleWindow,
    pub timeline: Vec<Point>,
}

/// The four runs, plus the lifetimes they had.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StaleResults {
    pub s_maxage_s: u64,
    pub stale_if_error_s: u64,
    pub watched_s: f64,
    pub poll_ms: u64,
    pub runs: Vec<StaleRun>,
}

/// Reads a timeline: pure, so the unit tests pin what "the window" means.
pub fn window(points: &[Point]) -> StaleWindow {
    let stale = |p: &&Point| p.status == 200 && (p.cache == "STALE" || p.cache == "UPDATING");
    let ok = points.iter().filter(|p| p.status == 200).count();
    StaleWindow {
        first_stale: points.iter().find(stale).map(|p| p.t),
        last_stale: points.iter().rev().find(stale).map(|p| p.t),
        first_error: points.iter().find(|p| p.status != 200).map(|p| p.t),
        stale_at_end: points.last().is_some_and(|p| stale(&p)),
        ok_pct: if points.is_empty() {
            0.0
        } else {
            ok as f64 * 100.0 / points.len() as f64
        },
    }
}

/// Both outages at once (each its own origin, each with two edges), so the
/// four timelines share one wait.
pub async fn run(fx: &Fixture, plan: &Plan) -> anyhow::Result<StaleResults> {
    let lifetimes = Lifetimes {
        browser: Duration::ZERO,
        edge: plan.stale_s_maxage,
        // No background refresh window: what is measured is stale-if-error alone.
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: plan.stale_if_error,
    };
    let settings = OriginSettings {
        lifetimes,
        ..OriginSettings::default()
    };
    let (a, b) = tokio::join!(
        outage(fx, plan, settings.clone(), Outage::Fault),
        outage(fx, plan, settings, Outage::Killed)
    );
    let mut runs = a?;
    runs.extend(b?);
    for r in &runs {
        let w = &r.window;
        println!(
            "  origin {:<6} {:<13} stale from {} to {}{}, first error {}",
            r.outage,
            r.use_stale,
            secs(w.first_stale),
            secs(w.last_stale),
            if w.stale_at_end { " (still stale)" } else { "" },
            secs(w.first_error)
        );
    }
    Ok(StaleResults {
        s_maxage_s: plan.stale_s_maxage.as_secs(),
        stale_if_error_s: plan.stale_if_error.as_secs(),
        watched_s: plan.stale_watch.as_secs_f64(),
        poll_ms: plan.poll.as_millis() as u64,
        runs,
    })
}

fn secs(t: Option<f64>) -> String {
    t.map_or("never".into(), |t| format!("{t:.1} s"))
}

#[derive(Clone, Copy)]
enum Outage {
    Fault,
    Killed,
}

async fn outage(
    fx: &Fixture,
    plan: &Plan,
    settings: OriginSettings,
    kind: Outage,
) -> anyhow::Result<Vec<StaleRun>> {
    let mut origin: Origin = fx.origin(settings).await?;
    let policies = [UseStale::Directive, UseStale::OriginHeaders];
    let mut edges = Vec::new();
    for p in policies {
        edges.push(origin.edge(|c| c.use_stale = p).await?);
    }
    let http = client()?;
    let urls: Vec<String> = edges
        .iter()
        .map(|e| format!("{}/users/21", e.base_url()))
        .collect();
    let t0 = Instant::now();
    for u in &urls {
        anyhow::ensure!(get(&http, u, &[]).await.status == 200, "the fill failed");
    }
    let pollers: Vec<_> = urls
        .iter()
        .map(|u| {
            tokio::spawn(poll(
                http.clone(),
                u.clone(),
                t0,
                plan.poll,
                plan.stale_watch,
            ))
        })
        .collect();
    tokio::time::sleep_until((t0 + plan.stale_break_at).into()).await;
    let broke_at = t0.elapsed().as_secs_f64();
    match kind {
        Outage::Fault => origin.handle.set_fault(true),
        Outage::Killed => origin.kill().await?,
    }
    let mut runs = Vec::new();
    for (p, task) in policies.into_iter().zip(pollers) {
        let timeline = task.await?;
        runs.push(StaleRun {
            outage: match kind {
                Outage::Fault => "500",
                Outage::Killed => "killed",
            }
            .into(),
            use_stale: format!("{p:?}"),
            broke_at,
            window: window(&timeline),
            timeline,
        });
    }
    Ok(runs)
}

/// One client asking every `every` until `watch` has passed since `t0`.
async fn poll(
    http: reqwest::Client,
    url: String,
    t0: Instant,
    every: Duration,
    watch: Duration,
) -> Vec<Point> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while t0.elapsed() < watch {
        tick.tick().await;
        let t = t0.elapsed().as_secs_f64();
        let h = get(&http, &url, &[]).await;
        out.push(Point {
            t,
            status: h.status,
            cache: h.cache,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: f64, status: u16, cache: &str) -> Point {
        Point {
            t,
            status,
            cache: cache.into(),
        }
    }

    #[test]
    fn the_window_runs_from_the_first_to_the_last_stale_answer() {
        let tl = [
            p(0.2, 200, "HIT"),
            p(2.1, 200, "STALE"),
            p(5.0, 200, "UPDATING"),
            p(8.1, 200, "STALE"),
            p(9.0, 500, "EXPIRED"),
            p(9.2, 500, "EXPIRED"),
        ];
        let w = window(&tl);
        assert_eq!(w.first_stale, Some(2.1));
        assert_eq!(w.last_stale, Some(8.1));
        assert_eq!(w.first_error, Some(9.0));
        assert!(!w.stale_at_end);
        assert!((w.seconds().expect("a window") - 6.0).abs() < 1e-9);
        assert!((w.ok_pct - 4.0 * 100.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn an_error_is_never_stale_and_a_run_that_ends_stale_says_so() {
        // A 502 that carries STALE in its header is an error, not a stale answer.
        let tl = [p(1.0, 502, "STALE"), p(2.0, 0, "-"), p(3.0, 200, "STALE")];
        let w = window(&tl);
        assert_eq!(w.first_stale, Some(3.0));
        assert_eq!(w.first_error, Some(1.0));
        assert!(w.stale_at_end);
        assert_eq!(window(&[]), StaleWindow::default());
    }
}
