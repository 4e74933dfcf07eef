//! The command line: [`Args`], every knob as a flag or an env var, and
//! [`Args::settings`], which turns them into the lesson's [`Settings`].

use std::time::Duration;

use crate::Settings;
use crate::cache::ClientMode;
use crate::replica::FillFrom;

/// The keys of `--serve`: `l9:{schema}:`, so other lessons' keys on the
/// same Redis are never read as this lesson's entries.
pub fn serve_prefix(schema: &str) -> String {
    format!("l9:{schema}:")
}

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-09-scale-out",
    about = "Lesson 9: when one machine is not enough. Lesson 2's cache on a Redis Cluster (slots, hash tags, a dead master, a reshard) and a PostgreSQL read replica (the lag that poisons a cache, and its fixes), measured."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// How the Redis client is configured: `bounded` (500 ms timeouts, few
    /// retries: a failure is a miss), `replica-reads` (bounded, GETs from
    /// replicas), `defaults` (redis-rs's own, to measure, not to copy).
    #[arg(long = "client-mode", env = "CLIENT_MODE", value_enum, default_value_t = ClientMode::Bounded)]
    pub client_mode: ClientMode,
    /// Which database a cache miss fills from: `lsn` (the replica once it
    /// has replayed this process's last write of the user), `primary`,
    /// `read-your-writes` (the primary for a while after a write),
    /// `replica` (always: poisons the cache after a write).
    #[arg(long = "fill-from", env = "FILL_FROM", value_enum, default_value_t = FillFrom::Lsn)]
    pub fill_from: FillFrom,
    /// Seconds an entry lives.
    #[arg(long = "ttl-secs", env = "CACHE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl_secs: u64,
    /// The longest one Redis call may take, in ms (a cluster hop and a
    /// redirection fit in it; lesson 2's 50 ms does not, reliably).
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// `read-your-writes`' window, in ms: how long after a write the
    /// writer's fills read the primary.
    #[arg(long = "read-your-writes-ms", env = "READ_YOUR_WRITES_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub read_your_writes_ms: u64,
    /// Run the book's longer experiments instead of the short ones.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiments' results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl Args {
    pub fn settings(&self) -> Settings {
        Settings {
            ttl: Duration::from_secs(self.ttl_secs),
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            client_mode: self.client_mode,
            fill_from: self.fill_from,
            replica_window: Duration::from_millis(self.read_your_writes_ms),
            key_prefix: serve_prefix(&self.common.schema),
            latency: self.common.latency(),
            db_timeout: self.common.db_timeout(),
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
        assert_eq!(s.client_mode, ClientMode::Bounded);
        assert_eq!(s.fill_from, FillFrom::Lsn);
        assert_eq!(s.ttl, Duration::from_secs(60));
        assert_eq!(s.redis_timeout, Duration::from_millis(500));
        assert_eq!(s.replica_window, Duration::from_secs(2));
        assert_eq!(s.key_prefix, "l9:workshop:");
        assert_eq!(s.key(42), "l9:workshop:{user:42}");
    }

    #[test]
    fn bad_knobs_are_refused() {
        assert!(Args::try_parse_from(["x", "--client-mode", "fast"]).is_err());
        assert!(Args::try_parse_from(["x", "--fill-from", "cache"]).is_err());
        assert!(Args::try_parse_from(["x", "--redis-timeout-ms", "0"]).is_err());
        let a = Args::try_parse_from([
            "x",
            "--client-mode",
            "replica-reads",
            "--fill-from",
            "read-your-writes",
        ])
        .expect("parses");
        assert_eq!(a.settings().client_mode, ClientMode::ReplicaReads);
        assert_eq!(a.settings().fill_from, FillFrom::ReadYourWrites);
    }
}
