//! `just lesson-5`: every experiment, small, each on a private server.

use crate::experiments::{self, Sizes};

/// Runs every experiment at [`Sizes::DEMO`] and prints its tables, with
/// the demo's own timings.
pub async fn run() -> anyhow::Result<()> {
    println!("Lesson 5: buffer tuning, measured (each setting on a private server).\n");
    let r = experiments::run(Sizes::DEMO).await?;
    println!(
        "\n1. shared_buffers (this machine has {} of RAM)\n",
        crate::size::human(r.ram_bytes)
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
