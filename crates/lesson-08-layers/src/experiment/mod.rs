//! The experiments `just lesson-8` runs (short) and the `layers` bench
//! runs (long, for the book), each in its own file:
//!
//! - [`staleness`]: 1, how long instance B serves the old value after a
//!   write on A, for each of the four designs;
//! - [`race`]: 2, the stale-set race, per fill strategy;
//! - [`lost`]: 3, a write Redis missed while down, with and without the
//!   outbox relay;
//! - [`namespace`]: 4, versioned keys: one `INCR` against `SCAN` + `DEL`,
//!   and the orphans it leaves;
//! - `pk_lookup`: what PostgreSQL's own cache does for the third layer;
//! - `summary`: the tables `just report` renders.
//!
//! The layers' hit costs are criterion's (the `layer_costs` bench), not here.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod fixture;
pub mod lost;
pub mod namespace;
pub mod race;
pub mod staleness;
mod summary;

/// The experiments' parameters: [`Plan::short`] for `just lesson-8`,
/// [`Plan::long`] for the book.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub long: bool,
    /// Staleness: trials per design, L1's TTL, B's polling period.
    pub trials: usize,
    pub l1_ttl: Duration,
    pub poll: Duration,
    /// The race: replays per fill strategy.
    pub race_trials: usize,
    /// The lost invalidation: trials per relay setting, and how long each
    /// watches Redis after its restart.
    pub lost_trials: usize,
    pub lost_watch: Duration,
    /// Versioned keys: how many.
    pub ns_keys: usize,
}

impl Plan {
    /// `just lesson-8`: about 30 s.
    pub fn short() -> Plan {
        Plan {
            long: false,
            trials: 8,
            l1_ttl: Duration::from_secs(1),
            poll: Duration::from_millis(1),
            race_trials: 5,
            lost_trials: 1,
            lost_watch: Duration::from_secs(3),
            ns_keys: 1_000,
        }
    }

    /// The book's: more trials (about two minutes).
    pub fn long() -> Plan {
        Plan {
            long: true,
            trials: 40,
            race_trials: 20,
            lost_trials: 3,
            lost_watch: Duration::from_secs(5),
            ns_keys: 10_000,
            ..Plan::short()
        }
    }
}

/// What PostgreSQL did for one primary-key lookup of a cached-elsewhere
/// user, from `EXPLAIN (ANALYZE, BUFFERS)`: the third layer is a cache too.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PkLookup {
    /// 8 kB pages found in `shared_buffers`.
    pub shared_hit: i64,
    /// Pages read from the OS (its page cache, or the disk).
    pub shared_read: i64,
    pub execution_ms: f64,
    pub shared_buffers: String,
}

/// Everything the experiments found, as `layers.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayersResults {
    pub plan: Plan,
    pub wall_s: f64,
    pub staleness: Vec<staleness::Windows>,
    pub race: Vec<race::RaceRow>,
    pub lost: Vec<lost::LostRow>,
    pub namespace: namespace::NamespaceResults,
    pub pk_lookup: PkLookup,
}

impl lab::results::Results for LayersResults {
    const FILE: &'static str = "layers.json";
}

/// Every experiment in order, each printing its outcome as it ends.
pub async fn run(plan: &Plan) -> anyhow::Result<LayersResults> {
    let t0 = Instant::now();
    let fx = fixture::Fixture::new().await?;
    // Each experiment its own users, so none inherits another's versions.
    let step = lab::demo::Step::start(
        1,
        "staleness windows: instance A writes, instance B reads",
        staleness::SHOWS,
    );
    let staleness = staleness::run(&fx, plan, 1).await?;
    step.done();
    let step = lab::demo::Step::start(2, "the stale-set race", race::SHOWS);
    let race = race::run(&fx, plan, 1_001).await?;
    step.done();
    let step = lab::demo::Step::start(
        3,
        "the lost invalidation (Redis down during a write)",
        lost::SHOWS,
    );
    let lost = lost::run(&fx, plan, 1_501).await?;
    step.done();
    let step = lab::demo::Step::start(4, "versioned keys", namespace::SHOWS);
    let namespace = namespace::run(&fx, plan).await?;
    step.done();
    let pk_lookup = pk_lookup(&fx).await?;
    println!(
        "\nthe third layer: a primary-key lookup read {} pages from shared_buffers ({}) and {} from the OS, in {:.3} ms",
        pk_lookup.shared_hit,
        pk_lookup.shared_buffers,
        pk_lookup.shared_read,
        pk_lookup.execution_ms
    );
    Ok(LayersResults {
        plan: plan.clone(),
        wall_s: t0.elapsed().as_secs_f64(),
        staleness,
        race,
        lost,
        namespace,
        pk_lookup,
    })
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the lookup a miss makes, after one
/// run to warm it: the plan's own page counts.
async fn pk_lookup(fx: &fixture::Fixture) -> anyhow::Result<PkLookup> {
    let pool = fx.schema.pool();
    let sql = "SELECT id, name, email, version FROM users WHERE id = 42";
    crate::db::prepare(pool).await?;
    sqlx::query(sql).execute(pool).await?;
    let (plan,): (serde_json::Value,) =
        sqlx::query_as(&format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"))
            .fetch_one(pool)
            .await?;
    let (shared_buffers,): (String,) = sqlx::query_as("SHOW shared_buffers")
        .fetch_one(pool)
        .await?;
    let top = &plan[0]["Plan"];
    Ok(PkLookup {
        shared_hit: top["Shared Hit Blocks"].as_i64().unwrap_or(0),
        shared_read: top["Shared Read Blocks"].as_i64().unwrap_or(0),
        execution_ms: plan[0]["Execution Time"].as_f64().unwrap_or(0.0),
        shared_buffers,
    })
}

/// `just lesson-8`: the short experiments, then the tables.
pub async fn demo(args: &crate::cli::Args) -> anyhow::Result<()> {
    let plan = if args.long {
        Plan::long()
    } else {
        Plan::short()
    };
    println!(
        "Lesson 8: two instances of the service on one Redis and one PostgreSQL, each with an L1 of its own.\n\
         ({} experiments; `just report` runs the book's longer ones)",
        if plan.long { "the book's" } else { "short" }
    );
    let results = run(&plan).await?;
    println!("\n{}", results.findings());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("Failed to write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("took {:.1} s", results.wall_s);
    Ok(())
}
