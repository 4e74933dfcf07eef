//! Experiment 2, the headline: a master is killed under load. What do
//! users see until its replica takes over, with each client
//! configuration?
//!
//! Why this shape:
//!
//! - **A fresh cluster per client mode** (3 masters, 1 replica each,
//!   `cluster-node-timeout` 3 s): every run starts from the same healthy
//!   cluster, and its failover is Redis's own (the replicas notice the
//!   silence, the masters vote, one replica is promoted).
//! - **`kill -9`**, not a clean shutdown: a crashed machine says nothing,
//!   so its peers learn of it only by its silence, after the node timeout.
//! - **32 closed-loop clients over 1,000 warm keys**, about a third of
//!   them on the victim's shard: each request is the service's own
//!   [`read_user`](crate::read_user) (the cache, else PostgreSQL), timed
//!   from the client's side. A client stuck in a cache call sends nothing
//!   else meanwhile, as a worker thread would.
//! - **On loopback, a killed node's port refuses connections at once**:
//!   a bounded client fails fast here, where a dead machine on a network
//!   (packets unanswered) would cost each call its full 500 ms deadline.
//!   The failure window is the same; the price per request is not.
//! - **Every request is kept** (start, latency, outcome, whether its key
//!   is on the victim's shard), so the table's figures (the failure
//!   window, the longest request, the hit ratio on the dead shard) and the
//!   chart's timeline come from the same samples.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::fixture::{self, Bucket, Fixture, Outcome, Sample, Stop, keyslots, masters, owner};
use crate::cache::{Cache, ClientMode, Topology};

pub const SHOWS: &str = "a master killed under load: its keys fail, stall or keep hitting until its replica is promoted, by client configuration";

/// Warm keys, ids `1..=KEYS`.
pub const KEYS: i64 = 1_000;

/// The cluster's `cluster-node-timeout`: Redis's default is 15 s; 3 s is
/// a common production setting, and the failover window starts from it.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// The timeline's resolution: a 500 ms timeout is two buckets.
pub const BUCKET: Duration = Duration::from_millis(250);

/// The user whose slot's master is killed.
pub const VICTIM_USER: i64 = 42;

/// One client mode's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailoverRun {
    pub mode: ClientMode,
    pub clients: usize,
    pub keys: i64,
    pub node_timeout_ms: u64,
    /// Warm keys on the killed master's shard.
    pub victim_keys: usize,
    pub victim_port: u16,
    /// Seconds since the clients started.
    pub kill_at_s: f64,
    /// When a replica was seen serving the victim's slots; `None`: not
    /// within the bound.
    pub promoted_at_s: Option<f64>,
    /// When the clients were told to stop.
    pub stopped_at_s: f64,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub cache_failures: u64,
    /// Requests not answered (what a user sees as an error page).
    pub errors: u64,
    /// Cache failures and errors off the victim's shard (0: the damage
    /// stayed on that shard).
    pub failures_elsewhere: u64,
    /// The disruption: from the start of the first request that met a
    /// failed cache call, went unanswered or took over 1 s, to the end of
    /// the last such request (0: there was none). One figure for a client
    /// that fails fast and one that stalls.
    pub failure_window_s: f64,
    pub failure_from_s: Option<f64>,
    pub failure_to_s: Option<f64>,
    /// Failures off the victim's shard: when the first started and the
    /// last ended (seconds since the clients started).
    pub elsewhere_from_s: Option<f64>,
    pub elsewhere_to_s: Option<f64>,
    /// When a surviving master first and last reported `cluster_state:fail`
    /// (asked every 50 ms from the kill on): with
    /// `cluster-require-full-coverage yes`, the whole cluster refuses every
    /// key from when the dead master is flagged failed until its replica
    /// takes over.
    pub cluster_down_from_s: Option<f64>,
    pub cluster_down_to_s: Option<f64>,
    /// Requests answered per second: in the second before the kill, and
    /// between the kill and the promotion (by when they were answered).
    pub answered_per_s_before: f64,
    pub answered_per_s_in_window: f64,
    pub longest_ms: f64,
    /// Its key was on the victim's shard.
    pub longest_on_victim: bool,
    pub over_1s: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Victim-shard requests that started between the kill and the
    /// promotion, and the share of them that were hits.
    pub victim_requests_in_window: u64,
    pub victim_hit_ratio: Option<f64>,
    /// Requests off the victim's shard in the same window, and their p99:
    /// does one dead shard slow the others?
    pub other_requests_in_window: u64,
    pub other_p99_ms_in_window: f64,
    /// Reads PostgreSQL ran during the run, by its own count.
    pub db_reads: i64,
    pub bucket_ms: u64,
    pub timeline: Vec<Bucket>,
}

/// The run's lengths.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Lengths {
    /// Load before the kill.
    pub before: Duration,
    /// Load after the promotion was seen.
    pub after: Duration,
}

/// Every client mode in turn, on a fresh cluster each.
pub async fn run(fx: &Fixture, lengths: Lengths) -> anyhow::Result<Vec<FailoverRun>> {
    let mut runs = Vec::new();
    for mode in ClientMode::ALL {
        let r = run_one(fx, mode, lengths)
            .await
            .with_context(|| format!("the failover run with the {} client", mode.name()))?;
        println!(
            "  {:<13} kill → promoted {}, {} requests, {} errors, {} cache failures, longest {}",
            mode.name(),
            r.promoted_at_s
                .map_or("not within the bound".to_string(), |p| format!(
                    "{:.1} s",
                    p - r.kill_at_s
                )),
            r.requests,
            r.errors,
            r.cache_failures,
            lab::units::millis(r.longest_ms)
        );
        runs.push(r);
    }
    Ok(runs)
}

async fn run_one(fx: &Fixture, mode: ClientMode, lengths: Lengths) -> anyhow::Result<FailoverRun> {
    let mut cluster = fixture::cluster(3, 1, NODE_TIMEOUT, true).await?;
    // Declared after the cluster, so dropped before it: the client goes
    // first, then the nodes.
    let cache = Cache::connect(&Topology::Cluster(cluster.urls()), mode).await?;
    fixture::warm(&cache, &fx.pool, 1..=KEYS).await?;

    // Which warm keys live on the victim's shard, by the engine's slots.
    let before = masters(&cluster).await?;
    let any = before[0].port;
    let keys: Vec<String> = (1..=KEYS).map(fixture::key).collect();
    let slots = keyslots(any, &keys).await?;
    let victim_slot = keyslots(any, &[fixture::key(VICTIM_USER)]).await?[0];
    let victim =
        before[owner(&before, victim_slot).context("nobody serves the victim's slot")?].clone();
    let on_victim: Vec<bool> = slots.iter().map(|&s| victim.serves(s)).collect();
    let victim_keys = on_victim.iter().filter(|&&v| v).count();
    let is_victim = |id: i64| on_victim[(id - 1) as usize];

    fx.pg.reset().await?;
    let stop = Stop::default();
    let t0 = Instant::now();
    let clients = {
        let state = fixture::service(cache.clone(), &fx.pool)?;
        fixture::closed_loop(
            fixture::CLIENTS,
            &stop,
            |i, k| fixture::pick(i, k, KEYS),
            move |id| {
                let state = state.clone();
                async move { fixture::read(&state, id).await }
            },
        )
    };

    tokio::time::sleep(lengths.before).await;
    let survivor = before
        .iter()
        .find(|m| m.port != victim.port)
        .map(|m| m.port)
        .context("no other master")?;
    let watching = Stop::default();
    let watcher = tokio::spawn(fixture::watch_state(survivor, t0, watching.clone()));
    let kill_at = t0.elapsed();
    cluster.kill(victim.port)?;
    // The whole run is bounded: a promotion that has not happened 30 s
    // after the kill is reported as such, not waited for.
    let promoted = cluster.wait_promoted(&victim, fixture::GIVE_UP).await;
    let promoted_at = match &promoted {
        Ok(_) => Some(t0.elapsed()),
        Err(e) => {
            tracing::warn!("{e:#}");
            None
        }
    };
    tokio::time::sleep(lengths.after).await;
    stop.now();
    watching.now();
    let stopped_at = t0.elapsed();
    let samples = fixture::collect(clients).await?;
    let down = watcher.await.context("the state watcher failed")?;
    let db_reads = fx.db_reads().await?;
    drop(cache);
    drop(cluster);

    let mut run = summarise(
        mode,
        &samples,
        t0,
        kill_at,
        promoted_at,
        stopped_at,
        victim_keys,
        victim.port,
        is_victim,
        db_reads,
    );
    run.cluster_down_from_s = down.map(|d| d.0);
    run.cluster_down_to_s = down.map(|d| d.1);
    Ok(run)
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    mode: ClientMode,
    samples: &[Sample],
    t0: Instant,
    kill_at: Duration,
    promoted_at: Option<Duration>,
    stopped_at: Duration,
    victim_keys: usize,
    victim_port: u16,
    is_victim: impl Fn(i64) -> bool,
    db_reads: i64,
) -> FailoverRun {
    let count = |o: Outcome| samples.iter().filter(|s| s.outcome == o).count() as u64;
    let at = |s: &Sample| s.start.saturating_duration_since(t0);
    let failed = |s: &&Sample| matches!(s.outcome, Outcome::CacheFailed | Outcome::Error);
    let failures: Vec<&Sample> = samples.iter().filter(failed).collect();
    let troubled: Vec<&Sample> = samples
        .iter()
        .filter(|s| failed(s) || s.took > Duration::from_secs(1))
        .collect();
    let elsewhere: Vec<&&Sample> = failures.iter().filter(|s| !is_victim(s.id)).collect();
    let failure_from = troubled.iter().map(|s| at(s)).min();
    let failure_to = troubled.iter().map(|s| at(s) + s.took).max();
    let failure_window = match (failure_from, failure_to) {
        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
        _ => 0.0,
    };
    let longest = samples.iter().max_by_key(|s| s.took);
    // The window the shard has no master: from the kill to the promotion
    // (or to the end, if there was none).
    let window_end = promoted_at.unwrap_or(stopped_at);
    let in_window = |s: &&Sample| at(s) >= kill_at && at(s) < window_end;
    let victim_in: Vec<&Sample> = samples
        .iter()
        .filter(in_window)
        .filter(|s| is_victim(s.id))
        .collect();
    let other_in: Vec<&Sample> = samples
        .iter()
        .filter(in_window)
        .filter(|s| !is_victim(s.id))
        .collect();
    let victim_hits = victim_in
        .iter()
        .filter(|s| s.outcome == Outcome::Hit)
        .count();
    let all: Vec<&Sample> = samples.iter().collect();
    // Answered per second in [from, to), by when each was answered.
    let rate = |from: Duration, to: Duration| {
        let n = samples
            .iter()
            .filter(|s| s.outcome.answered() && (from..to).contains(&(at(s) + s.took)))
            .count();
        let secs = to.saturating_sub(from).as_secs_f64();
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    };
    FailoverRun {
        mode,
        clients: fixture::CLIENTS,
        keys: KEYS,
        node_timeout_ms: NODE_TIMEOUT.as_millis() as u64,
        victim_keys,
        victim_port,
        kill_at_s: kill_at.as_secs_f64(),
        promoted_at_s: promoted_at.map(|p| p.as_secs_f64()),
        stopped_at_s: stopped_at.as_secs_f64(),
        requests: samples.len() as u64,
        hits: count(Outcome::Hit),
        misses: count(Outcome::Miss),
        cache_failures: count(Outcome::CacheFailed),
        errors: count(Outcome::Error),
        failures_elsewhere: elsewhere.len() as u64,
        elsewhere_from_s: elsewhere
            .iter()
            .map(|s| at(s).as_secs_f64())
            .reduce(f64::min),
        elsewhere_to_s: elsewhere
            .iter()
            .map(|s| (at(s) + s.took).as_secs_f64())
            .reduce(f64::max),
        cluster_down_from_s: None,
        cluster_down_to_s: None,
        failure_window_s: failure_window,
        failure_from_s: failure_from.map(|d| d.as_secs_f64()),
        failure_to_s: failure_to.map(|d| d.as_secs_f64()),
        answered_per_s_before: rate(kill_at.saturating_sub(Duration::from_secs(1)), kill_at),
        answered_per_s_in_window: rate(kill_at, window_end),
        longest_ms: longest.map_or(0.0, |s| s.took.as_secs_f64() * 1000.0),
        longest_on_victim: longest.is_some_and(|s| is_victim(s.id)),
        over_1s: samples
            .iter()
            .filter(|s| s.took > Duration::from_secs(1))
            .count() as u64,
        p50_ms: fixture::quantile(&all, 0.5),
        p99_ms: fixture::quantile(&all, 0.99),
        victim_requests_in_window: victim_in.len() as u64,
        victim_hit_ratio: (!victim_in.is_empty())
            .then(|| victim_hits as f64 / victim_in.len() as f64),
        other_requests_in_window: other_in.len() as u64,
        other_p99_ms_in_window: fixture::quantile(&other_in, 0.99),
        db_reads,
        bucket_ms: BUCKET.as_millis() as u64,
        timeline: fixture::timeline(samples, t0, BUCKET),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_and_the_victims_hits_come_from_the_samples() {
        let t0 = Instant::now();
        let s = |id, ms: u64, took: u64, outcome| Sample {
            id,
            start: t0 + Duration::from_millis(ms),
            took: Duration::from_millis(took),
            outcome,
        };
        // Odd ids are on the victim's shard; the kill at 1 s, the
        // promotion at 3 s.
        let samples = [
            s(1, 500, 1, Outcome::Hit),
            s(1, 1_200, 500, Outcome::CacheFailed),
            s(3, 1_800, 1, Outcome::Hit),
            s(2, 2_000, 1, Outcome::Hit),
            s(5, 2_500, 600, Outcome::CacheFailed),
            s(2, 3_500, 1, Outcome::Miss),
        ];
        let r = summarise(
            ClientMode::Bounded,
            &samples,
            t0,
            Duration::from_secs(1),
            Some(Duration::from_secs(3)),
            Duration::from_secs(4),
            10,
            7000,
            |id| id % 2 == 1,
            3,
        );
        assert_eq!(
            (r.requests, r.hits, r.misses, r.cache_failures, r.errors),
            (6, 3, 1, 2, 0)
        );
        assert_eq!(r.failures_elsewhere, 0);
        assert!((r.failure_window_s - 1.9).abs() < 1e-9, "1.2 s to 3.1 s");
        assert_eq!(r.victim_requests_in_window, 3);
        assert_eq!(r.victim_hit_ratio, Some(1.0 / 3.0));
        assert_eq!(r.other_requests_in_window, 1);
        assert_eq!(r.longest_ms, 600.0);
        assert!(r.longest_on_victim);
        assert_eq!(r.over_1s, 0);
        assert_eq!(r.timeline.len(), 15);
        assert_eq!(
            r.answered_per_s_before, 1.0,
            "one answer in the second before the kill"
        );
        assert_eq!(
            r.answered_per_s_in_window, 1.5,
            "three answered in the 2 s after it (the fourth at 3.1 s)"
        );

        // A stall counts as disruption even when it ends in a hit.
        let stalled = [s(1, 500, 1, Outcome::Hit), s(1, 900, 8_000, Outcome::Hit)];
        let r = summarise(
            ClientMode::Defaults,
            &stalled,
            t0,
            Duration::from_secs(1),
            Some(Duration::from_secs(3)),
            Duration::from_secs(4),
            10,
            7000,
            |id| id % 2 == 1,
            0,
        );
        assert_eq!((r.cache_failures, r.errors, r.over_1s), (0, 0, 1));
        assert!((r.failure_window_s - 8.0).abs() < 1e-9);
    }
}
