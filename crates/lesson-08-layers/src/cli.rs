//! The command line: [`Args`], every knob as a flag or an env var, and
//! [`Args::settings`], which turns them into the lesson's [`Settings`].

use std::time::Duration;

use crate::{Fill, Invalidation, Settings};

/// The keys of `--serve`: `l8:{schema}:`, so lesson 2's `user:{id}`
/// strings on the same Redis are never read as lesson 8's hashes, and two
/// schemas' versions never meet in one key.
pub fn serve_prefix(schema: &str) -> String {
    format!("l8:{schema}:")
}

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-08-layers",
    about = "Lesson 8: an in-process L1, Redis and PostgreSQL; invalidation between instances; the stale-set race and the lost invalidation, fixed and measured."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// How a write reaches the other instances' L1.
    #[arg(long, env = "INVALIDATION", value_enum, default_value_t = Invalidation::Notify)]
    pub invalidation: Invalidation,
    /// What a reader may write into Redis after a miss.
    #[arg(long, env = "FILL", value_enum, default_value_t = Fill::Versioned)]
    pub fill: Fill,
    /// How long an L1 entry lives, in ms: the staleness bound when messages are lost.
    #[arg(long = "l1-ttl-ms", env = "L1_TTL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub l1_ttl_ms: u64,
    /// Most entries in L1.
    #[arg(long = "l1-capacity", env = "L1_CAPACITY", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub l1_capacity: u64,
    /// Seconds a Redis entry lives.
    #[arg(long = "ttl-secs", env = "CACHE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl_secs: u64,
    /// The longest one Redis call may take, in ms.
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// How often the outbox relay retries unconfirmed invalidations, in ms.
    #[arg(long = "outbox-every-ms", env = "OUTBOX_EVERY_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub outbox_every_ms: u64,
    /// Run the book's longer experiments instead of the short ones.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiments' results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl Args {
    pub fn settings(&self) -> Settings {
        let outbox_every = Duration::from_millis(self.outbox_every_ms);
        Settings {
            invalidation: self.invalidation,
            fill: self.fill,
            ttl: Duration::from_secs(self.ttl_secs),
            l1_ttl: Duration::from_millis(self.l1_ttl_ms),
            l1_capacity: self.l1_capacity,
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            key_prefix: serve_prefix(&self.common.schema),
            schema: self.common.schema.clone(),
            latency: self.common.latency(),
            db_timeout: self.common.db_timeout(),
            relay: true,
            outbox_every,
            outbox_grace: outbox_every * 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_match_the_chapter() {
        let s = Args::try_parse_from(["x"]).expect("defaults").settings();
        assert_eq!(s.invalidation, Invalidation::Notify);
        assert_eq!(s.fill, Fill::Versioned);
        assert_eq!(s.l1_ttl, Duration::from_secs(5));
        assert_eq!(s.l1_capacity, 10_000);
        assert_eq!(s.ttl, Duration::from_secs(60));
        assert_eq!(s.outbox_every, Duration::from_millis(500));
        assert_eq!(s.key_prefix, "l8:workshop:");
    }

    #[test]
    fn bad_knobs_are_refused() {
        assert!(Args::try_parse_from(["x", "--invalidation", "carrier-pigeon"]).is_err());
        assert!(Args::try_parse_from(["x", "--fill", "sometimes"]).is_err());
        assert!(Args::try_parse_from(["x", "--l1-ttl-ms", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--outbox-every-ms", "1"]).is_err());
        let a = Args::try_parse_from(["x", "--invalidation", "pubsub", "--fill", "lease"])
            .expect("parses");
        assert_eq!(a.settings().invalidation, Invalidation::PubSub);
        assert_eq!(a.settings().fill, Fill::Lease);
    }
}
