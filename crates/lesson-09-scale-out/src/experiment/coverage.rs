//! Experiment 4: a master dies and has no replica. Does the rest of the
//! cluster still answer?
//!
//! `cluster-require-full-coverage` decides. With `yes` (Redis's default)
//! a cluster that has lost any slot stops serving *every* key, with
//! `CLUSTERDOWN`: for a database that is the safe choice (no answer is
//! better than an answer from a partial data set). For a cache it is the
//! wrong one: two thirds of the keys are still there, and a refused hit
//! is one more query for the database. With `no`, the surviving masters
//! keep serving their slots, and only the dead shard's keys miss.
//!
//! Each key is read three ways: sent by us straight to its master (what
//! the engine answers), and twice through the lesson's cluster client
//! (what a service gets, which also depends on how the client reacts to
//! the dead node: it refreshes its slot map, and may make requests for
//! live shards wait for that).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::fixture::{self, ask, cluster_state, keyslots, masters, owner};
use crate::cache::{Cache, ClientMode, Lookup, Topology};

pub const SHOWS: &str = "a master with no replica dies: with require-full-coverage yes the whole cache goes dark, with no only its third";

/// Keys read after the failure, ids `1..=KEYS`: their slots are spread
/// over the whole range, so each master holds about a third.
pub const KEYS: i64 = 300;

/// The node timeout here: 1 s, so the cluster marks the dead master
/// failed quickly (nothing is measured against it).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(1);

/// How many of the keys were answered, split by shard.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Answered {
    /// Of the dead master's keys.
    pub dead: u64,
    /// Of the other masters' keys.
    pub other: u64,
    /// The slowest read.
    pub slowest_ms: f64,
}

impl Answered {
    pub fn total(&self) -> u64 {
        self.dead + self.other
    }
}

/// One setting's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoverageRow {
    pub require_full_coverage: bool,
    pub keys: i64,
    /// Keys on the dead master's shard, and on the others.
    pub dead_keys: u64,
    pub other_keys: u64,
    /// From the kill until every surviving master had flagged it `fail`.
    pub marked_failed_s: f64,
    /// `cluster_state` as a surviving master reported it then.
    pub cluster_state: String,
    /// What a surviving master answered for a key it owns, asked directly:
    /// the value, or the engine's error.
    pub live_master_answer: String,
    /// Each key's `GET` sent by us to the master that owned its slot
    /// (plain connections): the engine's own verdict, no client logic.
    pub direct: Answered,
    /// Through the lesson's cache (the cluster client, bounded: 500 ms a
    /// call): every key at once, right after the failure, and again 1 s
    /// later. The difference from `direct` is the client's doing.
    pub client_first: Answered,
    pub client_later: Answered,
}

/// `yes` then `no`, a fresh cluster each.
pub async fn run() -> anyhow::Result<Vec<CoverageRow>> {
    let mut rows = Vec::new();
    for full in [true, false] {
        rows.push(
            run_one(full)
                .await
                .with_context(|| format!("cluster-require-full-coverage {}", yes_no(full)))?,
        );
    }
    Ok(rows)
}

async fn run_one(full: bool) -> anyhow::Result<CoverageRow> {
    let mut cluster = fixture::cluster(3, 0, NODE_TIMEOUT, full).await?;
    let cache = Cache::connect(&Topology::Cluster(cluster.urls()), ClientMode::Bounded).await?;
    fixture::fill(&cache, 1..=KEYS, "1").await?;
    let m = masters(&cluster).await?;
    let keys: Vec<String> = (1..=KEYS).map(fixture::key).collect();
    let slots = keyslots(m[0].port, &keys).await?;
    let victim = m[owner(&m, slots[0]).context("nobody serves user 1's slot")?].clone();
    let survivors: Vec<u16> = m
        .iter()
        .map(|n| n.port)
        .filter(|&p| p != victim.port)
        .collect();
    // A key a survivor owns, to ask that survivor directly.
    let (live_key, live_port) = keys
        .iter()
        .zip(&slots)
        .find_map(|(k, &s)| {
            let i = owner(&m, s)?;
            (m[i].port != victim.port).then(|| (k.clone(), m[i].port))
        })
        .context("no key on a surviving master")?;

    let t0 = Instant::now();
    cluster.kill(victim.port)?;
    wait_flagged_fail(&survivors, &victim.id, Duration::from_secs(15)).await?;
    let marked_failed = t0.elapsed();
    // With `yes`, each node turns its state to `fail` on its next cron
    // tick after the flag (every 100 ms): wait for that too, so the reads
    // meet the settled state, not a race with it.
    let state = if full {
        wait_state(&survivors, "fail", Duration::from_secs(5)).await?
    } else {
        cluster_state(survivors[0]).await?
    };
    let live_master_answer =
        match ask::<Option<String>>(live_port, redis::cmd("GET").arg(&live_key)).await? {
            Ok(v) => format!("{:?}", v.unwrap_or_default()),
            Err(e) => format!(
                "{} {}",
                e.code().unwrap_or("error"),
                e.detail().unwrap_or_default()
            )
            .trim()
            .to_string(),
        };

    let dead: Vec<bool> = slots.iter().map(|&s| victim.serves(s)).collect();
    let owners: Vec<u16> = slots
        .iter()
        .map(|&s| owner(&m, s).map_or(0, |i| m[i].port))
        .collect();
    let direct = read_direct(&keys, &owners, &dead).await;
    let client_first = read_all(&cache, &keys, &dead).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client_later = read_all(&cache, &keys, &dead).await?;
    let dead_keys = dead.iter().filter(|&&d| d).count() as u64;
    drop(cache);
    drop(cluster);
    Ok(CoverageRow {
        require_full_coverage: full,
        keys: KEYS,
        dead_keys,
        other_keys: KEYS as u64 - dead_keys,
        marked_failed_s: marked_failed.as_secs_f64(),
        cluster_state: state,
        live_master_answer,
        direct,
        client_first,
        client_later,
    })
}

/// Every key at once through the cache, as that many concurrent requests
/// would read them: a failure costs at most the client's deadline.
async fn read_all(cache: &Cache, keys: &[String], dead: &[bool]) -> anyhow::Result<Answered> {
    let mut set = tokio::task::JoinSet::new();
    for (k, &dead) in keys.iter().zip(dead) {
        let (cache, k) = (cache.clone(), k.clone());
        set.spawn(async move {
            let t = Instant::now();
            let found = cache.get(&k).await;
            (dead, !matches!(found, Lookup::Failed), t.elapsed())
        });
    }
    let mut a = Answered::default();
    while let Some(r) = set.join_next().await {
        let (dead, answered, took) = r.context("a reading task failed")?;
        if answered {
            *(if dead { &mut a.dead } else { &mut a.other }) += 1;
        }
        a.slowest_ms = a.slowest_ms.max(took.as_secs_f64() * 1000.0);
    }
    Ok(a)
}

/// Every key's `GET` sent to the master on `owners[i]` over a plain
/// connection per master (bounded): an error reply (`CLUSTERDOWN`), a
/// refused connection or a timeout is not an answer.
async fn read_direct(keys: &[String], owners: &[u16], dead: &[bool]) -> Answered {
    let mut conns = std::collections::HashMap::new();
    for &port in owners {
        if let std::collections::hash_map::Entry::Vacant(e) = conns.entry(port) {
            e.insert(fixture::node(port).await.ok());
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for ((k, port), &dead) in keys.iter().zip(owners).zip(dead) {
        let conn = conns.get(port).cloned().flatten();
        let k = k.clone();
        set.spawn(async move {
            let t = Instant::now();
            let answered = match conn {
                Some(mut c) => matches!(
                    tokio::time::timeout(
                        fixture::NODE_CALL,
                        redis::cmd("GET")
                            .arg(&k)
                            .query_async::<Option<String>>(&mut c),
                    )
                    .await,
                    Ok(Ok(_))
                ),
                None => false,
            };
            (dead, answered, t.elapsed())
        });
    }
    let mut a = Answered::default();
    while let Some(Ok((dead, answered, took))) = set.join_next().await {
        if answered {
            *(if dead { &mut a.dead } else { &mut a.other }) += 1;
        }
        a.slowest_ms = a.slowest_ms.max(took.as_secs_f64() * 1000.0);
    }
    a
}

/// Waits until every node in `ports` flags node `id` as `fail` (agreed
/// down), not merely `fail?` (suspected by one).
async fn wait_flagged_fail(ports: &[u16], id: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let mut all = true;
        for &p in ports {
            let text: String = ask(p, redis::cmd("CLUSTER").arg("NODES"))
                .await?
                .with_context(|| format!("CLUSTER NODES on {p}"))?;
            let flagged = text.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&id)
                    && f.get(2)
                        .is_some_and(|flags| flags.split(',').any(|x| x == "fail"))
            });
            all &= flagged;
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the surviving masters had not all flagged the dead one within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node in `ports` reports `cluster_state:<want>`.
async fn wait_state(ports: &[u16], want: &str, within: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let mut all = true;
        for &p in ports {
            all &= cluster_state(p).await? == want;
        }
        if all {
            return Ok(want.to_string());
        }
        if Instant::now() > deadline {
            bail!(
                "the surviving masters did not all report cluster_state:{want} within {within:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
