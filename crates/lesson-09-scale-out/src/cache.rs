//! Lesson 2's three cache calls (GET, SET with a TTL, DEL), with one Redis
//! or a Redis Cluster behind one type.
//!
//! What this file teaches:
//!
//! - **The code change to a cluster is small.** Lesson 2 built one
//!   `ConnectionManager` from one URL; here [`Cache::connect`] builds a
//!   `ClusterClient` from the seed URLs instead. The client asks a seed
//!   for the slot map (`CLUSTER SLOTS`), hashes each key to its slot
//!   (CRC16 mod 16,384) and sends the command to the master that owns it.
//!   When a slot moves (a reshard, a failover) the node answers `MOVED` or
//!   `ASK` and the client follows it and refreshes its map by itself.
//! - **The client's defaults are the risk.** redis-rs's cluster client
//!   retries 16 times, waiting 1.28 s or more before each retry, with no
//!   response timeout. When a master dies, a request for one of its keys
//!   waits through those retries: the cache, meant to save milliseconds,
//!   costs seconds. [`ClientMode`] has the untuned client (to measure), a
//!   bounded one (a failure is a miss within 500 ms) and one that also
//!   reads from replicas (a dead master's keys are still hits).
//! - **Hash tags** ([`user_key`]): only the part of a key inside `{…}` is
//!   hashed, so a user's keys share a slot and multi-key commands over
//!   them work ([`Cache::mget_same_slot`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use lab::log::Throttle;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_read_routing::RandomReplicaStrategy;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};

/// Where the cache lives: one Redis, or the seed URLs of a Redis Cluster
/// (any few of its nodes; the client learns the rest from them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    Single(String),
    Cluster(Vec<String>),
}

/// How the Redis client is configured: the lesson's knob `CLIENT_MODE`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ClientMode {
    /// redis-rs's own defaults and no outer deadline: what an untuned
    /// client does when a master dies (it stalls). Here to be measured,
    /// never to be copied.
    Defaults,
    /// Response and connection timeouts of 500 ms, few quick retries, and
    /// `lab::cache::call`'s deadline around every call: a failure is a
    /// miss, answered from the database.
    Bounded,
    /// `Bounded`, and GETs go to a replica of the key's shard: while a
    /// master is dead (before its replica is promoted) its keys are still
    /// hits. The price: a replica lags its master by a little, so a read
    /// right after a SET or DEL may see the old state. And a caveat: the
    /// client learns the replicas from `CLUSTER SLOTS` when it connects,
    /// which lists them only once they have replicated something (see
    /// [`wait_for_replicas`]).
    ReplicaReads,
}

impl ClientMode {
    pub const ALL: [ClientMode; 3] = [
        ClientMode::Defaults,
        ClientMode::Bounded,
        ClientMode::ReplicaReads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ClientMode::Defaults => "defaults",
            ClientMode::Bounded => "bounded",
            ClientMode::ReplicaReads => "replica-reads",
        }
    }
}

/// The default deadline of one cache call: 500 ms, ten times lesson 2's
/// 50 ms. A call to a cluster may take two hops (a `MOVED` or `ASK` during
/// a reshard, then the right node) and, after a failover, a refresh of the
/// slot map; 50 ms would turn those ordinary events into misses. It is
/// still far below the database's latency, so a failing cache costs a
/// request little.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// `Defaults` has no deadline of ours; this bound is only the harness's
/// guard, so that an experiment cannot hang forever. It is far past
/// anything the untuned client is measured at.
const DEFAULTS_GUARD: Duration = Duration::from_secs(120);

/// How long building a connection may take (the cluster client connects
/// to the seeds and reads the slot map before it returns).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The underlying connection: lesson 2's connection manager, or a cluster
/// connection. Both are cheap to clone (handles to one multiplexed
/// connection each) and both are `ConnectionLike`, so any redis-rs command
/// runs on either.
#[derive(Clone)]
pub enum CacheConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for CacheConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheConn::Single(_) => "CacheConn::Single",
            CacheConn::Cluster(_) => "CacheConn::Cluster",
        })
    }
}

impl ConnectionLike for CacheConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            CacheConn::Single(c) => c.req_packed_command(cmd),
            CacheConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            CacheConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            CacheConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            CacheConn::Single(c) => c.get_db(),
            CacheConn::Cluster(c) => c.get_db(),
        }
    }
}

/// What a GET found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit(String),
    Miss,
    /// An error or a timeout, already counted and logged: the caller
    /// treats it as a miss that should not be filled in a hurry.
    Failed,
}

/// The cache: a connection, how it was configured, its deadline, and a
/// count of the calls that failed.
#[derive(Clone)]
pub struct Cache {
    conn: CacheConn,
    mode: ClientMode,
    timeout: Duration,
    failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("conn", &self.conn)
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A Redis failure is logged at most once per this period per call site:
/// during an outage every request fails the same way (lesson 2).
const WARN_EVERY: Duration = Duration::from_secs(5);

impl Cache {
    /// Connects with [`DEFAULT_TIMEOUT`] as the deadline of each call.
    pub async fn connect(topology: &Topology, mode: ClientMode) -> anyhow::Result<Cache> {
        Cache::connect_with_timeout(topology, mode, DEFAULT_TIMEOUT).await
    }

    /// Connects; `timeout` is the deadline of each call (and the client's
    /// own response and connection timeouts) in the bounded modes.
    pub async fn connect_with_timeout(
        topology: &Topology,
        mode: ClientMode,
        timeout: Duration,
    ) -> anyhow::Result<Cache> {
        let conn = match topology {
            Topology::Single(url) => CacheConn::Single(single(url, mode, timeout)?),
            Topology::Cluster(urls) => {
                let client = cluster_client(urls, mode, timeout)?;
                let connect = client.get_async_connection();
                let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                    .await
                    .with_context(|| {
                        format!("the Redis Cluster at {urls:?} did not answer within {CONNECT_TIMEOUT:?}")
                    })?
                    .with_context(|| format!("Failed to connect to the Redis Cluster at {urls:?}"))?;
                CacheConn::Cluster(conn)
            }
        };
        Ok(Cache {
            conn,
            mode,
            timeout,
            failures: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn mode(&self) -> ClientMode {
        self.mode
    }

    /// The deadline of one call (`REDIS_TIMEOUT_MS`); `Defaults` ignores it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many calls failed (error or timeout) since the cache was built.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Raw access for experiments (MGET and CROSSSLOT demos, throughput
    /// loops): the underlying connection, with no deadline of ours.
    pub fn connection(&self) -> CacheConn {
        self.conn.clone()
    }

    /// Reads a key. Any failure (a dead master, a timeout) is
    /// [`Lookup::Failed`]: counted, logged (throttled), and the caller
    /// answers from the database.
    #[tracing::instrument(skip(self), fields(mode = self.mode.name()))]
    pub async fn get(&self, key: &str) -> Lookup {
        static FAILED: Throttle = Throttle::new(WARN_EVERY);
        let mut conn = self.conn.clone();
        let get = async move { conn.get::<_, Option<String>>(key).await };
        match self
            .bounded(get, "GET", "serving from the database", &FAILED)
            .await
        {
            Some(Some(value)) => Lookup::Hit(value),
            Some(None) => Lookup::Miss,
            None => Lookup::Failed,
        }
    }

    /// Writes a key with a TTL. `false`: it failed (counted, logged); the
    /// next read misses, nothing worse.
    #[tracing::instrument(skip(self, value), fields(mode = self.mode.name()))]
    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> bool {
        static FAILED: Throttle = Throttle::new(WARN_EVERY);
        let mut conn = self.conn.clone();
        let secs = ttl.as_secs().max(1);
        let set = async move { conn.set_ex::<_, _, ()>(key, value, secs).await };
        self.bounded(set, "SET", "the next read will miss", &FAILED)
            .await
            .is_some()
    }

    /// Deletes a key. `false`: it failed, and the old copy lives until its
    /// TTL (lesson 2's backstop).
    #[tracing::instrument(skip(self), fields(mode = self.mode.name()))]
    pub async fn del(&self, key: &str) -> bool {
        static FAILED: Throttle = Throttle::new(WARN_EVERY);
        let mut conn = self.conn.clone();
        let del = async move { conn.del::<_, ()>(key).await };
        self.bounded(del, "DEL", "the old copy lives until its TTL", &FAILED)
            .await
            .is_some()
    }

    // ANCHOR: mget_same_slot
    /// One `MGET` to one node: atomic, one round trip. Redis Cluster runs a
    /// multi-key command only when every key hashes to the same slot;
    /// otherwise the node refuses it with `CROSSSLOT`, which comes back
    /// here as [`SlotError::CrossSlot`], naming the fix.
    ///
    /// (redis-rs's own `mget` on a cluster connection does not fail: it
    /// quietly splits the command into one MGET per slot, a round trip to
    /// each node, and no longer atomic. This call sends it whole, as a
    /// transaction or a Lua script must be sent.)
    #[tracing::instrument(skip(self), fields(mode = self.mode.name()))]
    pub async fn mget_same_slot(&self, keys: &[&str]) -> Result<Vec<Option<String>>, SlotError> {
        let Some(first) = keys.first() else {
            return Ok(Vec::new());
        };
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(*k);
        }
        let limit = self.limit();
        let value = match self.conn.clone() {
            CacheConn::Single(mut c) => {
                tokio::time::timeout(limit, async move { cmd.query_async(&mut c).await }).await
            }
            CacheConn::Cluster(mut c) => {
                // Sent to the master of the first key's slot, unsplit.
                let route = Route::with_key(first.as_bytes(), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                tokio::time::timeout(limit, c.route_command(cmd, routing)).await
            }
        };
        // The cluster connection hands a node's error back as a value;
        // `extract_error` makes it an `Err` like the single connection's.
        let value = match value.map(|r| r.and_then(Value::extract_error)) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) if e.code() == Some("CROSSSLOT") => {
                return Err(SlotError::CrossSlot(
                    keys.iter().map(|k| k.to_string()).collect(),
                ));
            }
            Ok(Err(e)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(SlotError::Failed(format!("MGET failed: {e}")));
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(SlotError::Failed(format!("MGET timed out after {limit:?}")));
            }
        };
        redis::from_redis_value(value)
            .map_err(|e| SlotError::Failed(format!("MGET's answer was not strings: {e}")))
    }
    // ANCHOR_END: mget_same_slot

    /// This mode's deadline for one call: ours in the bounded modes, only
    /// the harness's guard in `Defaults`.
    fn limit(&self) -> Duration {
        match self.mode {
            ClientMode::Defaults => DEFAULTS_GUARD,
            ClientMode::Bounded | ClientMode::ReplicaReads => self.timeout,
        }
    }

    /// One cache call: through `lab::cache::call` with the deadline in the
    /// bounded modes; with only the harness's guard in `Defaults`. Either
    /// way a failure is counted and logged here, and is `None`.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
        what: &str,
        then: &str,
        throttle: &Throttle,
    ) -> Option<T> {
        let failed = |why: lab::cache::Failure| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            throttle.warn(format_args!(
                "Redis {what} {why} ({} client); {then}",
                self.mode.name()
            ));
        };
        lab::cache::call(self.limit(), call, failed).await
    }
}

/// Why [`Cache::mget_same_slot`] gave nothing back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotError {
    /// The keys hash to more than one slot: Redis Cluster refused them.
    CrossSlot(Vec<String>),
    /// Redis failed or did not answer in time.
    Failed(String),
}

impl std::fmt::Display for SlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlotError::CrossSlot(keys) => write!(
                f,
                "CROSSSLOT: the keys {keys:?} hash to different slots, and Redis Cluster runs a \
                 multi-key command only within one slot; put the shared part in {{…}} so only it \
                 is hashed: {{user:42}}:profile and {{user:42}}:orders share a slot"
            ),
            SlotError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SlotError {}

/// Waits until every node of the cluster lists a replica for every slot
/// range in `CLUSTER SLOTS`; returns how long that took.
///
/// Why it is needed: the cluster client reads `CLUSTER SLOTS` when it
/// connects, and again only after an error or a `MOVED`. Redis 7 leaves
/// out of that answer every replica that has not replicated a byte yet
/// (its offset is 0, as on a cluster that has never been written to), and
/// the other nodes learn a replica's offset by gossip. A `replica-reads`
/// client connected before then has a map without replicas, and sends
/// every GET to the masters until something makes it refresh: typically
/// the very failure it was meant to survive.
pub async fn wait_for_replicas(urls: &[String], within: Duration) -> anyhow::Result<Duration> {
    let t0 = std::time::Instant::now();
    loop {
        let mut missing = None;
        for url in urls {
            match replicas_listed(url).await {
                Ok(true) => {}
                Ok(false) => missing = Some(format!("{url} lists a slot range with no replica")),
                // A dead node says nothing; the others decide.
                Err(_) => {}
            }
        }
        let Some(why) = missing else {
            return Ok(t0.elapsed());
        };
        anyhow::ensure!(t0.elapsed() < within, "after {within:?}: {why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the node at `url` lists at least one replica for each of its
/// `CLUSTER SLOTS` ranges (each entry: start, end, master, replicas…).
async fn replicas_listed(url: &str) -> anyhow::Result<bool> {
    let ask = async {
        let client = redis::Client::open(url)?;
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async::<Vec<Vec<Value>>>(&mut c)
            .await
    };
    let slots = tokio::time::timeout(DEFAULT_TIMEOUT, ask)
        .await
        .with_context(|| format!("{url} did not answer CLUSTER SLOTS"))??;
    Ok(!slots.is_empty() && slots.iter().all(|range| range.len() >= 4))
}

// ANCHOR: user_key
/// The key of a user's cached JSON: `{prefix}{user:ID}`.
///
/// The braces are a **hash tag**: when a key holds `{…}`, Redis Cluster
/// hashes only what is inside to pick the slot. So `{user:42}`,
/// `{user:42}:orders` and `{user:42}:profile` all land on the same slot,
/// on the same master, and an `MGET`, a `MULTI`/`EXEC` or a Lua script
/// over them works. Without the tag, `user:42` and `user:42:orders` would
/// usually hash to different slots, and any command over both would be
/// refused with `CROSSSLOT`. (Tag only what belongs together: a tag shared
/// by every key, `{users}:42`, would put the whole cache on one master.)
pub fn user_key(prefix: &str, id: i64) -> String {
    format!("{prefix}{{user:{id}}}")
}
// ANCHOR_END: user_key

/// Lesson 2's connection manager for one Redis. `Defaults`: redis-rs's own
/// config (a 500 ms response timeout, 1 s to connect, 6 reconnect
/// attempts); the bounded modes: lesson 2's `redis_manager`, with
/// `timeout` for both and one reconnect attempt per request.
fn single(url: &str, mode: ClientMode, timeout: Duration) -> anyhow::Result<ConnectionManager> {
    match mode {
        ClientMode::Defaults => {
            let client =
                redis::Client::open(url).with_context(|| format!("bad Redis URL {url}"))?;
            let config = redis::aio::ConnectionManagerConfig::new();
            Ok(ConnectionManager::new_lazy_with_config(client, config)?)
        }
        ClientMode::Bounded | ClientMode::ReplicaReads => {
            lesson_02_cache_aside::redis_manager(url, timeout)
        }
    }
}

// ANCHOR: connect
/// The cluster client, per mode. This is the only code that differs from
/// lesson 2: seed URLs instead of one, and the client does the routing.
///
/// redis-rs 1.8's defaults (`ClusterClientBuilder` with nothing set):
/// 16 retries, each after a random wait of at least 1.28 s (up to 655 s);
/// a 1 s connection timeout; no response timeout at all. A retry is also
/// how it follows `MOVED` and `ASK`, which is why retries exist; but when
/// a master is dead, a request for one of its keys waits through them.
fn cluster_client(
    urls: &[String],
    mode: ClientMode,
    timeout: Duration,
) -> anyhow::Result<ClusterClient> {
    let builder = ClusterClient::builder(urls.iter().map(String::as_str));
    let builder = match mode {
        // Nothing set: to measure what an untuned client does.
        ClientMode::Defaults => builder,
        ClientMode::Bounded | ClientMode::ReplicaReads => {
            let bounded = builder
                // A node that does not answer within the deadline is a
                // failure now, not after 16 retries.
                .response_timeout(timeout)
                .connection_timeout(timeout)
                // Three retries: enough to follow a MOVED and then an ASK
                // during a reshard, and to retry once after a refresh of
                // the slot map; waits of 10 to 100 ms, not seconds. Our
                // outer deadline cuts whatever is left anyway.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(100);
            if mode == ClientMode::ReplicaReads {
                // Reads (GET) go to a random replica of the key's shard,
                // writes to its master. (`read_from_replicas()` is the
                // deprecated spelling of the same thing.)
                bounded.read_routing_strategy(RandomReplicaStrategy)
            } else {
                bounded
            }
        }
    };
    builder
        .build()
        .with_context(|| format!("bad Redis Cluster seed URLs {urls:?}"))
}
// ANCHOR_END: connect

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_carry_the_hash_tag() {
        assert_eq!(user_key("l9:workshop:", 42), "l9:workshop:{user:42}");
        // Only the tag is hashed: a user's keys share a slot, whatever the
        // prefix or suffix.
        let slot = |k: &str| Route::with_key(k, SlotAddr::Master);
        assert_eq!(slot(&user_key("a:", 42)), slot("{user:42}:orders"));
        assert_eq!(slot(&user_key("b:", 42)), slot("{user:42}:profile"));
    }

    #[test]
    fn the_cross_slot_error_names_the_fix() {
        let e = SlotError::CrossSlot(vec!["user:1".into(), "user:2".into()]);
        assert!(e.to_string().contains("{user:42}:profile"), "{e}");
    }
}
