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
    #[arg(long, env = "EDGE_PURGE")]
    pub purge: bool,
    /// Run the book's longer experiments instead of the short ones.
    #[arg(long)]
    pub long: bool,
    /// Also write the experiments' results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}
