//! A circuit breaker: after K consecutive database failures, stop calling
//! the database for T, then let one request through to probe it.
//!
//! ```text
//!            K failures in a row               T has passed
//!  CLOSED ─────────────────────────▶ OPEN ────────────────────▶ HALF-OPEN
//!    ▲  (every call goes through)     (no call goes through)    (one probe)
//!    │                                  ▲                           │
//!    │                                  └──────── probe fails ──────┤
//!    └──────────────────────────── probe succeeds ──────────────────┘
//! ```
//!
//! Why bother, when every call already has a timeout? Because during an
//! outage the timeout *is* the latency: each request waits the full
//! `DB_TIMEOUT_MS` before it falls back to the stale copy, and holds a pool
//! slot while it waits. With the breaker open the fallback is immediate,
//! so requests are answered at cache speed, and the database is not hit by a
//! wall of reconnects the moment it comes back.
//!
//! Choosing K and T:
//! - K (`BREAKER_FAILURES`, 5): large enough that one slow query or one
//!   dropped connection does not open it, small enough that an outage costs
//!   only K timed-out requests. Counting *consecutive* failures means any
//!   success resets it, so a database that fails 1 call in 10 never trips it.
//! - T (`BREAKER_OPEN_SECS`, 5): about how long a restart or failover takes.
//!   Shorter probes a dead database more often (each probe pays a timeout);
//!   longer serves stale data for longer after the database is back.
//!
//! The state sits behind a `std::sync::Mutex`, not a Tokio one: it is held
//! for a few instructions and never across an `.await`, which is exactly
//! when the std mutex is the right (and faster) choice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// K and T.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

// ANCHOR: state
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` counts consecutive failures.
    Closed { failures: u32 },
    /// No call goes through until `until`.
    Open { until: Instant },
    /// One probe is in flight; everyone else is refused until it reports.
    HalfOpen,
}
// ANCHOR_END: state

/// What a caller sees of the breaker's state, for `/metrics` and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Permission to make one database call. Report how it went with
/// [`Permit::success`] or [`Permit::failure`]. A probe permit dropped without
/// a report (the request was cancelled mid-call) counts as a failure, or the
/// breaker would wait for that probe forever.
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

/// The call was refused; retry in about this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub retry_in: Duration,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half
        // written (each update is one assignment), so a poisoned lock is
        // still a valid state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ANCHOR: acquire
    /// May we call the database now?
    pub fn acquire(&self) -> Result<Permit<'_>, Refused> {
        self.acquire_at(Instant::now())
    }

    pub fn acquire_at(&self, now: Instant) -> Result<Permit<'_>, Refused> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => {
                return Err(Refused {
                    retry_in: until - now,
                });
            }
            State::Open { .. } => {
                // T has passed: this caller is the probe.
                *state = State::HalfOpen;
                true
            }
            // The probe will report within one database timeout.
            State::HalfOpen => {
                return Err(Refused {
                    retry_in: Duration::from_secs(1),
                });
            }
        };
        Ok(Permit {
            breaker: self,
            probe,
            reported: false,
        })
    }
    // ANCHOR_END: acquire

    fn record(&self, ok: bool, now: Instant) {
        let mut state = self.lock();
        let open = State::Open {
            until: now + self.config.open_for,
        };
        *state = match (*state, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 >= self.config.failures => {
                tracing::warn!(
                    "{} database failures in a row: breaker open for {:?}",
                    failures + 1,
                    self.config.open_for
                );
                open
            }
            (State::Closed { failures }, false) => State::Closed {
                failures: failures + 1,
            },
            (State::HalfOpen, false) => {
                tracing::warn!("the probe failed: breaker open again");
                open
            }
            // A call that began before the breaker opened and fails after:
            // the breaker is already open, leave its clock alone.
            (s @ State::Open { .. }, false) => s,
        };
    }

    pub fn status(&self) -> Status {
        match *self.lock() {
            State::Closed { .. } => Status::Closed,
            State::Open { .. } => Status::Open,
            State::HalfOpen => Status::HalfOpen,
        }
    }
}

impl Permit<'_> {
    pub fn is_probe(&self) -> bool {
        self.probe
    }
    pub fn success(mut self) {
        self.reported = true;
        if self.probe {
            tracing::info!("the probe succeeded: breaker closed");
        }
        self.breaker.record(true, Instant::now());
    }
    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.record(false, Instant::now());
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.record(false, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            open_for: Duration::from_secs(5),
        })
    }

    #[test]
    fn opens_after_k_consecutive_failures_only() {
        let b = breaker();
        b.acquire().expect("closed").failure();
        b.acquire().expect("closed").failure();
        b.acquire().expect("closed").success(); // resets the count
        b.acquire().expect("closed").failure();
        b.acquire().expect("closed").failure();
        assert_eq!(b.status(), Status::Closed);
        b.acquire().expect("closed").failure();
        assert_eq!(b.status(), Status::Open);
        let refused = b.acquire().expect_err("open");
        assert!(refused.retry_in > Duration::from_secs(4));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let b = breaker();
        for _ in 0..3 {
            b.acquire().expect("closed").failure();
        }
        let later = Instant::now() + Duration::from_secs(6);
        let probe = b.acquire_at(later).expect("T has passed: a probe");
        assert!(probe.is_probe());
        assert_eq!(b.status(), Status::HalfOpen);
        assert!(b.acquire_at(later).is_err(), "only one probe at a time");
        probe.success();
        assert_eq!(b.status(), Status::Closed);
        assert!(!b.acquire().expect("closed").is_probe());
    }

    #[test]
    fn a_failed_or_abandoned_probe_reopens() {
        let b = breaker();
        for _ in 0..3 {
            b.acquire().expect("closed").failure();
        }
        let later = Instant::now() + Duration::from_secs(6);
        b.acquire_at(later).expect("probe").failure();
        assert_eq!(b.status(), Status::Open);
        let much_later = later + Duration::from_secs(6);
        drop(b.acquire_at(much_later).expect("probe"));
        assert_eq!(
            b.status(),
            Status::Open,
            "a cancelled probe must not leave the breaker half-open forever"
        );
    }
}
