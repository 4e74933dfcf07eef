//! What the cluster experiments share: a private seeded PostgreSQL, private
//! Redis Clusters, warm keys, the closed-loop clients and how their
//! requests are summed up, all in process (no HTTP: what is measured is
//! the cache client's behaviour when a shard dies or moves, not loopback
//! HTTP's).
//!
//! Every server here is private and is dropped with the value that holds
//! it: `just lesson-9` leaves nothing running.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::cluster::{ClusterOptions, NodeInfo, RedisCluster};
use lab::testing::CountingPostgres;
use lab::users::User;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::cache::{Cache, user_key};
use crate::replica::{Db, FillFrom};
use crate::{AppState, Settings, read_user};

/// Users seeded: the slot and reshard experiments' 10,000 keys.
pub const USERS: i64 = 10_000;

/// Time every database read spends in PostgreSQL (`pg_sleep`): a fast
/// indexed query on a busy server. Small on purpose: the experiments are
/// about the cache tier, and a miss must cost little more than a hit's
/// round trip plus this, so the cache's failures stand out.
pub const LATENCY: Duration = Duration::from_millis(2);

/// The longest a database read may take before the request fails.
pub const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to PostgreSQL: half the clients, so a burst of misses
/// queues a little, as it would in production.
pub const POOL: u32 = 16;

/// Closed-loop clients in the failover and reshard experiments: as many
/// requests in flight as a small service under load has.
pub const CLIENTS: usize = 32;

/// How long an entry lives: lesson 2's 60 s, longer than any experiment,
/// so no key expires during one and every miss is the cluster's doing.
pub const TTL: Duration = Duration::from_secs(60);

/// Every key the experiments write starts with this (the lesson's `l9:`).
pub const PREFIX: &str = "l9:exp:";

/// A request that has not finished after this is abandoned and counted as
/// an error: the experiments must end even if a client never answers.
pub const GIVE_UP: Duration = Duration::from_secs(30);

/// Every call the experiments make to one node themselves (`DBSIZE`,
/// `CLUSTER KEYSLOT`, `CLUSTER INFO`) is bounded by this.
pub const NODE_CALL: Duration = Duration::from_secs(3);

/// The private PostgreSQL the experiments' misses read from.
#[derive(Debug)]
pub struct Fixture {
    /// Counts its statements, so a run's database reads are PostgreSQL's
    /// own count, not only ours.
    pub pg: CountingPostgres,
    /// The reads' pool ([`POOL`] connections, already open).
    pub pool: PgPool,
}

impl Fixture {
    /// Spawns PostgreSQL with `pg_stat_statements` and seeds [`USERS`].
    pub async fn new() -> anyhow::Result<Fixture> {
        let pg = CountingPostgres::start(USERS).await.context(
            "lesson 9's experiments run on a private PostgreSQL, spawned from the local \
             binaries or as a container (`just doctor` shows what was found)",
        )?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL)
            .acquire_timeout(DB_TIMEOUT)
            .connect(&pg.instance.url())
            .await
            .context("Failed to connect to the experiments' PostgreSQL")?;
        Ok(Fixture { pg, pool })
    }

    /// Database reads since the last `pg.reset()`, by PostgreSQL's count:
    /// with latency, every read's SQL has `pg_sleep` in it.
    pub async fn db_reads(&self) -> anyhow::Result<i64> {
        self.pg.calls("%pg_sleep%").await
    }
}

/// A private cluster of `masters` masters with `replicas` replicas each.
pub async fn cluster(
    masters: usize,
    replicas: usize,
    node_timeout: Duration,
    require_full_coverage: bool,
) -> anyhow::Result<RedisCluster> {
    RedisCluster::start(ClusterOptions {
        masters,
        replicas,
        node_timeout,
        require_full_coverage,
    })
    .await
    .context("lesson 9 spawns private Redis Cluster nodes from the local redis-server")
}

/// The key of user `id` in the experiments.
pub fn key(id: i64) -> String {
    user_key(PREFIX, id)
}

/// Reads users `ids` from PostgreSQL in one query and writes each into the
/// cache as lesson 2's service would (the user's JSON, [`TTL`]), a few
/// hundred writes in flight at a time. Fails if any write failed: an
/// experiment must start from a known state.
pub async fn warm(
    cache: &Cache,
    pool: &PgPool,
    ids: std::ops::RangeInclusive<i64>,
) -> anyhow::Result<usize> {
    let users: Vec<(i64, String, String)> = tokio::time::timeout(
        DB_TIMEOUT * 4,
        sqlx::query_as("SELECT id, name, email FROM users WHERE id BETWEEN $1 AND $2 ORDER BY id")
            .bind(*ids.start())
            .bind(*ids.end())
            .fetch_all(pool),
    )
    .await
    .context("reading the users to warm timed out")?
    .context("Failed to read the users to warm")?;
    let mut written = 0;
    for chunk in users.chunks(250) {
        let mut set = tokio::task::JoinSet::new();
        for (id, name, email) in chunk.iter().cloned() {
            let cache = cache.clone();
            set.spawn(async move {
                let json =
                    serde_json::to_string(&User { id, name, email }).expect("a user serialises");
                cache.set(&key(id), &json, TTL).await
            });
        }
        while let Some(ok) = set.join_next().await {
            if ok.context("a warming task failed")? {
                written += 1;
            }
        }
    }
    anyhow::ensure!(
        written == users.len(),
        "only {written} of {} keys could be warmed",
        users.len()
    );
    Ok(written)
}

/// Writes `ids`' keys with a small value, without PostgreSQL (the slot
/// and throughput experiments only need the keys to exist).
pub async fn fill(
    cache: &Cache,
    ids: std::ops::RangeInclusive<i64>,
    value: &str,
) -> anyhow::Result<()> {
    let all: Vec<i64> = ids.collect();
    for chunk in all.chunks(500) {
        let mut set = tokio::task::JoinSet::new();
        for &id in chunk {
            let cache = cache.clone();
            let value = value.to_string();
            set.spawn(async move { cache.set(&key(id), &value, TTL).await });
        }
        while let Some(ok) = set.join_next().await {
            anyhow::ensure!(ok.context("a writing task failed")?, "a SET failed");
        }
    }
    Ok(())
}

/// How one request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Answered from the cache.
    Hit,
    /// The cache said the key is not there: answered from PostgreSQL.
    Miss,
    /// The cache call failed or timed out: answered from PostgreSQL
    /// anyway (lesson 2's rule: a cache failure is a miss, though the
    /// service does not write back after one).
    CacheFailed,
    /// Not answered: the database failed, or the request took longer than
    /// [`GIVE_UP`]. What a user would see as an error page.
    Error,
}

impl Outcome {
    pub fn answered(self) -> bool {
        self != Outcome::Error
    }
}

/// The lesson's service state over `cache` and the fixture's PostgreSQL
/// (no replica: every fill reads the primary), with the experiments'
/// latency, deadline and keys. The experiments call [`read`] on it: the
/// service's own read path, without the HTTP around it.
pub fn service(cache: Cache, pool: &PgPool) -> anyhow::Result<AppState> {
    let mut settings = Settings::for_tests(PREFIX);
    settings.ttl = TTL;
    settings.client_mode = cache.mode();
    settings.redis_timeout = cache.timeout();
    settings.fill_from = FillFrom::Primary;
    settings.latency = LATENCY;
    settings.db_timeout = DB_TIMEOUT;
    let db = Db::new(
        pool.clone(),
        None,
        FillFrom::Primary,
        settings.replica_settings(),
    );
    AppState::new(cache, db, settings)
}

/// One `GET /users/{id}` through the service's [`read_user`], as the
/// experiments count it.
pub async fn read(state: &AppState, id: i64) -> Outcome {
    match read_user(state, id).await {
        Ok((_, crate::Outcome::Hit)) => Outcome::Hit,
        Ok((_, crate::Outcome::Miss(_))) => Outcome::Miss,
        Ok((_, crate::Outcome::Failed(_))) => Outcome::CacheFailed,
        // Every id the clients ask for exists: a 404 is as much an error
        // as a 503.
        Err(_) => Outcome::Error,
    }
}

/// One request as a client saw it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub id: i64,
    pub start: Instant,
    pub took: Duration,
    pub outcome: Outcome,
}

/// A flag the clients look at before each request: set, they stop.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn now(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `clients` closed-loop clients: each sends its next request as soon as
/// the previous one is answered, the `k`-th for user `pick(i, k)`, until
/// `stop` is set. A closed loop, not a fixed rate, on purpose: a client
/// stuck behind a stalled cache call sends nothing meanwhile, as a real
/// worker thread would, so a stall shows up as lost throughput too.
///
/// Returns the clients' handles: [`collect`] awaits them.
pub fn closed_loop<P, R, Fut>(
    clients: usize,
    stop: &Stop,
    pick: P,
    read: R,
) -> Vec<tokio::task::JoinHandle<Vec<Sample>>>
where
    P: Fn(usize, u64) -> i64 + Clone + Send + 'static,
    R: Fn(i64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    (0..clients)
        .map(|i| {
            let (pick, read, stop) = (pick.clone(), read.clone(), stop.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut k = 0u64;
                while !stop.is_set() {
                    let id = pick(i, k);
                    let start = Instant::now();
                    let outcome = tokio::time::timeout(GIVE_UP, read(id))
                        .await
                        .unwrap_or(Outcome::Error);
                    samples.push(Sample {
                        id,
                        start,
                        took: start.elapsed(),
                        outcome,
                    });
                    k += 1;
                }
                samples
            })
        })
        .collect()
}

/// Waits for every client (each finishes its request in flight, at most
/// [`GIVE_UP`] later) and returns all their samples, by start time.
pub async fn collect(
    clients: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
) -> anyhow::Result<Vec<Sample>> {
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.context("a client task failed")?);
    }
    all.sort_by_key(|s| s.start);
    Ok(all)
}

/// The `k`-th key client `i` asks for, out of `keys` (ids `1..=keys`): the
/// golden-ratio sequence from a different start per client. Spread evenly
/// and different for every client, yet the same on every run: no random
/// number generator to seed or report.
pub fn pick(i: usize, k: u64, keys: i64) -> i64 {
    let n = k.wrapping_mul(7919).wrapping_add(i as u64 * 104_729);
    let frac = (n as f64 * 0.618_033_988_75).fract();
    1 + ((frac * keys as f64) as i64).min(keys - 1)
}

/// Requests that started in one time bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The bucket's start, in seconds since the clients started.
    pub t: f64,
    pub requests: u64,
    /// Answered (from the cache or from PostgreSQL).
    pub ok: u64,
    /// Not answered.
    pub errors: u64,
    /// Answered from PostgreSQL because the cache call failed.
    pub cache_failures: u64,
    pub hits: u64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The samples by the bucket their request started in, from `t0`, every
/// bucket up to the last sample's (empty ones included: a stalled second
/// is a row of zeros, which is the point).
pub fn timeline(samples: &[Sample], t0: Instant, bucket: Duration) -> Vec<Bucket> {
    let index = |s: &Sample| {
        (s.start.saturating_duration_since(t0).as_millis() / bucket.as_millis().max(1)) as usize
    };
    let len = samples.iter().map(index).max().map_or(0, |m| m + 1);
    let mut took: Vec<Vec<Duration>> = vec![Vec::new(); len];
    let mut out: Vec<Bucket> = (0..len)
        .map(|i| Bucket {
            t: i as f64 * bucket.as_secs_f64(),
            ..Bucket::default()
        })
        .collect();
    for s in samples {
        let i = index(s);
        let b = &mut out[i];
        b.requests += 1;
        match s.outcome {
            Outcome::Hit => b.hits += 1,
            Outcome::Miss => {}
            Outcome::CacheFailed => b.cache_failures += 1,
            Outcome::Error => b.errors += 1,
        }
        if s.outcome.answered() {
            b.ok += 1;
        }
        took[i].push(s.took);
    }
    for (b, t) in out.iter_mut().zip(&took) {
        b.p99_ms = lab::units::quantile_ms(t, 0.99);
        b.max_ms = lab::units::quantile_ms(t, 1.0);
    }
    out
}

/// Latency quantile `q` of some samples, in ms (0 for none).
pub fn quantile(samples: &[&Sample], q: f64) -> f64 {
    let took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    lab::units::quantile_ms(&took, q)
}

/// A plain (not cluster) connection to one node, to ask it about itself.
pub async fn node(port: u16) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    tokio::time::timeout(NODE_CALL, client.get_multiplexed_async_connection())
        .await
        .with_context(|| format!("node {port} did not accept a connection within {NODE_CALL:?}"))?
        .with_context(|| format!("Failed to connect to node {port}"))
}

/// One command to one node, bounded by [`NODE_CALL`]. The answer, or the
/// engine's error as a `RedisError` (which some experiments show).
pub async fn ask<T: redis::FromRedisValue>(
    port: u16,
    cmd: &redis::Cmd,
) -> anyhow::Result<redis::RedisResult<T>> {
    let mut c = node(port).await?;
    tokio::time::timeout(NODE_CALL, cmd.query_async::<T>(&mut c))
        .await
        .with_context(|| format!("node {port} did not answer within {NODE_CALL:?}"))
}

/// How many keys the node on `port` holds.
pub async fn dbsize(port: u16) -> anyhow::Result<u64> {
    ask::<u64>(port, &redis::cmd("DBSIZE"))
        .await?
        .with_context(|| format!("DBSIZE on node {port}"))
}

/// `cluster_state` (`ok` or `fail`) as the node on `port` reports it.
pub async fn cluster_state(port: u16) -> anyhow::Result<String> {
    let info: String = ask(port, redis::cmd("CLUSTER").arg("INFO"))
        .await?
        .with_context(|| format!("CLUSTER INFO on {port}"))?;
    Ok(info
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster_state:"))
        .unwrap_or("unknown")
        .to_string())
}

/// Asks the node on `port` for its `cluster_state` every 50 ms until
/// `stop`, and returns when it first and last said `fail`, in seconds
/// since `t0` (`None`: it never did). A question that fails is skipped:
/// this watches, it does not judge.
pub async fn watch_state(port: u16, t0: Instant, stop: Stop) -> Option<(f64, f64)> {
    let mut span: Option<(f64, f64)> = None;
    while !stop.is_set() {
        let asked = t0.elapsed().as_secs_f64();
        if cluster_state(port).await.is_ok_and(|s| s == "fail") {
            span = Some(span.map_or((asked, asked), |(a, _)| (a, asked)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    span
}

/// The engine's hash slot of every key, by `CLUSTER KEYSLOT` on the node
/// on `port`, pipelined: one round trip, not one per key.
pub async fn keyslots(port: u16, keys: &[String]) -> anyhow::Result<Vec<u16>> {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("CLUSTER").arg("KEYSLOT").arg(k);
    }
    let mut c = node(port).await?;
    tokio::time::timeout(NODE_CALL * 4, pipe.query_async::<Vec<u16>>(&mut c))
        .await
        .with_context(|| format!("CLUSTER KEYSLOT on node {port} timed out"))?
        .with_context(|| format!("CLUSTER KEYSLOT on node {port}"))
}

/// The live masters, by port.
pub async fn masters(cluster: &RedisCluster) -> anyhow::Result<Vec<NodeInfo>> {
    let mut m: Vec<NodeInfo> = cluster
        .nodes_info()
        .await?
        .into_iter()
        .filter(|n| n.master && !n.failing && n.slot_count() > 0)
        .collect();
    m.sort_by_key(|n| n.slots.first().map_or(u16::MAX, |r| r.0));
    Ok(m)
}

/// The index in `masters` of the master serving `slot`, if any.
pub fn owner(masters: &[NodeInfo], slot: u16) -> Option<usize> {
    masters.iter().position(|m| m.serves(slot))
}

/// A node's slot ranges as `0-5460` or `0-5460, 10923`.
pub fn ranges(n: &NodeInfo) -> String {
    n.slots
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_cover_every_key_and_differ_per_client() {
        let mut seen = vec![0u32; 1000];
        for k in 0..100_000 {
            let id = pick(3, k, 1000);
            assert!((1..=1000).contains(&id));
            seen[(id - 1) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "every key is asked for");
        let a: Vec<i64> = (0..10).map(|k| pick(0, k, 1000)).collect();
        let b: Vec<i64> = (0..10).map(|k| pick(1, k, 1000)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn samples_land_in_their_bucket() {
        let t0 = Instant::now();
        let s = |ms: u64, took: u64, outcome| Sample {
            id: 1,
            start: t0 + Duration::from_millis(ms),
            took: Duration::from_millis(took),
            outcome,
        };
        let t = timeline(
            &[
                s(0, 1, Outcome::Hit),
                s(100, 3, Outcome::Miss),
                s(600, 500, Outcome::CacheFailed),
                s(700, 30_000, Outcome::Error),
            ],
            t0,
            Duration::from_millis(250),
        );
        assert_eq!(t.len(), 3, "an empty bucket is kept");
        assert_eq!((t[0].requests, t[0].ok, t[0].hits), (2, 2, 1));
        assert_eq!(t[1].requests, 0);
        assert_eq!(
            (t[2].requests, t[2].ok, t[2].errors, t[2].cache_failures),
            (2, 1, 1, 1)
        );
        assert_eq!(t[2].max_ms, 30_000.0);
        assert_eq!(t[2].t, 0.5);
    }
}
