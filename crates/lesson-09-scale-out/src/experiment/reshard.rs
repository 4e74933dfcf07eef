//! Experiment 3: slots move from one master to another while the cluster
//! serves. Adding a machine means exactly this: `redis-cli --cluster
//! reshard` moves slots to it, key by key (`MIGRATE`), while clients keep
//! reading.
//!
//! During a slot's move, a key already moved is answered by the old
//! master with `ASK` (ask the new one, this once), and once the slot has
//! moved, with `MOVED` (the new one owns it; update your map). The client
//! follows both. The question is what that costs the requests that meet
//! it: errors, misses, a slower tail?

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::fixture::{self, Fixture, Outcome, Sample, Stop, dbsize, masters};
use crate::cache::{Cache, ClientMode, Topology};

pub const SHOWS: &str =
    "slots move between masters while 32 clients read: what the redirections cost";

/// Warm keys, ids `1..=KEYS`: every seeded user.
pub const KEYS: i64 = fixture::USERS;

/// The requests of one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Phase {
    /// "before" (the cluster at rest) or "during" (the reshard running).
    pub phase: String,
    pub seconds: f64,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub cache_failures: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Experiment 3's findings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReshardResult {
    pub mode: ClientMode,
    pub clients: usize,
    pub keys: i64,
    pub slots: usize,
    /// How long `redis-cli --cluster reshard` took.
    pub reshard_s: f64,
    /// The source's and the target's key counts (`DBSIZE`) before and after.
    pub from_keys: (u64, u64),
    pub to_keys: (u64, u64),
    /// Their slot counts after.
    pub from_slots_after: usize,
    pub to_slots_after: usize,
    pub phases: Vec<Phase>,
}

impl ReshardResult {
    /// Keys that changed master: what the target gained.
    pub fn keys_moved(&self) -> u64 {
        self.to_keys.1.saturating_sub(self.to_keys.0)
    }
}

/// Moves `slots` slots from the first master to the second while
/// [`fixture::CLIENTS`] clients read, after `before` of reading at rest.
pub async fn run(fx: &Fixture, slots: usize, before: Duration) -> anyhow::Result<ReshardResult> {
    // The failover experiment's shape (replicas too: a migrated key is
    // replicated like any write), and its recommended client.
    let mode = ClientMode::Bounded;
    let cluster = fixture::cluster(3, 1, Duration::from_secs(3), true).await?;
    let cache = Cache::connect(&Topology::Cluster(cluster.urls()), mode).await?;
    fixture::warm(&cache, &fx.pool, 1..=KEYS).await?;
    let m = masters(&cluster).await?;
    let [from, to, ..] = m.as_slice() else {
        anyhow::bail!("a reshard needs two masters, the cluster has {}", m.len());
    };
    let (from, to) = (from.clone(), to.clone());
    let from_before = dbsize(from.port).await?;
    let to_before = dbsize(to.port).await?;

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
    tokio::time::sleep(before).await;
    let started = Instant::now();
    let moved = cluster.reshard(&from, &to, slots).await;
    let ended = Instant::now();
    stop.now();
    let samples = fixture::collect(clients).await?;
    moved.context("the reshard failed")?;

    let after = masters(&cluster).await?;
    let slots_of = |port: u16| {
        after
            .iter()
            .find(|n| n.port == port)
            .map_or(0, |n| n.slot_count())
    };
    let phase = |name: &str, from: Instant, to: Instant| {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.start >= from && s.start < to)
            .collect();
        let count = |o: Outcome| mine.iter().filter(|s| s.outcome == o).count() as u64;
        Phase {
            phase: name.to_string(),
            seconds: to.saturating_duration_since(from).as_secs_f64(),
            requests: mine.len() as u64,
            hits: count(Outcome::Hit),
            misses: count(Outcome::Miss),
            cache_failures: count(Outcome::CacheFailed),
            errors: count(Outcome::Error),
            p50_ms: fixture::quantile(&mine, 0.5),
            p99_ms: fixture::quantile(&mine, 0.99),
            max_ms: fixture::quantile(&mine, 1.0),
        }
    };
    Ok(ReshardResult {
        mode,
        clients: fixture::CLIENTS,
        keys: KEYS,
        slots,
        reshard_s: (ended - started).as_secs_f64(),
        from_keys: (from_before, dbsize(from.port).await?),
        to_keys: (to_before, dbsize(to.port).await?),
        from_slots_after: slots_of(from.port),
        to_slots_after: slots_of(to.port),
        phases: vec![
            phase("before", t0, started),
            phase("during", started, ended),
        ],
    })
}
