//! The command line: lesson 2's flags, and the [`Settings`] they give.

use std::time::Duration;

use crate::Settings;

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-02-cache-aside",
    about = "Lesson 2: cache-aside with Redis and a TTL in front of a slow PostgreSQL."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// How long a cached user lives, in seconds.
    #[arg(long = "ttl-secs", env = "CACHE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl_secs: u64,
    /// The longest one Redis call may take, in ms, before the request goes to the database.
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// The most PUTs in flight at once (a write's task outlives its request);
    /// past it a PUT is refused with a 503 and Retry-After. Default: half of
    /// DB_POOL_SIZE (at least one), so writes stuck on a locked row leave
    /// the other half of the pool to reads.
    #[arg(long = "max-writes-in-flight", env = "MAX_WRITES_IN_FLIGHT", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_writes_in_flight: Option<u64>,
}

impl Args {
    pub fn settings(&self) -> Settings {
        Settings {
            ttl: Duration::from_secs(self.ttl_secs),
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            key_prefix: String::new(),
            latency: self.common.latency(),
            db_timeout: self.common.db_timeout(),
        }
    }

    /// `MAX_WRITES_IN_FLIGHT`, or its default from `DB_POOL_SIZE`.
    pub fn max_writes_in_flight(&self) -> usize {
        self.max_writes_in_flight.map_or_else(
            || crate::default_max_writes(self.common.pool_size),
            |n| n as usize,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_chapter() {
        use clap::Parser;
        let a = Args::try_parse_from(["x"]).expect("defaults");
        let s = a.settings();
        assert_eq!(s.ttl, Duration::from_secs(60));
        assert_eq!(s.redis_timeout, Duration::from_millis(50));
        assert_eq!(s.key(123), "user:123");
        assert!(Args::try_parse_from(["x", "--ttl-secs", "0"]).is_err());
        assert_eq!(a.max_writes_in_flight(), 5, "half the pool of 10");
        let a = Args::try_parse_from(["x", "--pool-size", "1"]).expect("parses");
        assert_eq!(a.max_writes_in_flight(), 1, "never zero");
        let a = Args::try_parse_from(["x", "--max-writes-in-flight", "3"]).expect("parses");
        assert_eq!(a.max_writes_in_flight(), 3);
        assert!(Args::try_parse_from(["x", "--max-writes-in-flight", "0"]).is_err());
    }
}
