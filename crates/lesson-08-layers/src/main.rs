use clap::Parser;
use lesson_08_layers::Instance;
use lesson_08_layers::cli::Args;
use lesson_08_layers::hooks::Hooks;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    lab::demo::run_or_serve(
        args.common.serve,
        lesson_08_layers::experiment::demo(&args),
        serve(&args),
        "the instances are stopped",
    )
    .await
}

/// One instance on 127.0.0.1:PORT. Start a second with another PORT: both
/// use the same `DATABASE_URL`, `REDIS_URL` and schema.
async fn serve(args: &Args) -> anyhow::Result<()> {
    let (_pg, pool) = args.common.provision_postgres().await?;
    let redis = lab::discover(lab::Kind::Redis).await?;
    let settings = args.settings();
    tracing::info!(
        "invalidation: {}, fill: {}, L1: {} entries for {:?}, Redis TTL {:?}, outbox relay every {:?}",
        settings.invalidation.name(),
        settings.fill.name(),
        settings.l1_capacity,
        settings.l1_ttl,
        settings.ttl,
        settings.outbox_every
    );
    let instance = Instance::start(pool, redis.url(), settings, Hooks::default()).await?;
    let running = lab::http::spawn_server(instance.router(), args.common.port).await?;
    let base = running.base_url();
    tracing::info!("serving on {base}");
    tracing::info!("try: curl -i {base}/users/42    # MISS, then L1");
    tracing::info!(
        "try: curl -i -X PUT {base}/users/42 -H 'content-type: application/json' -d '{{\"name\":\"Ada\",\"email\":\"ada@example.com\"}}'"
    );
    // +2, not +1: `just book` serves on 3001.
    tracing::info!(
        "a second instance: PORT={} just lesson-8 --serve",
        args.common.port + 2
    );
    let signal = lab::demo::stop_signal().await?;
    tracing::info!("{signal}: stopping");
    running.shutdown().await?;
    drop(instance);
    Ok(())
}
