use clap::Parser;
use lesson_06_http_edge::cli::Args;
use lesson_06_http_edge::edge::EdgeConfig;
use lesson_06_http_edge::origin::{OriginSettings, origin};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab::init_tracing();
    let args = Args::parse();
    if args.common.serve {
        return serve(&args).await;
    }
    lesson_06_http_edge::experiment::demo(&args).await
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
    tracing::info!(
        "the edge (nginx) listens on {}, in front of the origin on {}; its config: {}; each request's cache status: {}",
        nginx.base_url(),
        running.base_url(),
        nginx.conf_path().display(),
        nginx.dir().join("access.log").display()
    );
    tracing::info!("try: curl -i {}/users/42 (twice)", nginx.base_url());
    tokio::signal::ctrl_c().await?;
    tracing::info!("Ctrl-C: stopping the edge and the origin");
    drop(nginx);
    running.shutdown().await
}
