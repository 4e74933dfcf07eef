//! Lesson 6's edge experiments 2–6 (collapsing, stale-if-error,
//! stale-while-revalidate, revalidation, purge) as a bench target, so `cargo
//! bench` reproduces the edge chapter's tables along with everything else.
//!
//! Like the outage bench, it is not a criterion bench: what it measures is
//! behaviour over seconds (origin request counts, cache statuses over time,
//! the latencies of answers while an entry refreshes), not one operation's
//! time. It writes `target/lab-experiments/edge.json`, where `just report`
//! reads it. `LAB_QUICK=1` runs `just lesson-6`'s short version (about 30 s
//! instead of about a minute and a half).

use lesson_06_http_edge::experiment::{EdgeResults, Plan, run};

fn main() {
    benches::experiment(
        "edge",
        "lesson 6's experiments 2–6 against a private nginx",
        |quick| async move { run(&if quick { Plan::short() } else { Plan::long() }).await },
        |r: &EdgeResults| format!("{}\n{}", r.table_md(), r.findings()),
    );
}
