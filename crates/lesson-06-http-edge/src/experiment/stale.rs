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

/// What this experiment shows, in plain words: the demo prints it under
/// the heading.
pub const SHOWS: &str =
    "what clients get once the origin breaks and the copy has expired: the old copy, or the error.";

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
    /// "Directive" or "OriginHeaders" (the [`UseStale`] variant's name;
    /// [`policy_label`] is what people read).
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

impl StaleRun {
    /// "origin answers 500, nginx's proxy_cache_use_stale".
    pub fn label(&self) -> String {
        format!(
            "{}, {}",
            outage_label(&self.outage),
            policy_label(&self.use_stale)
        )
    }

    /// "stale from 3.0 s to 9.0 s (still stale), no error".
    pub fn describe(&self) -> String {
        let w = &self.window;
        let stale = match (w.first_stale, w.last_stale) {
            (Some(a), Some(b)) => format!(
                "stale from {a:.1} s to {b:.1} s{}",
                if w.stale_at_end { " (still stale)" } else { "" }
            ),
            _ => "never stale".into(),
        };
        let error = w
            .first_error
            .map_or("no error".into(), |t| format!("first error at {t:.1} s"));
        format!("{stale}, {error}")
    }
}

/// The policy's plain name, from the JSON's `use_stale` ("Directive",
/// "OriginHeaders"): what the demo, the tables and the chart show.
pub fn policy_label(use_stale: &str) -> &'static str {
    match use_stale {
        "Directive" => "nginx's proxy_cache_use_stale",
        _ => "origin's stale-if-error only",
    }
}

/// The outage's plain name, from the JSON's `outage` ("500", "killed").
pub fn outage_label(outage: &str) -> &'static str {
    match outage {
        "500" => "origin answers 500",
        _ => "origin killed",
    }
}

impl StaleResults {
    /// Why the origin's 500 never goes stale under its own header: nginx's
    /// rule, and whether this run agreed with it.
    pub fn nginx_500_note(&self) -> String {
        let rule = "nginx applies the origin's stale-if-error to connection errors and timeouts, \
                    never to a 500 (nginx ≥ 1.19.3)";
        let row = self
            .runs
            .iter()
            .find(|r| r.outage == "500" && r.use_stale != "Directive");
        match row {
            Some(r) if r.window.first_stale.is_none() => {
                format!("{rule}: that is why \"{}\" never went stale", r.label())
            }
            Some(r) => format!(
                "{rule}, yet \"{}\" went stale here: is this nginx older?",
                r.label()
            ),
            None => rule.into(),
        }
    }
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
        println!("  {:<51} {}", r.label(), r.describe());
    }
    let results = StaleResults {
        s_maxage_s: plan.stale_s_maxage.as_secs(),
        stale_if_error_s: plan.stale_if_error.as_secs(),
        watched_s: plan.stale_watch.as_secs_f64(),
        poll_ms: plan.poll.as_millis() as u64,
        runs,
    };
    println!("  {}", results.nginx_500_note());
    Ok(results)
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

    fn run(outage: &str, use_stale: &str, timeline: Vec<Point>) -> StaleRun {
        StaleRun {
            outage: outage.into(),
            use_stale: use_stale.into(),
            broke_at: 0.5,
            window: window(&timeline),
            timeline,
        }
    }

    #[test]
    fn runs_are_named_in_plain_words_and_the_500_note_follows_the_run() {
        let never = run(
            "500",
            "OriginHeaders",
            vec![p(1.0, 200, "HIT"), p(3.0, 500, "EXPIRED")],
        );
        assert_eq!(
            never.label(),
            "origin answers 500, origin's stale-if-error only"
        );
        assert_eq!(never.describe(), "never stale, first error at 3.0 s");
        let kept = run(
            "killed",
            "Directive",
            vec![p(3.0, 200, "STALE"), p(9.0, 200, "STALE")],
        );
        assert_eq!(kept.label(), "origin killed, nginx's proxy_cache_use_stale");
        assert_eq!(
            kept.describe(),
            "stale from 3.0 s to 9.0 s (still stale), no error"
        );
        let mut results = StaleResults {
            s_maxage_s: 2,
            stale_if_error_s: 5,
            watched_s: 9.0,
            poll_ms: 150,
            runs: vec![kept, never],
        };
        let note = results.nginx_500_note();
        assert!(note.contains("never to a 500"), "{note}");
        assert!(
            note.contains("that is why \"origin answers 500, origin's stale-if-error only\""),
            "{note}"
        );
        // A run that went stale on a 500 is not explained away.
        results.runs[1] = run("500", "OriginHeaders", vec![p(3.0, 200, "STALE")]);
        assert!(results.nginx_500_note().contains("went stale here"));
    }
}
