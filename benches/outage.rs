//! Lesson 3's outage experiment as a bench target, so `cargo bench`
//! reproduces the outage chapter's figures along with everything else.
//!
//! It is not a criterion bench: what it measures is a minute of behaviour
//! over time (availability and latency before, during and after a real
//! PostgreSQL outage), not the time of one operation. It writes its results
//! to `target/lab-experiments/outage.json`, where `just report` reads them.
//! `LAB_QUICK=1` runs the short version (about 20 s instead of a minute).
//! Then it runs the sick-database experiment (the breaker's two rules
//! against a database that fails three calls in four), 30 s of load, and
//! writes `sick.json` beside it.

use lab::results::Results;
use lesson_03_stale_fallback::experiment::{Plan, SickPlan, run, run_sick};

fn main() {
    if !benches::selected("outage") {
        return;
    }
    let plan = if benches::quick() {
        Plan::short()
    } else {
        Plan::long()
    };
    let rt = benches::runtime();
    println!(
        "outage: the lesson 3 experiment ({:?} of load)",
        plan.before + plan.outage + plan.after
    );
    let results = match rt.block_on(run(&plan, true)) {
        Ok(r) => r,
        Err(e) => panic!("the outage experiment failed: {e:#}"),
    };
    let path = results.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!("\n{}\nwrote {}", results.table_md(), path.display());

    // The same breaker against a database that is sick, not down.
    let plan = if benches::quick() {
        SickPlan::short()
    } else {
        SickPlan::long()
    };
    let sick = match rt.block_on(run_sick(&plan, true)) {
        Ok(r) => r,
        Err(e) => panic!("the sick-database experiment failed: {e:#}"),
    };
    let path = sick.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!("\n{}\nwrote {}", sick.table_md(), path.display());
}
