//! Lesson 7's experiments (the herd per strategy on four instances, the
//! Internet Archive's published harness, mass expiry with and without TTL
//! jitter, missing ids with and without negative caching) as a bench
//! target, so `cargo bench` reproduces the stampede chapter's tables along
//! with everything else.
//!
//! Like the layers bench, it is not a criterion bench: what it measures is
//! behaviour (how many loads reach PostgreSQL per expiry, by the service's
//! count and by `pg_stat_statements`'), not one operation's time. It
//! writes `target/lab-experiments/stampede.json`, where `just report`
//! reads it. `LAB_QUICK=1` runs `just lesson-7`'s short version (about
//! 40 s, without the published baseline) instead of about three minutes.

use lab::results::Results;
use lesson_07_stampede::experiment::{Plan, run};

fn main() {
    if !benches::selected("stampede") {
        return;
    }
    let plan = if benches::quick() {
        Plan::short()
    } else {
        Plan::long()
    };
    let rt = benches::runtime();
    println!(
        "stampede: lesson 7's experiments, four instances on one Redis and a private PostgreSQL"
    );
    let results = match rt.block_on(run(&plan)) {
        Ok(r) => r,
        Err(e) => panic!("the stampede experiments failed: {e:#}"),
    };
    let path = results.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "\nthe herd\n{}\n{}\nthe published baseline\n{}\n{}\nmass expiry\n{}\n{}\nids that do not exist\n{}\n{}\n{}\nwrote {}",
        results.herd_setup_md(),
        results.herd_md(),
        results.baseline_setup_md(),
        results.baseline_md(),
        results.jitter_setup_md(),
        results.jitter_md(),
        results.negative_setup_md(),
        results.negative_md(),
        results.findings(),
        path.display()
    );
}
