use std::sync::Arc;

use clap::Parser;
use lesson_07_stampede::Instance;
use lesson_07_stampede::cli::Args;
use lesson_07_stampede::db::Queries;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    lab::demo::run_or_serve(
        args.common.serve,
        lesson_07_stampede::experiment::demo(&args),
        serve(&args),
        "the experiments are stopped",
    )
    .await
}

/// One instance on 127.0.0.1:PORT, until Ctrl-C or SIGTERM.
async fn serve(args: &Args) -> anyhow::Result<()> {
    let (_pg, pool) = args.common.provision_postgres().await?;
    let redis = lab::discover(lab::Kind::Redis).await?;
    let settings = args.settings();
    tracing::info!(
        "strategy: {}, TTL {:?} (jitter {}), negative TTL {:?}, XFetch β {}",
        settings.strategy.name(),
        settings.ttl,
        settings.jitter,
        settings.negative_ttl,
        settings.beta
    );
    let instance = Instance::start(pool, redis.url(), settings, Arc::new(Queries::new()))?;
    let running = lab::http::spawn_server(instance.router(), args.common.port).await?;
    let base = running.base_url();
    tracing::info!("serving on {base}");
    tracing::info!("try: curl -i {base}/users/42    # MISS, then HIT");
    tracing::info!("try: curl -s {base}/metrics");
    let signal = lab::demo::stop_signal().await?;
    tracing::info!("{signal}: stopping");
    running.shutdown().await?;
    Ok(())
}
