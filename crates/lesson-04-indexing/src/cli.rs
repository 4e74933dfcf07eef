//! The command line of `just lesson-4`.

/// The demo's settings.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-04-indexing",
    about = "Lesson 4: each query before and after the right index, with its plan, on PostgreSQL and MariaDB."
)]
pub struct Args {
    /// Users to seed. 200,000 by default: a scan then takes milliseconds and
    /// an index lookup tens of microseconds, so the gap is two orders of
    /// magnitude, and seeding takes about a second. The bench uses 1,000,000.
    #[arg(long, env = "LAB_INDEX_ROWS", default_value_t = 200_000, value_parser = clap::value_parser!(i64).range(1_000..=100_000_000))]
    pub rows: i64,
    /// Skip case 6 (MariaDB).
    #[arg(long)]
    pub no_mariadb: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_seed_200k_and_bad_sizes_are_rejected() {
        let a = Args::try_parse_from(["x"]).expect("defaults parse");
        assert_eq!(a.rows, 200_000);
        assert!(!a.no_mariadb);
        for bad in ["999", "lots", "100000001"] {
            assert!(
                Args::try_parse_from(["x", "--rows", bad]).is_err(),
                "--rows {bad} should be rejected"
            );
        }
    }
}
