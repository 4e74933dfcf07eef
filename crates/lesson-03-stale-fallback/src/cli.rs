//! The command line: [`Args`], every knob as a flag or an env var, and
//! [`Args::settings`], which turns them into the lesson's [`Settings`] and
//! refuses a combination that makes no sense.

use std::time::Duration;

use crate::breaker::{BreakerConfig, FailureRate};
use crate::{Mode, Settings};

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-03-stale-fallback",
    about = "Lesson 3: serve stale data when the database is slow or down; the outage experiment."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// Seconds a copy is fresh (served without asking the database).
    #[arg(long = "soft-ttl-secs", env = "CACHE_SOFT_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub soft_ttl_secs: u64,
    /// Seconds a copy is kept for when the database fails (at least the soft TTL).
    #[arg(long = "hard-ttl-secs", env = "CACHE_HARD_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub hard_ttl_secs: u64,
    /// What to do with a stale or missing copy.
    #[arg(long, env = "CACHE_MODE", value_enum, default_value_t = Mode::Fallback)]
    pub mode: Mode,
    /// Consecutive database failures that open the circuit breaker.
    #[arg(long = "breaker-failures", env = "BREAKER_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before it lets one probe through.
    #[arg(long = "breaker-open-secs", env = "BREAKER_OPEN_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub breaker_open_secs: u64,
    /// The failure-rate rule's window: the breaker also opens when
    /// BREAKER_FAILURE_RATE percent of the last this-many calls failed. 0 turns
    /// the rule off (consecutive failures only).
    #[arg(long = "breaker-window", env = "BREAKER_WINDOW", default_value_t = FailureRate::DEFAULT.window, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub breaker_window: u32,
    /// The failure-rate rule's threshold, in percent of the window.
    #[arg(long = "breaker-failure-rate", env = "BREAKER_FAILURE_RATE", default_value_t = FailureRate::DEFAULT.percent, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub breaker_failure_rate: u32,
    /// The longest one Redis call may take, in ms.
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// The most background loads running at once (cache-first's misses and
    /// stale refreshes); past it they are shed with a 503. Default: twice
    /// DB_POOL_SIZE, every connection busy and one load waiting behind each.
    #[arg(long = "max-background-loads", env = "MAX_BACKGROUND_LOADS", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_background_loads: Option<u64>,
    /// Run the book's longer outage experiment instead of the short one.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiment's results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl Args {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        if self.hard_ttl_secs < self.soft_ttl_secs {
            anyhow::bail!(
                "CACHE_HARD_TTL_SECS ({}) is shorter than CACHE_SOFT_TTL_SECS ({}): a copy would vanish before it could ever be served stale. Make the hard TTL at least the soft one.",
                self.hard_ttl_secs,
                self.soft_ttl_secs
            );
        }
        Ok(Settings {
            soft_ttl: Duration::from_secs(self.soft_ttl_secs),
            hard_ttl: Duration::from_secs(self.hard_ttl_secs),
            mode: self.mode,
            breaker: BreakerConfig {
                failures: self.breaker_failures,
                open_for: Duration::from_secs(self.breaker_open_secs),
                rate: (self.breaker_window > 0).then_some(FailureRate {
                    window: self.breaker_window,
                    percent: self.breaker_failure_rate,
                }),
            },
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            db_timeout: self.common.db_timeout(),
            latency: self.common.latency(),
            key_prefix: String::new(),
            max_background_loads: self
                .max_background_loads
                .map_or(2 * self.common.pool_size as usize, |n| n as usize),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_match_the_chapter() {
        let a = Args::try_parse_from(["x"]).expect("defaults");
        let s = a.settings().expect("valid");
        assert_eq!(s.soft_ttl, Duration::from_secs(60));
        assert_eq!(s.hard_ttl, Duration::from_secs(86_400));
        assert_eq!(s.mode, Mode::Fallback);
        assert_eq!(s.breaker.failures, 5);
        assert_eq!(s.breaker.open_for, Duration::from_secs(5));
        assert_eq!(s.breaker.rate, Some(FailureRate::DEFAULT));
        let a = Args::try_parse_from(["x", "--breaker-window", "0"]).expect("parses");
        assert_eq!(
            a.settings().expect("valid").breaker.rate,
            None,
            "0 turns it off"
        );
        assert_eq!(s.key(7), "entry:user:7");
        assert_eq!(s.max_background_loads, 20, "twice the pool of 10");
        let a = Args::try_parse_from(["x", "--pool-size", "4"]).expect("parses");
        assert_eq!(a.settings().expect("valid").max_background_loads, 8);
        let a = Args::try_parse_from(["x", "--max-background-loads", "3"]).expect("parses");
        assert_eq!(a.settings().expect("valid").max_background_loads, 3);
    }

    #[test]
    fn bad_knobs_are_named() {
        assert!(Args::try_parse_from(["x", "--mode", "sometimes"]).is_err());
        assert!(Args::try_parse_from(["x", "--soft-ttl-secs", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--max-background-loads", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--breaker-failure-rate", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--breaker-failure-rate", "101"]).is_err());
        let a = Args::try_parse_from(["x", "--soft-ttl-secs", "600", "--hard-ttl-secs", "60"])
            .expect("parses");
        let e = a.settings().expect_err("hard < soft").to_string();
        assert!(e.contains("CACHE_HARD_TTL_SECS"), "{e}");
    }
}
