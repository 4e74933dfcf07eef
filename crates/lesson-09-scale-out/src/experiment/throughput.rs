//! Experiment 5: does a 3-master cluster serve more reads than one Redis?
//!
//! On separate machines, it would: three masters, three CPUs' worth of
//! single-threaded Redis, and the key space split between them. Here every
//! node shares this machine's cores with the others and with the client,
//! so this measures what sharding costs a client (a slot lookup per
//! command, a connection per node, the same requests spread over three
//! sockets) rather than what it buys. The chapter discusses both.
//!
//! The load: 32 tasks sharing **one** cache (one multiplexed connection
//! per node, as the service's handlers share theirs), each reading one of
//! 1,000 keys as soon as its previous read is answered, through the same
//! `Cache::get` the service uses (`Bounded`). One Redis and the cluster
//! run alternately, twice, so that a machine that warms up or slows down
//! affects both.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use serde::{Deserialize, Serialize};

use super::fixture::{self, Stop, keyslots, masters, owner};
use crate::cache::{Cache, ClientMode, Lookup, Topology};

pub const SHOWS: &str =
    "one Redis vs a 3-master cluster on the same 2 cores: reads per second, p50, p99";

/// Keys read, ids `1..=KEYS`.
pub const KEYS: i64 = 1_000;

/// Tasks reading at once.
pub const TASKS: usize = 32;

/// One topology's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// "one Redis" or "cluster (3 masters)".
    pub topology: String,
    /// 1 or 2: the alternation's round.
    pub round: u32,
    pub seconds: f64,
    pub requests: u64,
    /// Reads that were not hits (a failure or a missing key).
    pub not_hits: u64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Reads per second served by each node (by the key's slot), by port.
    pub per_node: Vec<(u16, f64)>,
}

/// Both topologies, alternately, `rounds` times, `each` long.
pub async fn run(each: Duration, rounds: u32) -> anyhow::Result<Vec<ThroughputRow>> {
    // Nodes stay up for the whole experiment; idle, they cost little.
    let single = Instance::start_new(Kind::Redis, SpawnOptions::plain())
        .await
        .context("lesson 9 spawns a private redis-server")?;
    let cluster = fixture::cluster(3, 0, Duration::from_secs(3), true).await?;
    let one = Cache::connect(&Topology::Single(single.url()), ClientMode::Bounded).await?;
    let many = Cache::connect(&Topology::Cluster(cluster.urls()), ClientMode::Bounded).await?;
    // A user's JSON is about this long.
    let value = "x".repeat(64);
    fixture::fill(&one, 1..=KEYS, &value).await?;
    fixture::fill(&many, 1..=KEYS, &value).await?;

    // Which node serves each key: for one Redis, it; for the cluster, by
    // the engine's slot of the key.
    let m = masters(&cluster).await?;
    let keys: Vec<String> = (1..=KEYS).map(fixture::key).collect();
    let slots = keyslots(m[0].port, &keys).await?;
    let cluster_node: Vec<u16> = slots
        .iter()
        .map(|&s| owner(&m, s).map_or(0, |i| m[i].port))
        .collect();
    let single_node = vec![single.port(); keys.len()];

    let mut rows = Vec::new();
    for round in 1..=rounds {
        for (name, cache, nodes) in [
            ("one Redis", &one, &single_node),
            ("cluster (3 masters)", &many, &cluster_node),
        ] {
            let row = load(name, round, cache, nodes, each).await?;
            println!(
                "  {:<20} round {round}: {:>8.0} reads/s, p50 {}, p99 {}",
                name,
                row.ops_per_s,
                lab::units::millis(row.p50_ms),
                lab::units::millis(row.p99_ms)
            );
            rows.push(row);
        }
    }
    drop((one, many));
    drop(cluster);
    drop(single);
    Ok(rows)
}

/// [`TASKS`] closed-loop readers on `cache` for `each`.
async fn load(
    name: &str,
    round: u32,
    cache: &Cache,
    nodes: &[u16],
    each: Duration,
) -> anyhow::Result<ThroughputRow> {
    let stop = Stop::default();
    let t0 = Instant::now();
    let clients = {
        let cache = cache.clone();
        fixture::closed_loop(
            TASKS,
            &stop,
            |i, k| fixture::pick(i, k, KEYS),
            move |id| {
                let cache = cache.clone();
                async move {
                    match cache.get(&fixture::key(id)).await {
                        Lookup::Hit(_) => fixture::Outcome::Hit,
                        Lookup::Miss => fixture::Outcome::Miss,
                        Lookup::Failed => fixture::Outcome::CacheFailed,
                    }
                }
            },
        )
    };
    tokio::time::sleep(each).await;
    stop.now();
    let samples = fixture::collect(clients).await?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut per_node: BTreeMap<u16, u64> = BTreeMap::new();
    for s in &samples {
        *per_node.entry(nodes[(s.id - 1) as usize]).or_default() += 1;
    }
    let all: Vec<&fixture::Sample> = samples.iter().collect();
    Ok(ThroughputRow {
        topology: name.to_string(),
        round,
        seconds,
        requests: samples.len() as u64,
        not_hits: samples
            .iter()
            .filter(|s| s.outcome != fixture::Outcome::Hit)
            .count() as u64,
        ops_per_s: samples.len() as f64 / seconds,
        p50_ms: fixture::quantile(&all, 0.5),
        p99_ms: fixture::quantile(&all, 0.99),
        per_node: per_node
            .into_iter()
            .map(|(port, n)| (port, n as f64 / seconds))
            .collect(),
    })
}
