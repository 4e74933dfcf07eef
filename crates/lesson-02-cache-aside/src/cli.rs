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
    }
}
