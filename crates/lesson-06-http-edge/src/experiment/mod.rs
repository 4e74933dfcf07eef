//! The experiments `just lesson-6` runs (short) and the `edge` bench runs
//! (long, for the book), each in its own file:
//!
//! - `load`: 1, an edge HIT against the origin and nginx's static files, with wrk;
//! - [`collapse`]: 2, N cold requests for one key, with and without the lock;
//! - [`stale`]: 3, the origin answering 500 or gone, stale served or not;
//! - [`swr`]: 4, an expired entry under load, refreshed in the background;
//! - [`revalidate`]: 5, a 1 MiB body refreshed with a 304 instead;
//! - [`purge`]: 6, a versioned URL against a purge;
//! - `fixture`: PostgreSQL, origins, edges and the client they share;
//! - `summary`: the tables (rendered by `just report`) and one conclusion
//!   per experiment (printed by `just lesson-6`).
//!
//! Every verdict is a count (origin requests, cache statuses), never a
//! time; the times are what is measured. Each experiment starts its own
//! origin and its own nginx, so it starts from an empty cache.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod collapse;
mod fixture;
pub mod hit_path;
pub mod load;
pub mod purge;
pub mod revalidate;
pub mod stale;
mod summary;
pub mod swr;

/// The experiments' parameters: [`Plan::short`] for `just lesson-6`,
/// [`Plan::long`] for the book.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub long: bool,
    /// Collapsing: concurrent cold requests, and the origin's latency.
    pub collapse_clients: usize,
    pub collapse_latency: Duration,
    /// A lock timeout shorter than this slower origin's latency.
    pub lock_timeout: Duration,
    pub slow_origin: Duration,
    /// stale-if-error: the origin's `s-maxage` and `stale-if-error`, when it
    /// breaks (after the fill), how long the client watches, how often it asks.
    pub stale_s_maxage: Duration,
    pub stale_if_error: Duration,
    pub stale_break_at: Duration,
    pub stale_watch: Duration,
    pub poll: Duration,
    /// stale-while-revalidate: `s-maxage`, origin latency, clients × time.
    pub swr_s_maxage: Duration,
    pub swr_latency: Duration,
    pub swr_clients: usize,
    pub swr_for: Duration,
    /// Revalidation: refreshes of `/big`, and the wait before each.
    pub refreshes: usize,
    pub big_wait: Duration,
}

impl Plan {
    /// `just lesson-6`: about 30 s besides experiment 1.
    pub fn short() -> Plan {
        Plan {
            long: false,
            collapse_clients: 20,
            collapse_latency: Duration::from_millis(500),
            lock_timeout: Duration::from_millis(300),
            slow_origin: Duration::from_secs(1),
            stale_s_maxage: Duration::from_secs(2),
            stale_if_error: Duration::from_secs(5),
            stale_break_at: Duration::from_millis(500),
            stale_watch: Duration::from_secs(9),
            poll: Duration::from_millis(150),
            swr_s_maxage: Duration::from_secs(3),
            swr_latency: Duration::from_millis(300),
            swr_clients: 16,
            swr_for: Duration::from_millis(1500),
            refreshes: 3,
            // `/big` says s-maxage=1; nginx counts whole seconds.
            big_wait: Duration::from_millis(2100),
        }
    }

    /// The book's: more clients, longer windows, more refreshes (about 90 s).
    pub fn long() -> Plan {
        Plan {
            long: true,
            collapse_clients: 50,
            stale_s_maxage: Duration::from_secs(5),
            stale_if_error: Duration::from_secs(20),
            stale_watch: Duration::from_secs(35),
            swr_for: Duration::from_secs(2),
            refreshes: 10,
            ..Plan::short()
        }
    }
}

/// Everything experiments 2–6 found, as `edge.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EdgeResults {
    pub plan: Plan,
    /// Wall time of experiments 2–6 (s).
    pub wall_s: f64,
    pub nginx: String,
    pub collapse: Vec<collapse::CollapseRow>,
    pub stale: stale::StaleResults,
    pub swr: swr::SwrResults,
    pub revalidate: revalidate::RevalidateResults,
    pub purge: purge::PurgeResults,
}

impl lab::results::Results for EdgeResults {
    const FILE: &'static str = "edge.json";
}

/// Experiments 2–6 in order, each printing its outcome as it ends.
pub async fn run(plan: &Plan) -> anyhow::Result<EdgeResults> {
    let t0 = Instant::now();
    let fx = fixture::Fixture::new(plan.collapse_clients as u32 + 10).await?;
    let step = lab::demo::Step::start(2, "request collapsing (proxy_cache_lock)", collapse::SHOWS);
    let collapse = collapse::run(&fx, plan).await?;
    step.done();
    let step = lab::demo::Step::start(
        3,
        "stale-if-error (the origin answers 500, then is killed)",
        stale::SHOWS,
    );
    let stale = stale::run(&fx, plan).await?;
    step.done();
    let step = lab::demo::Step::start(4, "stale-while-revalidate under load", swr::SHOWS);
    let swr = swr::run(&fx, plan).await?;
    step.done();
    let step = lab::demo::Step::start(5, "revalidation of a 1 MiB body", revalidate::SHOWS);
    let revalidate = revalidate::run(&fx, plan).await?;
    step.done();
    let step = lab::demo::Step::start(6, "versioned URL and purge", purge::SHOWS);
    let purge = purge::run(&fx).await?;
    step.done();
    Ok(EdgeResults {
        plan: plan.clone(),
        wall_s: t0.elapsed().as_secs_f64(),
        nginx: nginx_version(),
        collapse,
        stale,
        swr,
        revalidate,
        purge,
    })
}

/// `nginx -v`'s line, for the record.
fn nginx_version() -> String {
    lab::edge::binary()
        .ok()
        .and_then(|b| std::process::Command::new(b).arg("-v").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default()
}

/// `just lesson-6`: every experiment, short (`--long`: the book's), with
/// each one's outcome printed, then one conclusion per experiment.
pub async fn demo(args: &crate::cli::Args) -> anyhow::Result<()> {
    use lab::results::Results;
    // Every experiment needs nginx: without it, say how to install it now,
    // not after seeding PostgreSQL and failing experiments 1 and 2.
    lab::edge::binary()?;
    let t0 = Instant::now();
    let plan = if args.long {
        Plan::long()
    } else {
        Plan::short()
    };
    println!(
        "Lesson 6: a real edge (nginx) in front of an origin, {} run",
        if args.long {
            "the book's (long)"
        } else {
            "a short"
        }
    );
    let opts = load::LoadOptions { quick: !args.long };
    let step = lab::demo::Step::start(1, "edge HIT vs origin vs nginx static (wrk)", load::SHOWS);
    let (warmup, measure) = opts.durations();
    println!(
        "  measuring 3 targets with 1 connection, then 32: {} s of warm-up and 2 × {} s each…",
        warmup.as_secs(),
        measure.as_secs()
    );
    let load = load::run(&opts).await;
    match &load {
        Ok(r) => println!("{}", r.table_text()),
        // The others do not depend on it: say so, go on, and fail at the end.
        Err(e) => println!("  failed: {e:#}"),
    }
    // `just lesson-6` is `cargo run`: the origin is unoptimised Rust here,
    // nginx is not. The book's figures are release.
    let debug_build = cfg!(debug_assertions);
    if debug_build && load.is_ok() {
        println!(
            "  (a debug build: lesson 2's origin runs unoptimised here; `just report` measures a release build)"
        );
    }
    step.done();
    let results = run(&plan).await?;
    println!("\nFindings:");
    match &load {
        Ok(r) if debug_build => println!("1. {} (a debug build)", r.finding()),
        Ok(r) => println!("1. {}", r.finding()),
        Err(_) => println!("1. failed (above); the others ran"),
    }
    for (n, c) in (2..).zip(results.conclusions()) {
        println!("{n}. {c}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("Failed to write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if args.long {
        println!("wrote {}", results.write()?.display());
    }
    println!("\nwall time: {:.1} s", t0.elapsed().as_secs_f64());
    match load {
        Ok(_) => Ok(()),
        Err(e) => Err(e.context("experiment 1 (the edge under load) failed; the others ran")),
    }
}
