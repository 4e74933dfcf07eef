//! Lesson 9's servers: a real Redis Cluster that fails over when a master is
//! killed, and a streaming PostgreSQL standby whose replay can be paused.

use std::time::Duration;

use lab::Kind;
use lab::cluster::{ClusterOptions, RedisCluster};
use lab::replica::PgReplica;
use lab::spawn::can_spawn;
use sqlx::Connection;

#[tokio::test]
async fn a_cluster_forms_serves_and_fails_over() {
    if !can_spawn(Kind::Redis, "a_cluster_forms_serves_and_fails_over") {
        return;
    }
    let mut cluster = RedisCluster::start(ClusterOptions {
        node_timeout: Duration::from_millis(1000),
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    let nodes = cluster.nodes_info().await.expect("nodes");
    assert_eq!(nodes.len(), 6);
    let masters: Vec<_> = nodes.iter().filter(|n| n.master).collect();
    assert_eq!(masters.len(), 3);
    assert_eq!(masters.iter().map(|m| m.slot_count()).sum::<usize>(), 16384);
    // Every replica follows a master.
    assert!(
        nodes
            .iter()
            .filter(|n| !n.master)
            .all(|r| masters.iter().any(|m| Some(&m.id) == r.master_id.as_ref()))
    );

    // The engine's hash slot: a hash tag hashes only what is inside {}.
    let a = cluster.keyslot("{user:42}:profile").await.expect("slot");
    let b = cluster.keyslot("{user:42}:orders").await.expect("slot");
    assert_eq!(a, b);
    assert_eq!(a, cluster.keyslot("user:42").await.expect("slot"));

    let victim = cluster.master_of(a).await.expect("owner");
    cluster.kill(victim.port).expect("kill");
    let (new, after) = cluster
        .wait_promoted(&victim, Duration::from_secs(20))
        .await
        .expect("a replica is promoted");
    assert_ne!(new.port, victim.port);
    assert!(new.serves(a), "the promoted replica serves the slot");
    assert!(after < Duration::from_secs(20));
    cluster
        .wait_ok(Duration::from_secs(10))
        .await
        .expect("healthy again");
}

#[tokio::test]
async fn a_paused_standby_answers_from_the_past_until_it_replays() {
    if !can_spawn(Kind::Postgres, "a_paused_standby_answers_from_the_past") {
        return;
    }
    let r = PgReplica::start(Vec::<(String, String)>::new())
        .await
        .expect("primary and standby");
    let mut primary = sqlx::PgConnection::connect(&r.primary_url())
        .await
        .expect("primary");
    let mut standby = sqlx::PgConnection::connect(&r.standby_url())
        .await
        .expect("standby");
    sqlx::raw_sql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
        .execute(&mut primary)
        .await
        .expect("create");
    let lsn = r.primary_lsn().await.expect("lsn");
    r.wait_replayed(&lsn, Duration::from_secs(10))
        .await
        .expect("replayed");
    let v = read_v(&mut standby).await;
    assert_eq!(v, 1);

    r.pause_replay().await.expect("pause");
    sqlx::query("UPDATE t SET v = 2")
        .execute(&mut primary)
        .await
        .expect("update");
    let lsn = r.primary_lsn().await.expect("lsn");
    // Received but not replayed: the standby still says 1, however long we wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v = read_v(&mut standby).await;
    assert_eq!(v, 1, "a paused standby must not have replayed the update");
    assert!(r.lag_bytes().await.expect("lag") > 0);

    r.resume_replay().await.expect("resume");
    r.wait_replayed(&lsn, Duration::from_secs(10))
        .await
        .expect("replayed");
    let v = read_v(&mut standby).await;
    assert_eq!(v, 2);
}

async fn read_v(c: &mut sqlx::PgConnection) -> i32 {
    let (v,): (i32,) = sqlx::query_as("SELECT v FROM t")
        .fetch_one(c)
        .await
        .expect("read");
    v
}
