//! `just chaos` (`cargo run -p chaos`): every HTTP lesson under load while
//! faults are injected in sequence; the table on stdout, progress on
//! stderr, the results in `target/lab-experiments/chaos.json` for
//! `just report`. Exits non-zero on any panic or hung request.
//!
//! ```text
//! just chaos            # 75 s of load, about 80 s in all
//! just chaos --quick    # every phase, shorter
//! ```

use clap::Parser;
use lab::results::Results;

#[derive(Parser, Debug)]
#[command(
    name = "chaos",
    about = "Every HTTP lesson under load while PostgreSQL and Redis are stopped, paused, slowed, killed, blackholed and reset."
)]
struct Args {
    /// Every phase, shorter and at a lower rate: a smoke run.
    #[arg(long)]
    quick: bool,
    /// Requests per second to each service (default: the plan's).
    #[arg(long)]
    rate: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The services' own logs are off: a fault makes them log an error per
    // request, hundreds of lines that would bury the progress lines, and the
    // table counts every one of those answers anyway. `RUST_LOG=error`
    // shows them.
    lab::init_tracing_with("off");
    let args = Args::parse();
    let mut plan = if args.quick {
        chaos::plan::Plan::quick()
    } else {
        chaos::plan::Plan::standard()
    };
    if let Some(rate) = args.rate {
        plan.rate = rate.max(1);
    }
    // On Ctrl-C the run is dropped, which wakes and stops the private
    // servers (a server left paused would outlive the run).
    let results = tokio::select! {
        r = chaos::run(&plan) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; the private servers are stopped"),
    };
    println!("{}", results.table_md());
    println!("{}", results.verdict());
    let path = results.write()?;
    eprintln!("chaos: wrote {}", path.display());
    if !results.passed() {
        std::process::exit(1);
    }
    Ok(())
}
