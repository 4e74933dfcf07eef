//! What every bench shares: a runtime, an HTTP client, and criterion's config.
//!
//! Benches measure real query cost: no artificial latency unless a bench says
//! otherwise. They talk to real servers found by the harness, like the tests.

use std::time::Duration;

use criterion::Criterion;

/// Criterion's settings for the workshop. Loopback requests take tens of
/// microseconds, so 5 s of measurement gives thousands of iterations and a
/// stable median; 50 samples keep a full `cargo bench` short on 2 cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args()
}

/// A multi-threaded runtime for the server and the client alike.
pub fn runtime() -> tokio::runtime::Runtime {
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
