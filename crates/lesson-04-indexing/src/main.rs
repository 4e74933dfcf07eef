//! `cargo run -p lesson-04-indexing`: see the crate docs in lib.rs.

use clap::Parser;
use lesson_04_indexing::cli::Args;
use lesson_04_indexing::demo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab::init_tracing_with("warn,sqlx=error");
    demo::run(&Args::parse()).await
}
