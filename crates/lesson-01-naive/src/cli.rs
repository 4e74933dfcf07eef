//! The command line: lesson 1's flags, and provisioning what they name.

use crate::AppState;

/// The lesson's settings, from flags or env vars: lesson 1 has only the
/// ones every lesson shares.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-01-naive",
    about = "Lesson 1: GET /users/{id} straight from a slow PostgreSQL, no cache."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
}

/// Finds PostgreSQL, creates and seeds the lesson's schema if needed, and
/// returns the server handle (keep it alive) and the state to serve with.
pub async fn provision(args: &Args) -> anyhow::Result<(lab::Server, AppState)> {
    let (server, pool) = args.common.provision_postgres().await?;
    let state = AppState {
        pool,
        latency: args.common.latency(),
        db_timeout: args.common.db_timeout(),
    };
    Ok((server, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn defaults_tell_the_workshop_story() {
        let a = Args::try_parse_from(["lesson-01-naive"]).expect("defaults parse");
        assert_eq!(a.common.latency(), Duration::from_secs(2));
        assert_eq!(a.common.db_timeout(), Duration::from_secs(7));
        assert!(!a.common.serve);
    }

    #[test]
    fn bad_flags_are_rejected_with_a_reason() {
        for bad in [
            vec!["x", "--schema", "Robert'); DROP TABLE users;--"],
            vec!["x", "--users", "0"],
            vec!["x", "--latency-ms", "lots"],
            vec!["x", "--pool-size", "0"],
        ] {
            assert!(
                Args::try_parse_from(&bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
