//! `just lesson-3`: the outage experiment, short version, with a live ticker.
//!
//! It always runs on a private PostgreSQL and Redis, because it stops
//! PostgreSQL, and a demo must never stop a server someone else uses.

use crate::cli::Args;
use crate::experiment::{self, Plan, VARIANTS};

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let plan = if args.long {
        Plan::long()
    } else {
        Plan::short()
    };
    println!("Lesson 3: what each lesson's service does when PostgreSQL goes down.\n");
    println!(
        "Four services share one private PostgreSQL ({} ms per query, {} ms timeout) and one Redis.",
        plan.latency.as_millis(),
        plan.db_timeout.as_millis()
    );
    println!(
        "Time is scaled down: the TTL (lesson 2) and soft TTL (lesson 3) are {:?} instead of 60 s, the breaker opens after {} failures for {:?}.",
        plan.soft_ttl, plan.breaker.failures, plan.breaker.open_for
    );
    println!(
        "Load {:?}, outage {:?}, recovery {:?}{}.\n",
        plan.before,
        plan.outage,
        plan.after,
        if args.long {
            " (the book's run)"
        } else {
            " (`just lesson-3 --long` runs the book's minute)"
        }
    );
    let results = experiment::run(&plan, true).await?;
    println!("\n{}", results.table_md());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
        println!("wrote {}", path.display());
    }
    let during = |v| results.row(v, "during").map_or(0.0, |r| r.ok_warm_pct);
    println!(
        "During the outage, requests for warm keys answered: {} {:.0}%, {} {:.0}%, {} {:.0}%, {} {:.0}%.",
        VARIANTS[0],
        during(0),
        VARIANTS[1],
        during(1),
        VARIANTS[2],
        during(2),
        VARIANTS[3],
        during(3)
    );
    println!("Stale data beat an error page; the chapter explains when it does not.");
    Ok(())
}
