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

use lesson_07_stampede::experiment::{Plan, StampedeResults, run};

fn main() {
    benches::experiment(
        "stampede",
        "lesson 7's experiments, four instances on one Redis and a private PostgreSQL",
        |quick| async move { run(&if quick { Plan::short() } else { Plan::long() }).await },
        |r: &StampedeResults| {
            format!(
                "the herd\n{}\n{}\nthe published baseline\n{}\n{}\nmass expiry\n{}\n{}\nids that do not exist\n{}\n{}\n{}",
                r.herd_setup_md(),
                r.herd_md(),
                r.baseline_setup_md(),
                r.baseline_md(),
                r.jitter_setup_md(),
                r.jitter_md(),
                r.negative_setup_md(),
                r.negative_md(),
                r.findings(),
            )
        },
    );
}
