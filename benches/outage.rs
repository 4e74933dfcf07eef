//! Lesson 3's outage experiment as a bench target, so `cargo bench`
//! reproduces the outage chapter's figures along with everything else.
//!
//! It is not a criterion bench: what it measures is a minute of behaviour
//! over time (availability and latency before, during and after a real
//! PostgreSQL outage), not the time of one operation. It writes its results
//! to `target/lab-experiments/outage.json`, where `just report` reads them.
//! `LAB_QUICK=1` runs the short version (about 20 s instead of a minute).

use lesson_03_stale_fallback::outage::{Plan, RESULTS_FILE, run};

fn main() {
    // `cargo bench <filter>` passes the filter on to every bench target;
    // like criterion, run only when it matches (or there is none).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "outage".contains(f.as_str())) {
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
    let report = match rt.block_on(run(&plan, true)) {
        Ok(r) => r,
        Err(e) => panic!("the outage experiment failed: {e:#}"),
    };
    let dir = benches::experiments_dir();
    let path = dir.join(RESULTS_FILE);
    let json = serde_json::to_string_pretty(&report).expect("the report serialises");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, json)) {
        panic!("cannot write {}: {e}", path.display());
    }
    println!("\n{}\nwrote {}", report.table_md(), path.display());
}
