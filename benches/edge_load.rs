//! Lesson 6's experiment 1 as a bench target: an edge HIT, the origin's
//! own Redis HIT and nginx serving a static file, under `wrk`, in one run.
//!
//! Not a criterion bench: wrk does the measuring (one connection for
//! latency, 32 for throughput), and the serving processes' CPU time per
//! request comes from `/proc`. It writes its results to
//! `target/lab-experiments/edge_load.json`, where `just report` reads them.
//! About 80 s; `LAB_QUICK=1` runs the short version (about 20 s).
//! It needs nginx and wrk (`.ci/install-nginx`).

use lab::results::Results;
use lesson_06_http_edge::experiment::load::{LoadOptions, run};

fn main() {
    if !benches::selected("edge_load") {
        return;
    }
    let opts = LoadOptions {
        quick: benches::quick(),
    };
    // Pins this process to LAB_PIN_CLIENT's CPUs; wrk goes there too, the
    // servers to LAB_PIN_SERVERS's.
    let rt = benches::runtime();
    println!(
        "edge_load: lesson 6's experiment 1 ({})",
        if opts.quick { "quick" } else { "long" }
    );
    let results = match rt.block_on(run(&opts)) {
        Ok(r) => r,
        Err(e) => panic!("the edge load experiment failed: {e:#}"),
    };
    let path = results.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!("\n{}\nwrote {}", results.table_md(), path.display());
}
