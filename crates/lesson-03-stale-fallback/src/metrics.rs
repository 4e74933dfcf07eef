//! `GET /metrics`: what the service counts (hits, misses, stale answers,
//! database calls made and refused, background loads started and shed,
//! 503s, Redis errors), whether the breaker is open and how many background
//! loads are running, in Prometheus's text format.
//!
//! The series are named here; the registry behind them (one per service, so
//! the tests and the outage experiment, which run several services in one
//! process, never mix their counts) is `lab::metrics::Registry`. The tests
//! and the experiment read a count back with [`Metrics::counter`], the same
//! number a scrape sees.

use axum::extract::State;
use axum::response::Response;
use lab::metrics::Registry;

use crate::AppState;
use crate::breaker::Status;

pub const HITS: &str = "cache_hits_total";
pub const MISSES: &str = "cache_misses_total";
pub const STALE: &str = "cache_stale_total";
/// Calls actually made to the database.
pub const DB_ATTEMPTS: &str = "db_attempts_total";
pub const DB_FAILURES: &str = "db_failures_total";
/// Calls the open breaker did not make.
pub const BREAKER_REFUSED: &str = "breaker_refused_total";
/// Background loads started (a stale key's refresh, or cache-first's miss).
pub const BACKGROUND_REFRESHES: &str = "background_refreshes_total";
/// Background loads not started because `MAX_BACKGROUND_LOADS` were
/// running. Above zero, the bound is doing its job; rising steadily, it is
/// too low for the traffic, or someone is asking for ids that do not exist.
pub const LOADS_SHED: &str = "background_loads_shed_total";
pub const UNAVAILABLE: &str = "unavailable_total";
pub const REDIS_ERRORS: &str = "redis_errors_total";
/// 1 while the breaker is open or probing, 0 when closed.
pub const BREAKER_OPEN: &str = "breaker_open";
/// Background loads running at the scrape (at most `MAX_BACKGROUND_LOADS`).
pub const LOADS_IN_FLIGHT: &str = "background_loads_in_flight";

/// The service's counters. Each is counted, and read back, by the name of
/// its series, so the code and a dashboard use the same word.
#[derive(Clone, Debug)]
pub struct Metrics(Registry);

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        Ok(Metrics(Registry::new(
            &[
                HITS,
                MISSES,
                STALE,
                DB_ATTEMPTS,
                DB_FAILURES,
                BREAKER_REFUSED,
                BACKGROUND_REFRESHES,
                LOADS_SHED,
                UNAVAILABLE,
                REDIS_ERRORS,
            ],
            &[],
        )?))
    }

    /// Counts one event: `HITS`, `STALE`, `DB_ATTEMPTS`, ...
    pub fn bump(&self, name: &'static str) {
        self.0.bump(name);
    }

    /// One series' value, as a Prometheus scrape would see it.
    pub fn counter(&self, name: &str) -> u64 {
        self.0.value(name)
    }
}

/// `GET /metrics`. The gauges are set from the state at each scrape, not
/// when it changes: the breaker opens and closes inside `Breaker`, and
/// loads start and end inside `InFlight`, neither of which knows anything
/// of metrics, and a scrape must never report a state that has since
/// changed.
pub async fn render(State(state): State<AppState>) -> Response {
    let open = state.breaker.status() != Status::Closed;
    state.metrics.0.set(BREAKER_OPEN, f64::from(u8::from(open)));
    let loads = state.inflight.len() as f64;
    state.metrics.0.set(LOADS_IN_FLIGHT, loads);
    state.metrics.0.response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_from_the_start_and_counts_once() {
        let m = Metrics::new().expect("metrics");
        m.bump(STALE);
        m.bump(STALE);
        m.bump(DB_ATTEMPTS);
        assert_eq!(m.counter(STALE), 2);
        assert_eq!(m.counter(DB_ATTEMPTS), 1);
        assert_eq!(m.counter(BREAKER_REFUSED), 0, "registered at zero");
    }
}
