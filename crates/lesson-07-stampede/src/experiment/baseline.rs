//! Experiment 2 (the book's run only): the Internet Archive's published
//! XFetch harness, repeated here in its shape, so this lesson's counts can
//! be read beside numbers someone else measured.
//!
//! Their harness: 50 workers reading one key with a 20 s TTL and a 500 ms
//! recompute. Ours divides the times by ten (a 2 s TTL, 50 ms loads), so
//! that the same number of expiries fits in a fraction of the time, and
//! runs 20 s, ten TTLs. Their run length is not published, so totals do
//! not compare; shares do (how many recomputes were simultaneous, whether
//! any reader missed).

use std::time::Duration;

use super::fixture::Fixture;
use super::herd::{HerdRow, Shape, print_row, run_one};
use crate::Strategy;

pub const SHOWS: &str = "the Internet Archive's XFetch harness (50 clients, one key), times ÷ 10";

/// Their shape, scaled: 50 clients, one key, a 2 s TTL, 50 ms loads, on
/// four instances (theirs were separate worker processes: only a lease
/// coordinates those, as their lock did).
pub fn shape(duration: Duration) -> Shape {
    Shape {
        instances: 4,
        clients: 50,
        keys: 1,
        ttl: Duration::from_secs(2),
        latency: Duration::from_millis(50),
        duration,
    }
}

/// One published row.
#[derive(Clone, Copy, Debug)]
pub struct Published {
    /// Their name for it.
    pub name: &'static str,
    /// Our strategy that does the same, if we run one.
    pub ours: Option<Strategy>,
    pub recomputes: u64,
    /// Recomputes that ran while another was running, where published.
    pub simultaneous: Option<u64>,
    /// Reads that found the key missing, where published.
    pub misses: Option<u64>,
}

/// Jim Nelson (Internet Archive), "Preventing cache stampede with Redis &
/// XFetch", RedisConf 2017 (slides: slideshare.net, RedisLabs,
/// "redisconf17-internet-archive-preventing-cache-stampede-with-redis-and-xfetch"):
/// 50 workers, 20 s TTL, 500 ms recompute. "lock" is a lock in Redis
/// across their worker processes, our lease; we do not run "XFetch + lock".
pub const PUBLISHED: [Published; 4] = [
    Published {
        name: "plain",
        ours: Some(Strategy::Naive),
        recomputes: 484,
        simultaneous: Some(471),
        misses: None,
    },
    Published {
        name: "lock",
        ours: Some(Strategy::Lease),
        recomputes: 14,
        simultaneous: None,
        misses: None,
    },
    Published {
        name: "XFetch",
        ours: Some(Strategy::XFetch),
        recomputes: 52,
        simultaneous: Some(28),
        misses: Some(0),
    },
    Published {
        name: "XFetch + lock",
        ours: None,
        recomputes: 17,
        simultaneous: None,
        misses: None,
    },
];

/// Their published row for `strategy`, if there is one.
pub fn published(strategy: Strategy) -> Option<&'static Published> {
    PUBLISHED.iter().find(|p| p.ours == Some(strategy))
}

/// The harness, once per strategy (single-flight has no counterpart in
/// theirs, but costs nothing to show).
pub async fn run(fx: &Fixture, duration: Duration) -> anyhow::Result<Vec<HerdRow>> {
    let shape = shape(duration);
    let mut rows = Vec::new();
    for strategy in Strategy::ALL {
        let row = run_one(fx, strategy, shape, "baseline").await?;
        print_row(&row);
        rows.push(row);
    }
    Ok(rows)
}
