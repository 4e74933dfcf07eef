//! Experiment 1, throughput with wrk: a stub until the real one lands.

use serde::{Deserialize, Serialize};

/// How long to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub quick: bool,
}

/// What experiment 1 measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadResults {}

impl lab::results::Results for LoadResults {
    const FILE: &'static str = "edge_load.json";
}

impl LoadResults {
    pub fn table_md(&self) -> String {
        String::new()
    }
}

/// Edge HIT vs origin vs static, with wrk.
pub async fn run(_opts: &LoadOptions) -> anyhow::Result<LoadResults> {
    anyhow::bail!("not yet")
}
