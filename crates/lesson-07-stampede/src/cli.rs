//! The command line: [`Args`], every knob as a flag or an env var, and
//! [`Args::settings`], which turns them into the lesson's [`Settings`].

use std::time::Duration;

use crate::{Settings, Strategy};

/// The keys of `--serve`: `l7:{schema}:`, so lesson 2's `user:{id}`
/// strings on the same Redis are never read as this lesson's entries.
pub fn serve_prefix(schema: &str) -> String {
    format!("l7:{schema}:")
}

/// The lesson's settings, from flags or env vars.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-07-stampede",
    about = "Lesson 7: stampede protection. A hot key expires under load: the herd, counted, and its cures (single-flight, XFetch, leases, TTL jitter, negative caching), measured."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// What a request does when the entry it wants is missing.
    #[arg(long, env = "STRATEGY", value_enum, default_value_t = Strategy::SingleFlight)]
    pub strategy: Strategy,
    /// Seconds an entry lives.
    #[arg(long = "ttl-secs", env = "CACHE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl_secs: u64,
    /// Up to this share of each TTL is cut at random (0 to 1; 0: none).
    #[arg(long, env = "TTL_JITTER", default_value_t = 0.1, value_parser = parse_share)]
    pub jitter: f64,
    /// Seconds a "not found" is cached (0: not at all).
    #[arg(long = "negative-ttl-secs", env = "NEGATIVE_TTL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub negative_ttl_secs: u64,
    /// XFetch's β: above 1 recomputes earlier, below 1 later (0.1 to 10).
    #[arg(long, env = "XFETCH_BETA", default_value_t = 1.0, value_parser = parse_beta)]
    pub beta: f64,
    /// The longest one Redis call may take, in ms.
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// Run the book's longer experiments instead of the short ones.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiments' results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a share between 0 and 1 (0.1 is 10%), not {s:?}"
        )),
    }
}

fn parse_beta(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=10.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a number from 0.1 to 10 (1 is the paper's), not {s:?}"
        )),
    }
}

impl Args {
    pub fn settings(&self) -> Settings {
        let db_timeout = self.common.db_timeout();
        let redis_timeout = Duration::from_millis(self.redis_timeout_ms);
        Settings {
            strategy: self.strategy,
            ttl: Duration::from_secs(self.ttl_secs),
            jitter: self.jitter,
            negative_ttl: Duration::from_secs(self.negative_ttl_secs),
            beta: self.beta,
            // The lease is taken a Redis round trip before the load starts,
            // and filled one after it ends: a load that takes all of
            // `db_timeout` must still find its lease there.
            lease_ttl: db_timeout + redis_timeout * 2,
            lease_wait: db_timeout + redis_timeout * 2,
            lease_poll: Duration::from_millis(5),
            redis_timeout,
            key_prefix: serve_prefix(&self.common.schema),
            latency: self.common.latency(),
            db_timeout,
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
        assert_eq!(s.strategy, Strategy::SingleFlight);
        assert_eq!(s.ttl, Duration::from_secs(60));
        assert_eq!(s.jitter, 0.1);
        assert_eq!(s.negative_ttl, Duration::from_secs(10));
        assert_eq!(s.beta, 1.0);
        assert_eq!(s.lease_ttl, s.db_timeout + Duration::from_millis(100));
        assert_eq!(s.key_prefix, "l7:workshop:");
    }

    #[test]
    fn bad_knobs_are_refused() {
        assert!(Args::try_parse_from(["x", "--strategy", "hope"]).is_err());
        assert!(Args::try_parse_from(["x", "--jitter", "1.5"]).is_err());
        assert!(Args::try_parse_from(["x", "--jitter", "NaN"]).is_err());
        assert!(Args::try_parse_from(["x", "--beta", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--ttl-secs", "0"]).is_err());
        let a = Args::try_parse_from(["x", "--strategy", "xfetch", "--negative-ttl-secs", "0"])
            .expect("parses");
        assert_eq!(a.settings().strategy, Strategy::XFetch);
        assert!(a.settings().negative_ttl.is_zero());
    }
}
