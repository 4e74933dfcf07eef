//! Logging that stays readable when things go wrong.
//!
//! A Redis outage under load makes every request fail the same way. One
//! warning per request is a log flood at exactly the moment someone has to
//! read the log (tens of megabytes a minute at tens of thousands of requests
//! a second), and writing it costs the service time it does not have. A
//! [`Throttle`] writes the first warning at once, then at most one line per
//! period, saying how many it held back. The metrics still count every
//! failure; the log only has to say that it is happening.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one warning per `period` from one call site:
///
/// ```
/// use std::time::Duration;
/// static REDIS_DOWN: lab::log::Throttle = lab::log::Throttle::new(Duration::from_secs(5));
/// REDIS_DOWN.warn(format_args!("Redis GET timed out, serving from the database"));
/// ```
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    // A std Mutex: held for a compare and an add, never across an `.await`.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub const fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            state: Mutex::new(State {
                last: None,
                held_back: 0,
            }),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were
    /// held back since the last one; `None` when this one is held back.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                s.held_back += 1;
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.held_back))
            }
        }
    }

    /// Writes `message` at WARN unless a line was written less than a
    /// period ago.
    pub fn warn(&self, message: std::fmt::Arguments<'_>) {
        match self.admit() {
            Some(0) => tracing::warn!("{message}"),
            Some(n) => tracing::warn!("{message} ({n} more like it held back)"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_a_count_of_the_rest() {
        let t = Throttle::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(t.admit_at(t0), Some(0));
        for i in 1..=99 {
            assert_eq!(t.admit_at(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(t.admit_at(t0 + Duration::from_secs(5)), Some(99));
        assert_eq!(t.admit_at(t0 + Duration::from_secs(6)), None);
    }
}
