//! `cargo run -p lesson-01-naive [-- --serve]`: see the crate docs in lib.rs.

use clap::Parser;
use lesson_01_naive::cli::{Args, provision};
use lesson_01_naive::{demo, router};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab::init_tracing();
    let args = Args::parse();
    if args.common.serve {
        let (_server, state) = provision(&args).await?;
        lab::http::serve_until_ctrl_c(router(state), args.common.port).await
    } else {
        demo::run(&args).await
    }
}
