//! The cache on a real Redis Cluster (six private nodes): every key lands
//! on the master that owns its slot, the keys spread over all three
//! masters, a multi-key command needs one slot (hash tags), and a killed
//! master costs a bounded client misses, not stalls, while a client that
//! reads from replicas still hits. Counts, owners and headers; the one
//! timing is a generous "no hang" bound.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lab::Kind;
use lab::cluster::{ClusterOptions, NodeInfo, RedisCluster};
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use lesson_09_scale_out::cache::{
    Cache, CacheConn, ClientMode, SlotError, Topology, user_key, wait_for_replicas,
};
use lesson_09_scale_out::replica::{Db, FillFrom};
use lesson_09_scale_out::{AppState, Outcome, Settings, read_user};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use sqlx::postgres::PgPoolOptions;

const PREFIX: &str = "l9:test:";

async fn cluster(node_timeout: Duration) -> RedisCluster {
    RedisCluster::start(ClusterOptions {
        masters: 3,
        replicas: 1,
        node_timeout,
        require_full_coverage: true,
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A plain (not cluster) connection to one node: questions about the node
/// itself, answered without redirection.
async fn node(port: u16) -> MultiplexedConnection {
    lab::testing::redis_conn(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("node {port}: {e:#}"))
}

async fn keyslot(c: &mut MultiplexedConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(c)
        .await
        .expect("CLUSTER KEYSLOT")
}

fn masters(nodes: &[NodeInfo]) -> Vec<NodeInfo> {
    nodes
        .iter()
        .filter(|n| n.master && !n.failing)
        .cloned()
        .collect()
}

#[tokio::test]
async fn keys_land_on_the_master_that_owns_their_slot_and_spread_over_all() {
    if !can_spawn(Kind::Redis, "keys_land_on_the_master_that_owns_their_slot") {
        return;
    }
    let cluster = cluster(Duration::from_secs(3)).await;
    let cache = Cache::connect(&Topology::Cluster(cluster.urls()), ClientMode::Bounded)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let keys: Vec<String> = (1..=200).map(|id| user_key(PREFIX, id)).collect();
    for k in &keys {
        assert!(
            cache.set(k, "{}", Duration::from_secs(600)).await,
            "SET {k}"
        );
    }

    let masters = masters(&cluster.nodes_info().await.expect("CLUSTER NODES"));
    assert_eq!(masters.len(), 3);
    let mut conns = HashMap::new();
    for m in &masters {
        conns.insert(m.port, node(m.port).await);
    }
    let mut per_master: HashMap<u16, usize> = HashMap::new();
    for k in &keys {
        let any = conns.values_mut().next().expect("a master");
        let slot = keyslot(any, k).await;
        let owner = masters
            .iter()
            .find(|m| m.serves(slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
            .port;
        *per_master.entry(owner).or_default() += 1;
        for (port, c) in conns.iter_mut() {
            // Each node's own keys in that slot: only the owner has any.
            let here: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(1000)
                .query_async(c)
                .await
                .expect("CLUSTER GETKEYSINSLOT");
            assert_eq!(
                here.contains(k),
                *port == owner,
                "{k} (slot {slot}) on node {port}; its slot's master is {owner}"
            );
        }
        let exists: bool = conns
            .get_mut(&owner)
            .expect("owner")
            .exists(k)
            .await
            .expect("EXISTS");
        assert!(exists, "{k} on its master {owner}");
    }
    // 200 keys over three equal thirds of the slots: each master has some.
    assert_eq!(per_master.len(), 3, "{per_master:?}");
    assert!(per_master.values().all(|n| *n >= 20), "{per_master:?}");
}

#[tokio::test]
async fn a_multi_key_command_needs_one_slot_and_a_hash_tag_gives_it() {
    if !can_spawn(Kind::Redis, "a_multi_key_command_needs_one_slot") {
        return;
    }
    let cluster = cluster(Duration::from_secs(3)).await;
    let cache = Cache::connect(&Topology::Cluster(cluster.urls()), ClientMode::Bounded)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ttl = Duration::from_secs(600);

    // Two users without a hash tag: different slots (the engine says so).
    let (a, b) = (format!("{PREFIX}user:1"), format!("{PREFIX}user:2"));
    let mut any = node(cluster.ports()[0]).await;
    assert_ne!(keyslot(&mut any, &a).await, keyslot(&mut any, &b).await);
    assert!(cache.set(&a, "one", ttl).await && cache.set(&b, "two", ttl).await);
    let err = cache
        .mget_same_slot(&[&a, &b])
        .await
        .expect_err("MGET over two slots must be refused");
    assert!(matches!(err, SlotError::CrossSlot(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("CROSSSLOT") && message.contains("{user:42}:profile"),
        "the error names the fix: {message}"
    );

    // A user's own keys share the tag, so a slot, so one MGET works.
    let profile = format!("{}:profile", user_key(PREFIX, 42));
    let orders = format!("{}:orders", user_key(PREFIX, 42));
    assert_eq!(
        keyslot(&mut any, &profile).await,
        keyslot(&mut any, &orders).await
    );
    assert!(cache.set(&profile, "p", ttl).await && cache.set(&orders, "o", ttl).await);
    let both = cache
        .mget_same_slot(&[&profile, &orders])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(both, vec![Some("p".to_string()), Some("o".to_string())]);

    // redis-rs's own `mget` on the cluster connection does not fail: it
    // splits the command per slot (two round trips, not atomic).
    let CacheConn::Cluster(mut c) = cache.connection() else {
        panic!("a cluster connection");
    };
    let split: Vec<Option<String>> = c.mget(&[&a, &b]).await.expect("split MGET");
    assert_eq!(
        split,
        vec![Some("one".to_string()), Some("two".to_string())]
    );
}

/// A service state on the cluster with `mode`, over `pool` (no replica:
/// every fill reads the primary).
async fn state(cluster: &RedisCluster, mode: ClientMode, pool: &sqlx::PgPool) -> AppState {
    let mut settings = Settings::for_tests(PREFIX);
    settings.client_mode = mode;
    let cache = Cache::connect_with_timeout(
        &Topology::Cluster(cluster.urls()),
        mode,
        settings.redis_timeout,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let db = Db::new(
        pool.clone(),
        None,
        FillFrom::Primary,
        settings.replica_settings(),
    );
    AppState::new(cache, db, settings).unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test]
async fn a_killed_master_costs_misses_not_stalls_and_replica_reads_still_hit() {
    let test = "a_killed_master_costs_misses_not_stalls";
    if !can_spawn(Kind::Redis, test) || !can_spawn(Kind::Postgres, test) {
        return;
    }
    let pg = Instance::start_new(Kind::Postgres, SpawnOptions::plain())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&pg.url())
        .await
        .expect("PostgreSQL");
    lab::seed::ensure_users_pg(&pool, 100)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // node_timeout 1 s: the failover takes a few seconds, not ten.
    let mut cluster = cluster(Duration::from_secs(1)).await;
    let bounded = state(&cluster, ClientMode::Bounded, &pool).await;

    // Warm users 1..=60 (a MISS each, then in Redis), and find the ones
    // on the master about to die.
    let ids: Vec<i64> = (1..=60).collect();
    for id in &ids {
        let (_, outcome) = read_user(&bounded, *id).await.expect("warm");
        assert!(matches!(outcome, Outcome::Miss(_)), "{id}: {outcome:?}");
    }
    // The replica-reading client connects once the cluster lists the
    // replicas (they have replicated the warm-up by now): connected
    // earlier, it would not know them and would read the masters.
    wait_for_replicas(&cluster.urls(), Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let replicas = state(&cluster, ClientMode::ReplicaReads, &pool).await;
    let victim = masters(&cluster.nodes_info().await.expect("CLUSTER NODES"))[0].clone();
    let mut any = node(cluster.ports()[0]).await;
    let mut doomed = Vec::new();
    for id in &ids {
        if victim.serves(keyslot(&mut any, &bounded.settings.key(*id)).await) {
            doomed.push(*id);
        }
    }
    drop(any);
    assert!(doomed.len() >= 5, "users on the victim: {doomed:?}");

    // Replication is asynchronous: wait until the replica-reading client
    // sees every doomed key (a few ms), so that "hit" below means "served
    // by the replica", not "not yet replicated".
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &doomed {
        loop {
            let (_, o) = read_user(&replicas, *id).await.expect("read");
            if o == Outcome::Hit {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "user {id} never reached the replica"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    cluster.kill(victim.port).expect("kill");
    // Before any promotion: replica reads still hit the dead master's keys.
    for id in &doomed {
        let (_, o) = read_user(&replicas, *id).await.expect("replica read");
        assert_eq!(o, Outcome::Hit, "user {id} with its master dead");
    }
    let still_dead = cluster.nodes_info().await.expect("CLUSTER NODES");
    let slot = victim.slots[0].0;
    assert!(
        !still_dead
            .iter()
            .any(|n| n.master && n.port != victim.port && n.serves(slot)),
        "the replica reads above must have happened before the promotion: {still_dead:#?}"
    );

    // The bounded client, through the whole window: every doomed user is
    // answered (a MISS from the database, or a HIT once promoted), and no
    // request takes longer than the bound. Runs until the promotion.
    let bound = Duration::from_secs(3);
    let mut answered_from_db = 0;
    let window = Instant::now();
    let promoted = loop {
        for id in &doomed {
            let t0 = Instant::now();
            let (user, o) = read_user(&bounded, *id).await.expect("answered");
            let took = t0.elapsed();
            assert_eq!(user.id, *id);
            assert!(took < bound, "user {id} took {took:?} ({o:?})");
            if matches!(o, Outcome::Failed(_) | Outcome::Miss(_)) {
                answered_from_db += 1;
            }
        }
        let now = cluster.nodes_info().await.unwrap_or_default();
        if let Some(n) = now
            .into_iter()
            .find(|n| n.master && !n.failing && n.port != victim.port && n.serves(slot))
        {
            break n;
        }
        assert!(
            window.elapsed() < Duration::from_secs(30),
            "no promotion within 30 s"
        );
    };
    assert!(answered_from_db > 0, "the dead master's keys were misses");
    assert_ne!(promoted.port, victim.port);

    // After the promotion the replica (now master) has the keys: HITs
    // again, once the client has learned the new map.
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in &doomed {
        loop {
            let (_, o) = read_user(&bounded, *id).await.expect("read");
            if o == Outcome::Hit {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "user {id} is not a hit after the promotion ({o:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
