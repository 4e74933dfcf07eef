//! The command line: `just lesson-6` runs the experiments, `--serve` keeps
//! the edge and its origin up.

/// The lesson's flags, each also an env var.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-06-http-edge",
    about = "Lesson 6: HTTP caching headers and a real edge cache (nginx) in front of an origin."
)]
pub struct Args {
    #[command(flatten)]
    pub common: lab::cli::CommonArgs,
    /// Load Debian's purge module and serve `/purge/<path>` (loopback only).
    // Boolish: a flag's env var is otherwise parsed as `true`/`false` only,
    // and `EDGE_PURGE=1` (as the other knobs are set) would be rejected.
    #[arg(long, env = "EDGE_PURGE", value_parser = clap::builder::BoolishValueParser::new())]
    pub purge: bool,
    /// Run the book's longer experiments instead of the short ones.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiments' results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Args;

    #[test]
    fn edge_purge_takes_1_yes_and_on() {
        // The env var goes through the arg's value parser: try that parser
        // on a positional (setting the process's env in a test would race
        // the other tests).
        let purge = Args::command()
            .get_arguments()
            .find(|a| a.get_id() == "purge")
            .expect("--purge")
            .get_value_parser()
            .clone();
        let parse = |v: &str| {
            clap::Command::new("t")
                .arg(clap::Arg::new("v").value_parser(purge.clone()))
                .try_get_matches_from(["t", v])
                .ok()
                .and_then(|m| m.get_one::<bool>("v").copied())
        };
        for yes in ["1", "true", "yes", "on"] {
            assert_eq!(parse(yes), Some(true), "EDGE_PURGE={yes}");
        }
        for no in ["0", "false", "no", "off"] {
            assert_eq!(parse(no), Some(false), "EDGE_PURGE={no}");
        }
        assert!(Args::try_parse_from(["lesson-6", "--purge"]).is_ok_and(|a| a.purge));
    }
}
