use clap::Parser;
use lesson_06_http_edge::cli::Args;
use lesson_06_http_edge::edge::EdgeConfig;
use lesson_06_http_edge::origin::{OriginSettings, origin};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    lab::demo::run_or_serve(
        args.common.serve,
        lesson_06_http_edge::experiment::demo(&args),
        serve(&args),
        "the edges and origins are stopped",
    )
    .await
}

/// The edge on 127.0.0.1:PORT, the origin behind it on a free port.
async fn serve(args: &Args) -> anyhow::Result<()> {
    let (_server, pool) = args.common.provision_postgres().await?;
    let settings = OriginSettings {
        latency: args.common.latency(),
        db_timeout: args.common.db_timeout(),
        ..OriginSettings::default()
    };
    let (router, _handle) = origin(pool, settings)?;
    let running = lab::http::spawn_server(router, 0).await?;
    let mut config = EdgeConfig::new(running.addr);
    config.purge = args.purge;
    config.access_log = true;
    let nginx = config.spawn(Some(args.common.port)).await?;
    let base = nginx.base_url();
    tracing::info!(
        "the edge (nginx) listens on {base}, in front of the origin on {}; its config: {}; each request's cache status: {}",
        running.base_url(),
        nginx.conf_path().display(),
        nginx.dir().join("access.log").display()
    );
    tracing::info!("try: curl -i {base}/users/42    # twice: MISS, then HIT");
    tracing::info!(
        "try: curl -i -H 'If-None-Match: \"<the ETag it sent>\"' {base}/users/42    # 304, from the edge"
    );
    // Quoted: zsh would take `?` for a glob.
    tracing::info!("try: curl -i '{base}/users/42?v=2'    # a new version, a new entry: MISS");
    tracing::info!("try: curl -i -H 'X-User-Id: 7' {base}/me    # one user's page, never cached");
    if args.purge {
        tracing::info!("purge on: curl {base}/purge/users/42    # then the next GET is a MISS");
    }
    let signal = lab::demo::stop_signal().await?;
    tracing::info!("{signal}: stopping the edge and the origin");
    drop(nginx);
    running.shutdown().await
}
