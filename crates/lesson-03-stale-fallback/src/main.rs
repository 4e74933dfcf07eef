//! `cargo run -p lesson-03-stale-fallback [-- --serve | --long]`: see the crate docs in lib.rs.

use clap::Parser;
use lesson_03_stale_fallback::cli::Args;
use lesson_03_stale_fallback::{demo, router, state};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.common.serve {
        lab::init_tracing();
    } else {
        // The experiment sends thousands of requests; its ticker is the
        // output, and a log line per failed request would bury it.
        lab::init_tracing_with("off");
    }
    // Bad knobs fail here, before anything is provisioned.
    let settings = args.settings()?;
    if args.common.serve {
        // Seeds the schema when it is missing, even on servers someone else runs.
        let (_pg, pool) = args.common.provision_postgres().await?;
        let redis = lab::discover(lab::Kind::Redis).await?;
        let state = state(pool, redis.url(), settings)?;
        lab::http::serve_until_ctrl_c(router(state), args.common.port).await
    } else {
        demo::run(&args).await
    }
}
