//! `just lesson-5` and `just lesson-5 tune …`: see the crate docs in lib.rs.

use anyhow::Context;
use clap::Parser;
use lesson_05_buffer_tuning::experiments::{self, Sizes};
use lesson_05_buffer_tuning::{Cli, Command, render};

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
        None => demo().await?,
    }
    Ok(())
}

async fn demo() -> anyhow::Result<()> {
    lab::init_tracing_with("warn");
    println!("Lesson 5: buffer tuning, measured (each setting on a private server).\n");
    let r = experiments::run(Sizes::DEMO).await?;
    println!(
        "\n1. shared_buffers (this machine has {} of RAM)\n",
        lesson_05_buffer_tuning::size::human(r.ram_bytes)
    );
    println!("{}", r.shared_buffers_md(true));
    println!("{}", r.cold_start_md());
    println!("2. work_mem\n\n{}", r.work_mem_md(true));
    println!(
        "3. innodb_buffer_pool_size, resized online\n\n{}",
        r.buffer_pool_md(true)
    );
    println!(
        "4. The query cache, off vs on\n\n{}",
        r.query_cache_md(true)
    );
    println!(
        "Every private server has been stopped. The book's figures: `cargo bench --bench buffers`, then `just report`."
    );
    Ok(())
}
