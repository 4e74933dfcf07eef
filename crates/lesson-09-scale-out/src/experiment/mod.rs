//! The experiments `just lesson-9` runs (short) and the `scale_out` bench
//! runs (long, for the book), each in its own file:
//!
//! - [`slots`]: 1, where 10,000 keys land on three masters, and the
//!   `CROSSSLOT` error a hash tag avoids;
//! - [`failover`]: 2, the headline: a master killed under load, once per
//!   client configuration (`defaults`, `bounded`, `replica-reads`);
//! - [`reshard`]: 3, slots moved between masters while clients read;
//! - [`coverage`]: 4, a master with no replica dies, with
//!   `cluster-require-full-coverage` yes and no;
//! - [`throughput`]: 5, one Redis against a 3-master cluster on the same
//!   cores;
//! - [`lag`]: 6, the PostgreSQL read replica's lag and the cache fills it
//!   poisons;
//! - [`fixture`]: the private PostgreSQL, the clusters, the closed-loop
//!   clients and their timelines;
//! - `summary`: the tables `just report` renders and the findings.
//!
//! Every server is private (spawned from the local binaries, or a
//! container where Docker stands in for them) and dropped
//! when its experiment ends: nothing is left running.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod coverage;
pub mod failover;
pub mod fixture;
pub mod lag;
pub mod reshard;
pub mod slots;
mod summary;
pub mod throughput;

/// The experiments' lengths: [`Plan::short`] for `just lesson-9`,
/// [`Plan::long`] for the book. The workloads are the same; the book's
/// runs are longer and move more slots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub long: bool,
    /// Load before the kill and after the promotion, per client mode.
    pub failover: failover::Lengths,
    /// Slots moved, and the load at rest before the move.
    pub reshard_slots: usize,
    pub reshard_before: Duration,
    /// Each throughput run, and how many times the two topologies alternate.
    pub throughput: Duration,
    pub throughput_rounds: u32,
    /// The replica experiment's load.
    pub lag: Duration,
}

impl Plan {
    /// `just lesson-9`: about 90 s on 2 cores, half of it the three
    /// failovers (each waits for Redis's own failure detection and
    /// election, about 5 s with a 3 s node timeout, and the untuned
    /// client's stall).
    pub fn short() -> Plan {
        Plan {
            long: false,
            failover: failover::Lengths {
                before: Duration::from_secs(2),
                after: Duration::from_secs(1),
            },
            reshard_slots: 1_000,
            reshard_before: Duration::from_secs(1),
            throughput: Duration::from_millis(1500),
            throughput_rounds: 2,
            lag: Duration::from_secs(3),
        }
    }

    /// The book's: about two minutes on 2 cores.
    pub fn long() -> Plan {
        Plan {
            long: true,
            failover: failover::Lengths {
                before: Duration::from_secs(4),
                after: Duration::from_secs(6),
            },
            reshard_slots: 3_000,
            reshard_before: Duration::from_secs(2),
            throughput: Duration::from_secs(5),
            throughput_rounds: 2,
            lag: Duration::from_secs(10),
        }
    }
}

/// Everything the experiments found, as `scale_out.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleOutResults {
    pub plan: Plan,
    pub wall_s: f64,
    pub slots: slots::SlotsResult,
    pub failover: Vec<failover::FailoverRun>,
    pub reshard: reshard::ReshardResult,
    pub coverage: Vec<coverage::CoverageRow>,
    pub throughput: Vec<throughput::ThroughputRow>,
    pub lag: lag::LagResults,
}

impl lab::results::Results for ScaleOutResults {
    const FILE: &'static str = "scale_out.json";
}

/// Every experiment in order, each printing its outcome as it ends.
pub async fn run(plan: &Plan) -> anyhow::Result<ScaleOutResults> {
    let t0 = Instant::now();
    let fx = fixture::Fixture::new().await?;

    let step = lab::demo::Step::start(1, "where the keys land", slots::SHOWS);
    let slots = slots::run().await?;
    step.done();

    let step = lab::demo::Step::start(2, "a master killed under load", failover::SHOWS);
    let failover = failover::run(&fx, plan.failover).await?;
    step.done();

    let step = lab::demo::Step::start(3, "resharding under load", reshard::SHOWS);
    let reshard = reshard::run(&fx, plan.reshard_slots, plan.reshard_before).await?;
    step.done();

    let step = lab::demo::Step::start(4, "a master with no replica dies", coverage::SHOWS);
    let coverage = coverage::run().await?;
    step.done();

    let step = lab::demo::Step::start(5, "one Redis or a cluster", throughput::SHOWS);
    let throughput = throughput::run(plan.throughput, plan.throughput_rounds).await?;
    step.done();

    // The cluster experiments' PostgreSQL is not needed any more: stopped
    // before the replica experiment starts its own two.
    drop(fx);
    let step = lab::demo::Step::start(6, "the read replica's lag", lag::SHOWS);
    let lag = lag::run(plan.lag).await?;
    step.done();

    Ok(ScaleOutResults {
        plan: plan.clone(),
        wall_s: t0.elapsed().as_secs_f64(),
        slots,
        failover,
        reshard,
        coverage,
        throughput,
        lag,
    })
}

/// `just lesson-9`: the short experiments, then the tables.
pub async fn demo(args: &crate::cli::Args) -> anyhow::Result<()> {
    let plan = if args.long {
        Plan::long()
    } else {
        Plan::short()
    };
    println!(
        "Lesson 9: lesson 2's cache on a private 6-node Redis Cluster and a PostgreSQL primary with a read replica.\n\
         ({} experiments; `just report` runs the book's longer ones)",
        if plan.long { "the book's" } else { "short" }
    );
    let results = run(&plan).await?;
    println!(
        "\nwhere the keys land\n{}\na master killed under load\n{}\n{}\nresharding under load\n{}\n\
         a master with no replica dies\n{}\none Redis or a cluster\n{}\nthe read replica's lag\n{}\n{}\n{}\n{}",
        results.slots_md(),
        results.failover_md(),
        results.failover_timeline_md(),
        results.reshard_md(),
        results.coverage_md(),
        results.throughput_md(),
        results.lag.setup_md(),
        results.lag.table_md(),
        results.findings(),
        results.lag.findings(),
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("Failed to write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("took {:.1} s", results.wall_s);
    Ok(())
}
