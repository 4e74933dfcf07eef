//! Lesson 8's experiments (staleness windows per invalidation design, the
//! stale-set race, the lost invalidation, versioned keys, PostgreSQL's own
//! cache) as a bench target, so `cargo bench` reproduces the layers
//! chapter's tables along with everything else.
//!
//! Like the edge bench, it is not a criterion bench: what it measures is
//! behaviour (how long instance B serves an old value, whether a race
//! leaves one in Redis), not one operation's time; the layers' hit costs
//! are the `layer_costs` bench's. It writes
//! `target/lab-experiments/layers.json`, where `just report` reads it.
//! `LAB_QUICK=1` runs `just lesson-8`'s short version (about 30 s instead
//! of about two minutes).

use lab::results::Results;
use lesson_08_layers::experiment::{Plan, run};

fn main() {
    if !benches::selected("layers") {
        return;
    }
    let plan = if benches::quick() {
        Plan::short()
    } else {
        Plan::long()
    };
    let rt = benches::runtime();
    println!("layers: lesson 8's experiments, two instances on one Redis and one PostgreSQL");
    let results = match rt.block_on(run(&plan)) {
        Ok(r) => r,
        Err(e) => panic!("the layers experiments failed: {e:#}"),
    };
    let path = results.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "\nstaleness windows\n{}\nthe stale-set race\n{}\nthe lost invalidation\n{}\nversioned keys\n{}\nthe third layer\n{}\n{}\nwrote {}",
        results.staleness_md(),
        results.race_md(),
        results.lost_md(),
        results.namespace_md(),
        results.pk_lookup_md(),
        results.findings(),
        path.display()
    );
}
