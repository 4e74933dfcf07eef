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

use lesson_08_layers::experiment::{LayersResults, Plan, run};

fn main() {
    benches::experiment(
        "layers",
        "lesson 8's experiments, two instances on one Redis and one PostgreSQL",
        |quick| async move { run(&if quick { Plan::short() } else { Plan::long() }).await },
        |r: &LayersResults| {
            format!(
                "staleness windows\n{}\nthe stale-set race\n{}\nthe lost invalidation\n{}\nversioned keys\n{}\nthe third layer\n{}\n{}",
                r.staleness_md(),
                r.race_md(),
                r.lost_md(),
                r.namespace_md(),
                r.pk_lookup_md(),
                r.findings(),
            )
        },
    );
}
