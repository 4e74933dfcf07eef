//! The experiments `just lesson-7` runs (short) and the `stampede` bench
//! runs (long, for the book), each in its own file:
//!
//! - [`herd`]: 1, hot keys expiring under load on four instances: the
//!   database's loads per expiry, per strategy;
//! - [`baseline`]: 2 (the book's run only), the Internet Archive's
//!   published XFetch harness in its shape, their figures beside ours;
//! - [`jitter`]: 3, 1,000 keys written together, expiring together, with
//!   and without TTL jitter;
//! - [`negative`]: 4, ids that do not exist, with and without negative
//!   caching;
//! - [`fixture`]: the private PostgreSQL that counts its statements, the
//!   fleets and the closed-loop clients;
//! - `summary`: the tables `just report` renders and the findings.
//!
//! Every count is made twice: by the service ([`crate::db::Queries`]) and
//! by PostgreSQL itself (`pg_stat_statements`).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod baseline;
pub mod fixture;
pub mod herd;
pub mod jitter;
pub mod negative;
mod summary;

/// The experiments' lengths: [`Plan::short`] for `just lesson-7`,
/// [`Plan::long`] for the book. The workloads are the same; the book's
/// runs are longer (more expiries per strategy) and add the baseline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub long: bool,
    /// Per strategy: 4 s is four expiries of each hot key.
    pub herd: Duration,
    /// The published harness's run, per strategy; `None`: not run.
    pub baseline: Option<Duration>,
    /// Per jitter setting, after the warm-up: long enough to see the
    /// batch expire (at about 3.5 to 4 s) and the database go quiet.
    pub jitter: Duration,
    /// Per negative TTL.
    pub negative: Duration,
}

impl Plan {
    /// `just lesson-7`: about 40 s.
    pub fn short() -> Plan {
        Plan {
            long: false,
            herd: Duration::from_secs(4),
            baseline: None,
            jitter: Duration::from_secs(6),
            negative: Duration::from_secs(2),
        }
    }

    /// The book's: about three minutes. The jitter run's 10 s see the
    /// batch's second expiry too (about 4 s after its reload).
    pub fn long() -> Plan {
        Plan {
            long: true,
            herd: Duration::from_secs(12),
            baseline: Some(Duration::from_secs(20)),
            jitter: Duration::from_secs(10),
            negative: Duration::from_secs(5),
        }
    }
}

/// Everything the experiments found, as `stampede.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StampedeResults {
    pub plan: Plan,
    pub wall_s: f64,
    pub herd: Vec<herd::HerdRow>,
    /// Empty when the plan skips it.
    pub baseline: Vec<herd::HerdRow>,
    pub jitter: Vec<jitter::JitterRow>,
    pub negative: Vec<negative::NegativeRow>,
}

impl lab::results::Results for StampedeResults {
    const FILE: &'static str = "stampede.json";
}

/// Every experiment in order, each printing its outcome as it ends.
pub async fn run(plan: &Plan) -> anyhow::Result<StampedeResults> {
    let t0 = Instant::now();
    let fx = fixture::Fixture::new().await?;
    let step = lab::demo::Step::start(1, "the herd: hot keys expire under load", herd::SHOWS);
    let herd = herd::run(&fx, plan.herd).await?;
    step.done();
    let baseline = match plan.baseline {
        Some(d) => {
            let step = lab::demo::Step::start(2, "the published baseline", baseline::SHOWS);
            let rows = baseline::run(&fx, d).await?;
            step.done();
            rows
        }
        None => {
            println!(
                "\nexperiment 2: the published baseline: skipped in the short run (`--long` runs it)"
            );
            Vec::new()
        }
    };
    let step = lab::demo::Step::start(3, "mass expiry, with and without TTL jitter", jitter::SHOWS);
    let jitter = jitter::run(&fx, plan.jitter).await?;
    step.done();
    let step = lab::demo::Step::start(4, "ids that do not exist", negative::SHOWS);
    let negative = negative::run(&fx, plan.negative).await?;
    step.done();
    Ok(StampedeResults {
        plan: plan.clone(),
        wall_s: t0.elapsed().as_secs_f64(),
        herd,
        baseline,
        jitter,
        negative,
    })
}

/// `just lesson-7`: the short experiments, then the tables.
pub async fn demo(args: &crate::cli::Args) -> anyhow::Result<()> {
    let plan = if args.long {
        Plan::long()
    } else {
        Plan::short()
    };
    println!(
        "Lesson 7: hot keys expire under load, on four instances of the service over one Redis and one PostgreSQL.\n\
         ({} experiments; `just report` runs the book's longer ones)",
        if plan.long { "the book's" } else { "short" }
    );
    let results = run(&plan).await?;
    println!(
        "\nthe herd\n{}\n{}",
        results.herd_setup_md(),
        results.herd_md()
    );
    if !results.baseline.is_empty() {
        println!(
            "the published baseline\n{}\n{}",
            results.baseline_setup_md(),
            results.baseline_md()
        );
    }
    println!(
        "mass expiry\n{}\n{}\nids that do not exist\n{}\n{}\n{}",
        results.jitter_setup_md(),
        results.jitter_md(),
        results.negative_setup_md(),
        results.negative_md(),
        results.findings()
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
