//! Lesson 9's experiments (where keys land on a Redis Cluster, a master
//! killed under load per client configuration, a reshard under load,
//! `cluster-require-full-coverage` yes and no, one Redis against a
//! cluster, and the PostgreSQL read replica's lag) as a bench target, so
//! `cargo bench` reproduces the scaling-out chapter's tables along with
//! everything else.
//!
//! Like the stampede bench, it is not a criterion bench: what it measures
//! is behaviour (how long a failover disrupts reads, how many requests
//! fail or stall, which fills cache a stale row), not one operation's
//! time. Every server is private: six-node clusters spawned and killed
//! per experiment, a primary and a standby. It writes
//! `target/lab-experiments/scale_out.json`, where `just report` reads it.
//! `LAB_QUICK=1` runs `just lesson-9`'s short version (about 80 s)
//! instead of the book's (about two minutes).

use lesson_09_scale_out::experiment::{Plan, ScaleOutResults, run};

fn main() {
    benches::experiment(
        "scale_out",
        "lesson 9's experiments, private Redis Clusters and a private PostgreSQL primary with a standby",
        |quick| async move { run(&if quick { Plan::short() } else { Plan::long() }).await },
        |r: &ScaleOutResults| {
            format!(
                "where the keys land\n{}\na master killed under load\n{}\n{}\nresharding under load\n{}\n\
         a master with no replica dies\n{}\none Redis or a cluster\n{}\nthe read replica's lag\n{}\n{}\n{}\n{}",
                r.slots_md(),
                r.failover_md(),
                r.failover_timeline_md(),
                r.reshard_md(),
                r.coverage_md(),
                r.throughput_md(),
                r.lag.setup_md(),
                r.lag.table_md(),
                r.findings(),
                r.lag.findings(),
            )
        },
    );
}
