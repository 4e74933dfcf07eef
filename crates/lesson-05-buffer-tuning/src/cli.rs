//! The command line: `just lesson-5` runs the demo, `just lesson-5 tune`
//! prints a config.

use crate::{Db, Machine, Profile, Storage, size};

/// The `tune` command's arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct TuneArgs {
    /// The server's RAM, with a unit: 16GB, 512MB, 1.5TB.
    #[arg(long, value_parser = size::parse_size)]
    pub ram: u64,
    /// CPU cores.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus: u32,
    /// What the database does.
    #[arg(long, value_enum, default_value_t = Profile::Web)]
    pub profile: Profile,
    #[arg(long, value_enum)]
    pub db: Db,
    #[arg(long, value_enum, default_value_t = Storage::Ssd)]
    pub storage: Storage,
    /// Connections the application needs [default: the profile's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: Option<u32>,
    /// Write the config to this file instead of printing it.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

impl TuneArgs {
    pub fn machine(&self) -> Machine {
        Machine {
            ram: self.ram,
            cpus: self.cpus,
            profile: self.profile,
            storage: self.storage,
            connections: self.connections,
        }
    }
}

#[derive(clap::Parser, Debug)]
#[command(
    name = "lesson-05-buffer-tuning",
    about = "Lesson 5: buffer tuning for PostgreSQL and MariaDB."
)]
pub struct Cli {
    /// Without a command: run every experiment, small (`just lesson-5`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print a config for a machine, with the reason for every line.
    Tune(TuneArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn bad_input_is_named() {
        let err = |args: &[&str]| {
            Cli::try_parse_from(args)
                .expect_err("must fail")
                .to_string()
        };
        let base = ["x", "tune", "--cpus", "4", "--db", "postgres"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            base.iter().copied().chain(extra.iter().copied()).collect()
        };
        assert!(err(&with(&["--ram", "0"])).contains("is zero"));
        assert!(err(&with(&["--ram", "100MB"])).contains("below 256MB"));
        assert!(err(&with(&["--ram", "lots"])).contains("e.g. 16GB"));
        assert!(err(&with(&["--ram", "16GB", "--profile", "gaming"])).contains("gaming"));
        assert!(
            err(&[
                "x", "tune", "--ram", "16GB", "--cpus", "0", "--db", "postgres"
            ])
            .contains("0")
        );
        assert!(Cli::try_parse_from(with(&["--ram", "16GB"])).is_ok());
    }
}
