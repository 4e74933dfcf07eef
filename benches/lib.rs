//! What every bench shares: a runtime, an HTTP client, and criterion's config.
//!
//! Benches measure real query cost: no artificial latency unless a bench says
//! otherwise. They talk to real servers found by the harness, like the tests.

use std::time::Duration;

use criterion::Criterion;

/// `LAB_QUICK=1`: fewer, shorter samples, for CI and a first try. `just
/// report --quick` sets it and marks its output as not the book's figures.
pub const QUICK_ENV: &str = "LAB_QUICK";

pub fn quick() -> bool {
    std::env::var(QUICK_ENV).is_ok_and(|v| v == "1" || v == "true")
}

/// For a bench target that is not criterion's (an experiment): `cargo bench
/// <filter>` passes the filter on to every bench target, so, like
/// criterion, run only when a filter matches `name` (or there is none).
pub fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// An experiment bench's `main` (a bench target that is not criterion's:
/// it measures behaviour, not one operation's time): unless another bench
/// was selected, runs the lesson's long plan (its short one with
/// `LAB_QUICK=1`), writes the results where `just report` reads them, and
/// prints `summary` of them. A failure panics, naming `name`, so `cargo
/// bench` fails.
pub fn experiment<R, Fut>(
    name: &str,
    what: &str,
    run: impl FnOnce(bool) -> Fut,
    summary: impl FnOnce(&R) -> String,
) where
    R: lab::results::Results,
    Fut: Future<Output = anyhow::Result<R>>,
{
    if !selected(name) {
        return;
    }
    let rt = runtime();
    println!("{name}: {what}");
    let results = match rt.block_on(run(quick())) {
        Ok(r) => r,
        Err(e) => panic!("the {name} experiments failed: {e:#}"),
    };
    let path = results.write().unwrap_or_else(|e| panic!("{e:#}"));
    println!("\n{}\nwrote {}", summary(&results), path.display());
}

/// Criterion's settings for the workshop. Loopback requests take tens of
/// microseconds, so 5 s of measurement gives thousands of iterations and a
/// stable median; 50 samples keep a full `cargo bench` short on 2 cores.
pub fn criterion() -> Criterion {
    let c = if quick() {
        Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(1))
    } else {
        Criterion::default()
            .sample_size(50)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(5))
    };
    c.configure_from_args()
}

/// A multi-threaded runtime for the server and the client alike. When
/// `LAB_PIN_CLIENT` is set, this thread and so every runtime thread is pinned
/// first (see `lab::pin`): placement changes loopback latency severalfold.
pub fn runtime() -> tokio::runtime::Runtime {
    if let Err(e) = lab::pin::pin_client_from_env() {
        panic!("{e:#}");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// A keep-alive HTTP client with a timeout, as every network call has.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// GETs `url` and checks the status, so a broken server cannot bench fast.
pub async fn get_ok(client: &reqwest::Client, url: &str) {
    let resp = client.get(url).send().await.expect("the server answers");
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    let _ = resp.bytes().await.expect("a body");
}
