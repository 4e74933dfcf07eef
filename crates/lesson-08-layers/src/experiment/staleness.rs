//! Experiment 1: how long is "eventually"? After a PUT on instance A is
//! answered, for how long does instance B still serve the old value?
//!
//! Each trial: B reads a user twice (its L1, or its client-side cache,
//! now holds it), waits a spread-out delay (so that, with TTL only, the
//! write lands at every point of the entry's life), then A writes a new
//! name while a poller reads the user from B every `poll`. The window is
//! the time from A's answer to B's first new answer (0 when B had it
//! before A answered); every old answer B gave after A's is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, get, put, spread};
use crate::Invalidation;
use crate::hooks::Hooks;

pub const SHOWS: &str =
    "after a write on A is answered, how long B serves the old value, per design";

/// One design's windows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Windows {
    pub design: Invalidation,
    pub trials: usize,
    /// Each trial's window (ms), in trial order.
    pub windows_ms: Vec<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Per trial: ms from A's PUT being *sent* to B's first new answer
    /// (the write's own time included).
    pub from_sent_ms: Vec<f64>,
    /// Trials in which B served the new value before A's PUT was answered.
    pub before_answer: usize,
    /// Old answers B gave after A's PUT was answered, over all trials.
    pub stale_reads: usize,
    /// Reads of B in the windows' polling, over all trials.
    pub reads: usize,
}

pub async fn run(fx: &Fixture, plan: &Plan, first_id: i64) -> anyhow::Result<Vec<Windows>> {
    let mut out = Vec::new();
    for (d, design) in Invalidation::ALL.into_iter().enumerate() {
        let mut settings = fx.settings();
        settings.invalidation = design;
        settings.l1_ttl = plan.l1_ttl;
        let a = fx.instance(settings.clone(), Hooks::default()).await?;
        let b = Arc::new(fx.instance(settings, Hooks::default()).await?);
        // A subscription is made in the background: wait for it, or the
        // first trial's message could go out before B listens.
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(design, Invalidation::PubSub | Invalidation::Notify)
            && b.state.metrics.value(crate::metrics::L1_FLUSHES) == 0
        {
            anyhow::ensure!(Instant::now() < deadline, "{design:?}: B never subscribed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut took = Vec::new();
        let mut from_sent = Vec::new();
        let (mut stale_reads, mut reads, mut before_answer) = (0, 0, 0);
        for t in 0..plan.trials {
            let id = first_id + (d * plan.trials + t) as i64;
            get(&b, id).await;
            get(&b, id).await;
            tokio::time::sleep(spread(t, plan.l1_ttl)).await;

            let new_name = format!("Renamed {id}");
            let done = Arc::new(AtomicBool::new(false));
            let poller = {
                let (b, done, new_name) = (b.clone(), done.clone(), new_name.clone());
                let poll = plan.poll;
                let limit = plan.l1_ttl * 3;
                tokio::spawn(async move {
                    // (time B first answered new, old answers after A answered, reads)
                    let started = Instant::now();
                    let (mut stale, mut n) = (0usize, 0usize);
                    loop {
                        let after_answer = done.load(Ordering::SeqCst);
                        let (_, _, name) = get(&b, id).await;
                        n += 1;
                        if name == new_name {
                            return (Some(Instant::now()), stale, n);
                        }
                        if after_answer {
                            stale += 1;
                        }
                        if started.elapsed() > limit {
                            return (None, stale, n);
                        }
                        tokio::time::sleep(poll).await;
                    }
                })
            };
            let sent = Instant::now();
            let (status, _, _) = put(&a, id, &new_name).await;
            anyhow::ensure!(status == 200, "{design:?}: the PUT answered {status}");
            let answered = Instant::now();
            done.store(true, Ordering::SeqCst);
            let (first_new, stale, n) = poller.await?;
            let first_new = first_new.ok_or_else(|| {
                anyhow::anyhow!("{design:?}: B never served the new value within 3 × L1's TTL")
            })?;
            took.push(first_new.saturating_duration_since(answered));
            from_sent.push(first_new.saturating_duration_since(sent).as_secs_f64() * 1000.0);
            if first_new < answered {
                before_answer += 1;
            }
            stale_reads += stale;
            reads += n;
        }
        out.push(Windows {
            design,
            trials: plan.trials,
            windows_ms: took.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
            p50_ms: lab::units::quantile_ms(&took, 0.5),
            p99_ms: lab::units::quantile_ms(&took, 0.99),
            max_ms: lab::units::quantile_ms(&took, 1.0),
            from_sent_ms: from_sent,
            before_answer,
            stale_reads,
            reads,
        });
        println!(
            "  {:<9} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms   (new on B before A answered in {before_answer} of {} trials; {stale_reads} old answers after)",
            design.name(),
            out[d].p50_ms,
            out[d].p99_ms,
            out[d].max_ms,
            plan.trials
        );
    }
    Ok(out)
}
