//! A circuit breaker: after K consecutive database failures, or when too
//! many of the last N calls failed, stop calling the database for T, then
//! let one request through to probe it.
//!
//! ```text
//!     K failures in a row, or               T has passed
//!     R% of the last N calls failed
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
//! Two rules open it, because failures come in two shapes:
//! - **K in a row** (`BREAKER_FAILURES`, 5): a database that is *down*
//!   fails every call, and K of them open the breaker within K timeouts.
//!   Large enough that one slow query or one dropped connection does not
//!   open it. But any success resets the count, and under concurrency the
//!   successes report first (they take milliseconds, a failure takes the
//!   whole timeout), so a database that is *sick* (failing most calls, with
//!   a success now and then between them) keeps it closed most of the time,
//!   and every failing call pays the timeout.
//! - **R% of the last N calls** (`BREAKER_FAILURE_RATE`, 50%, over
//!   `BREAKER_WINDOW`, 20 calls): the rule resilience4j calls
//!   `failureRateThreshold` over a count-based `slidingWindowSize`. A success
//!   does not reset it, so the sick database opens it too. It only judges a
//!   full window, so a service that has made three calls since it started
//!   (or since the breaker last closed) and failed two is not judged on
//!   three. `BREAKER_WINDOW=0` turns it off. The outage experiment's
//!   "sick database" run measures both rules side by side.
//!
//! T (`BREAKER_OPEN_SECS`, 5) is about how long a restart or failover takes.
//! Shorter probes a dead database more often (each probe pays a timeout);
//! longer serves stale data for longer after the database is back.
//!
//! The state sits behind a `std::sync::Mutex`, not a Tokio one: it is held
//! for a few instructions and never across an `.await`, which is exactly
//! when the std mutex is the right (and faster) choice.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// K, T and the failure-rate rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
    /// The failure-rate rule; `None` counts consecutive failures only.
    #[serde(default)]
    pub rate: Option<FailureRate>,
}

/// Open when at least `percent` of the last `window` calls failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailureRate {
    pub window: u32,
    pub percent: u32,
}

impl FailureRate {
    /// The service's default: half of the last 20 calls. 20 is enough calls
    /// that two unlucky ones do not decide it, and few enough that a busy
    /// service fills it in well under a second.
    pub const DEFAULT: FailureRate = FailureRate {
        window: 20,
        percent: 50,
    };
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

/// The outcomes of the last `window` calls, oldest first, for the
/// failure-rate rule: a ring of booleans and a running count of failures.
#[derive(Debug, Default)]
struct Recent {
    failed: VecDeque<bool>,
    failures: u32,
}

impl Recent {
    fn push(&mut self, failed: bool, window: u32) {
        self.failed.push_back(failed);
        self.failures += u32::from(failed);
        while self.failed.len() > window as usize {
            let oldest = self.failed.pop_front().unwrap_or(false);
            self.failures -= u32::from(oldest);
        }
    }

    /// A full window with at least `percent` failures.
    fn too_many(&self, rule: FailureRate) -> bool {
        self.failed.len() == rule.window as usize
            && u64::from(self.failures) * 100 >= u64::from(rule.percent) * u64::from(rule.window)
    }

    fn clear(&mut self) {
        self.failed.clear();
        self.failures = 0;
    }
}

/// A change of state worth a log line.
enum Opened {
    InARow(u32),
    Rate(u32),
    ProbeFailed,
    Closed,
}

/// What the mutex guards: the state, the recent outcomes, and a count of
/// openings for `/metrics`.
#[derive(Debug)]
struct Inner {
    state: State,
    recent: Recent,
    opened: u64,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
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
    /// A breaker with `config`, made sane where it is not: K and N of at
    /// least 1, R between 1% and 100% (the CLI refuses the rest; a caller
    /// that builds a config by hand gets these floors instead of a breaker
    /// that opens on a success or never opens).
    pub fn new(config: BreakerConfig) -> Breaker {
        let config = BreakerConfig {
            failures: config.failures.max(1),
            rate: config.rate.map(|r| FailureRate {
                window: r.window.max(1),
                percent: r.percent.clamp(1, 100),
            }),
            ..config
        };
        Breaker {
            config,
            inner: Mutex::new(Inner {
                state: State::Closed { failures: 0 },
                recent: Recent::default(),
                opened: 0,
            }),
        }
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing in here panics while the lock is held, and a half-updated
        // window would still be a valid window, so a poisoned lock is still
        // a valid state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ANCHOR: acquire
    /// May we call the database now?
    pub fn acquire(&self) -> Result<Permit<'_>, Refused> {
        self.acquire_at(Instant::now())
    }

    pub fn acquire_at(&self, now: Instant) -> Result<Permit<'_>, Refused> {
        let mut inner = self.lock();
        let state = &mut inner.state;
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
            // The probe reports within one database timeout; the breaker
            // does not know that timeout, so "about a second".
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

    // ANCHOR: record
    /// A call's outcome. `probe` says whether it was the half-open probe:
    /// only the probe's outcome moves the breaker out of half-open, and
    /// nothing moves it out of open but time. A result that arrives late
    /// (from a call begun while the breaker was closed) is ignored then, as
    /// resilience4j ignores it: one lucky late answer must not close a
    /// breaker that has just opened on a sick database.
    fn record(&self, ok: bool, probe: bool, now: Instant) {
        let opened = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let (next, why) = match (inner.state, ok, probe) {
                (State::Closed { failures }, _, _) => {
                    let failures = if ok { 0 } else { failures + 1 };
                    if let Some(rule) = self.config.rate {
                        inner.recent.push(!ok, rule.window);
                    }
                    if failures >= self.config.failures {
                        (None, Some(Opened::InARow(failures)))
                    } else if self.config.rate.is_some_and(|r| inner.recent.too_many(r)) {
                        (None, Some(Opened::Rate(inner.recent.failures)))
                    } else {
                        (Some(State::Closed { failures }), None)
                    }
                }
                // The probe answered: close, and judge the failure rate
                // afresh, on calls made from now on.
                (State::HalfOpen, true, true) => {
                    inner.recent.clear();
                    (Some(State::Closed { failures: 0 }), Some(Opened::Closed))
                }
                (State::HalfOpen, false, true) => (None, Some(Opened::ProbeFailed)),
                // Late results, while open or while another call probes.
                (s @ (State::HalfOpen | State::Open { .. }), _, _) => (Some(s), None),
            };
            inner.state = next.unwrap_or_else(|| {
                inner.opened += 1;
                inner.recent.clear();
                State::Open {
                    until: now + self.config.open_for,
                }
            });
            why
        };
        // Logged after the lock is released: a slow log sink must not hold
        // up every request's `acquire`.
        let t = self.config.open_for;
        match opened {
            Some(Opened::InARow(n)) => {
                tracing::warn!("{n} database failures in a row: breaker open for {t:?}")
            }
            Some(Opened::Rate(n)) => tracing::warn!(
                "{n} of the last {} database calls failed: breaker open for {t:?}",
                self.config.rate.map_or(0, |r| r.window)
            ),
            Some(Opened::ProbeFailed) => tracing::warn!("the probe failed: breaker open again"),
            Some(Opened::Closed) => tracing::info!("the probe succeeded: breaker closed"),
            None => {}
        }
    }
    // ANCHOR_END: record

    /// How many times the breaker has opened (a failed probe counts too).
    pub fn times_opened(&self) -> u64 {
        self.lock().opened
    }

    pub fn status(&self) -> Status {
        match self.lock().state {
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
        self.breaker.record(true, self.probe, Instant::now());
    }
    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.record(false, self.probe, Instant::now());
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.record(false, true, Instant::now());
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
            rate: None,
        })
    }

    /// The service's defaults: 5 in a row, or 50% of the last 20.
    fn with_rate_rule() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 5,
            rate: Some(FailureRate::DEFAULT),
            ..breaker().config()
        })
    }

    /// A sick database: four failures, then a success, over and over.
    fn four_in_five(b: &Breaker, calls: usize) {
        for i in 0..calls {
            let Ok(p) = b.acquire() else { return };
            if i % 5 == 4 { p.success() } else { p.failure() }
        }
    }

    #[test]
    fn late_results_do_not_move_an_open_or_probing_breaker() {
        let b = breaker();
        let late_ok = b.acquire().expect("closed");
        let late_fail = b.acquire().expect("closed");
        for _ in 0..3 {
            b.acquire().expect("closed").failure();
        }
        assert_eq!(b.status(), Status::Open);
        late_ok.success();
        assert_eq!(b.status(), Status::Open, "a late success must not close it");
        let later = Instant::now() + Duration::from_secs(6);
        let probe = b.acquire_at(later).expect("probe");
        late_fail.failure();
        assert_eq!(
            b.status(),
            Status::HalfOpen,
            "a late failure is not the probe's"
        );
        assert_eq!(b.times_opened(), 1);
        probe.success();
        assert_eq!(b.status(), Status::Closed);
    }

    #[test]
    fn a_config_that_makes_no_sense_is_made_sane() {
        let b = Breaker::new(BreakerConfig {
            failures: 0,
            rate: Some(FailureRate {
                window: 0,
                percent: 0,
            }),
            ..breaker().config()
        });
        b.acquire().expect("closed").success();
        assert_eq!(b.status(), Status::Closed, "a success never opens it");
        assert_eq!(b.config().failures, 1);
        let b = Breaker::new(BreakerConfig {
            rate: Some(FailureRate {
                window: 4,
                percent: 250,
            }),
            ..breaker().config()
        });
        assert_eq!(b.config().rate.map(|r| r.percent), Some(100));
    }

    #[test]
    fn a_sick_database_never_trips_the_consecutive_rule() {
        let b = Breaker::new(BreakerConfig {
            failures: 5,
            ..breaker().config()
        });
        four_in_five(&b, 1000);
        assert_eq!(b.status(), Status::Closed, "80% failures, never 5 in a row");
        assert_eq!(b.times_opened(), 0);
    }

    #[test]
    fn the_failure_rate_rule_opens_on_a_full_window_only() {
        let b = with_rate_rule();
        // 19 calls, 16 failed: not yet a full window.
        four_in_five(&b, 19);
        assert_eq!(
            b.status(),
            Status::Closed,
            "19 calls do not fill a window of 20"
        );
        b.acquire().expect("closed").success();
        assert_eq!(b.status(), Status::Open, "16 of the last 20 failed");
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn the_failure_rate_rule_tolerates_less_than_its_threshold() {
        let b = with_rate_rule();
        // 9 of every 20 fail (45%), never 5 in a row: every window of 20
        // consecutive calls holds exactly 9 failures.
        for i in 0..1000 {
            let p = b.acquire().expect("stays closed");
            if matches!(i % 20, 0..=3 | 5..=8 | 10) {
                p.failure()
            } else {
                p.success()
            }
        }
        assert_eq!(b.status(), Status::Closed);
    }

    #[test]
    fn after_a_probe_closes_it_the_window_starts_empty() {
        let b = with_rate_rule();
        four_in_five(&b, 20);
        assert_eq!(b.status(), Status::Open);
        let later = Instant::now() + Duration::from_secs(6);
        b.acquire_at(later).expect("probe").success();
        assert_eq!(b.status(), Status::Closed);
        // The failures before the opening are forgotten: 19 more calls at
        // the same rate do not fill the window again.
        four_in_five(&b, 19);
        assert_eq!(b.status(), Status::Closed);
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
