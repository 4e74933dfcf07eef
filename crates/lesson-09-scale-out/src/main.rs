//! Lesson 9: `cargo run -p lesson-09-scale-out` (or `just lesson-9`) runs
//! the experiments; `--serve` (or `just serve-9`) serves the lesson's
//! service on 127.0.0.1:PORT.
//!
//! `--serve` needs no running servers: it spawns its own six-node Redis
//! Cluster (three masters, one replica each) and a PostgreSQL primary with
//! a streaming replica (from the local binaries, or Docker containers),
//! seeds the users, and tears all of them down on Ctrl-C. The cluster is
//! private because the lesson is about killing parts of it: try
//! `kill -STOP` (then `-CONT`) or `kill -9` on a master the log names, and
//! watch the `X-Cache` headers. (`DEBUG SLEEP` would do too, but Redis 7
//! refuses DEBUG unless `enable-debug-command` is set.)

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use lab::cluster::{ClusterOptions, RedisCluster};
use lab::replica::PgReplica;
use lesson_09_scale_out::cache::{ClientMode, Topology, wait_for_replicas};
use lesson_09_scale_out::cli::Args;
use lesson_09_scale_out::{AppState, router};
use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    lab::demo::run_or_serve(
        args.common.serve,
        lesson_09_scale_out::experiment::demo(&args),
        serve(&args),
        "the experiments are stopped",
    )
    .await
}

/// The service on 127.0.0.1:PORT over private servers, until Ctrl-C or
/// SIGTERM. Dropping `cluster` and `pg` at the end stops every node.
async fn serve(args: &Args) -> anyhow::Result<()> {
    let settings = args.settings();
    let cluster = RedisCluster::start(ClusterOptions::default())
        .await
        .context("`--serve` spawns a private Redis Cluster from the local redis-server")?;
    let pg = PgReplica::start([("max_connections", "100")])
        .await
        .context("`--serve` spawns a private PostgreSQL primary and replica")?;
    let pool = |url: String| {
        PgPoolOptions::new()
            .max_connections(args.common.pool_size)
            .acquire_timeout(settings.db_timeout)
            .connect_lazy(&url)
    };
    let primary = pool(pg.primary_url())?;
    let replica = pool(pg.standby_url())?;
    let seed = lab::seed::ensure_users_pg(&primary, args.common.users);
    tokio::time::timeout(Duration::from_secs(300), seed)
        .await
        .context("seeding the users took over 5 minutes")??;
    // The replica has the users once it has replayed the seed.
    pg.wait_replayed(&pg.primary_lsn().await?, Duration::from_secs(60))
        .await?;

    tracing::info!(
        "client: {}, fills from: {}, TTL {:?}, Redis deadline {:?}",
        settings.client_mode.name(),
        settings.fill_from.name(),
        settings.ttl,
        settings.redis_timeout
    );
    for n in cluster.nodes_info().await? {
        let role = if n.master { "master " } else { "replica" };
        tracing::info!(
            "Redis Cluster node 127.0.0.1:{} {role} {:?}",
            n.port,
            n.slots
        );
    }
    if settings.client_mode == ClientMode::ReplicaReads {
        // The client learns the replicas when it connects, and the cluster
        // lists them only once they have replicated something: on this
        // empty cluster, the masters' replication ping (every 10 s).
        tracing::info!("waiting until the cluster lists its replicas (up to ~10 s)");
        let took = wait_for_replicas(&cluster.urls(), Duration::from_secs(30)).await?;
        tracing::info!("replicas listed after {took:.1?}");
    }
    let topology = Topology::Cluster(cluster.urls());
    let state = AppState::connect(&topology, primary, Some(replica), settings).await?;
    let running = lab::http::spawn_server(router(state), args.common.port).await?;
    let base = running.base_url();
    tracing::info!("serving on {base}");
    tracing::info!("try: curl -i {base}/users/42    # MISS, then HIT");
    tracing::info!(
        "try: curl -i -X PUT -H 'content-type: application/json' -d '{{\"name\":\"Ada\"}}' {base}/users/42"
    );
    tracing::info!("try: curl -s {base}/metrics");
    let signal = lab::demo::stop_signal().await?;
    tracing::info!("{signal}: stopping the service, the cluster and the databases");
    running.shutdown().await?;
    drop(cluster);
    drop(pg);
    Ok(())
}
