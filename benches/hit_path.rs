//! Lesson 2's hit path under load, against its parts, as a bench target:
//! nginx static, a bare axum constant, lesson 2's `/healthz`, a minimal
//! Redis hit path (the floor), lesson 2's HIT at three log levels and
//! lesson 3's fresh HIT, under `wrk`, in one run.
//!
//! Not a criterion bench: wrk does the measuring (one connection for
//! latency, 32 for throughput) and each server's CPU time per request
//! comes from `/proc`. It writes `target/lab-experiments/hit_path.json`,
//! where `just report` reads it. About 5 minutes (three rounds);
//! `LAB_QUICK=1` runs one short round (about 30 s). It needs nginx and wrk
//! (`.ci/install-nginx`).

use lab::results::Results;
use lesson_06_http_edge::experiment::hit_path::{HitPathOptions, run};

fn main() {
    if !benches::selected("hit_path") {
        return;
    }
    let opts = HitPathOptions {
        quick: benches::quick(),
    };
    // Pins this process to LAB_PIN_CLIENT's CPUs; wrk goes there too, the
    // servers to LAB_PIN_SERVERS's.
    let rt = benches::runtime();
    println!(
        "hit_path: lesson 2's hit path against its parts ({})",
        if opts.quick { "quick" } else { "long" }
    );
    let results = match rt.block_on(run(&opts)) {
        Ok(r) => r,
        Err(e) => panic!("the hit-path experiment failed: {e:#}"),
    };
    let path = results.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!("\n{}\nwrote {}", results.table_md(), path.display());
}
