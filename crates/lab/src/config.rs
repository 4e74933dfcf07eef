//! Configuration from environment variables, with documented defaults.
//!
//! Every knob in the workshop is an env var, so the same binary serves the
//! demo, the tests and an instructor's live session. A bad value is an error
//! that names the variable, never a silent fallback to the default.

use std::str::FromStr;
use std::time::Duration;

/// Simulated database latency, spent inside the database with `pg_sleep`.
pub const DB_LATENCY_ENV: &str = "LAB_DB_LATENCY_MS";

/// The figure the workshop's story starts from: a 2-second database call.
pub const DEMO_DB_LATENCY: Duration = Duration::from_millis(2000);

/// Reads `name` and parses it, or returns `default` when it is unset or empty.
pub fn env_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => parse_var(name, &v),
        _ => Ok(default),
    }
}

/// Parses one variable's value, naming the variable in the error.
pub fn parse_var<T>(name: &str, value: &str) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e| {
        anyhow::anyhow!("{name}={value:?} is not valid: {e}. Unset it to use the default.")
    })
}

/// `LAB_DB_LATENCY_MS`, or `default` when unset.
pub fn db_latency(default: Duration) -> anyhow::Result<Duration> {
    let ms: u64 = env_or(DB_LATENCY_ENV, default.as_millis() as u64)?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse_var::<u64>("LAB_DB_LATENCY_MS", "lots")
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("LAB_DB_LATENCY_MS=\"lots\""), "{err}");
        assert_eq!(parse_var::<u64>("X", " 250 ").ok(), Some(250));
    }
}
