//! `cargo run -p lesson-02-cache-aside [-- --serve]`: see the crate docs in lib.rs.

use clap::Parser;
use lesson_02_cache_aside::cli::Args;
use lesson_02_cache_aside::{demo, router, state};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.common.serve {
        lab::init_tracing();
        let (_pg, pool) = args.common.provision_postgres().await?;
        // Redis as the harness finds it (REDIS_URL, the local port, Docker,
        // or a private instance), like PostgreSQL.
        let redis = lab::discover(lab::Kind::Redis).await?;
        let state =
            state(pool, redis.url(), args.settings())?.with_max_writes(args.max_writes_in_flight());
        lab::http::serve_until_ctrl_c(router(state), args.common.port).await
    } else {
        // The service logs each request's hit or miss at DEBUG, so that a
        // loaded server does not write a line per request. The demo makes a
        // handful of requests and those lines are its story (miss, then the
        // database, then hit), so it turns DEBUG on for this crate only.
        lab::init_tracing_with(
            "info,lesson_02_cache_aside=debug,sqlx=error,hyper=warn,bollard=warn,testcontainers=warn",
        );
        demo::run(&args).await
    }
}
