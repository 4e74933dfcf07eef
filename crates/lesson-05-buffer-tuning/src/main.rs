//! `just lesson-5` and `just lesson-5 tune …`: see the crate docs in lib.rs.

use anyhow::Context;
use clap::Parser;
use lesson_05_buffer_tuning::cli::{Cli, Command};
use lesson_05_buffer_tuning::{demo, render};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::Tune(args)) => {
            let text = render(args.db, &args.machine());
            match &args.out {
                Some(path) => {
                    std::fs::write(path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{text}"),
            }
        }
        None => {
            lab::init_tracing_with("warn");
            demo::run().await?
        }
    }
    Ok(())
}
