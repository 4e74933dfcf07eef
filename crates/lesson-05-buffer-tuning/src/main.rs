//! `just lesson-5 tune …`: see the crate docs in lib.rs.

use anyhow::Context;
use clap::Parser;
use lesson_05_buffer_tuning::{Cli, Command, render};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Tune(args) => {
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
    }
    Ok(())
}
