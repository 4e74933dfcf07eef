//! Where an experiment leaves its results, and how `just report` reads them.
//!
//! Criterion keeps its own numbers in `target/criterion`. The experiments
//! that are not a criterion timing (lesson 3's outage, lesson 4's plans and
//! index sizes, lesson 5's counters) write one JSON file each into
//! [`dir`], through a type that implements [`Results`]. The same type is
//! what the report reads back, so writer and reader cannot disagree on a
//! field or a file name.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `target/lab-experiments` (or under `CARGO_TARGET_DIR`), for the benches
/// that write and the report that reads.
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("lab-experiments")
}

/// One experiment's results file: its name in [`dir`] and its contents.
pub trait Results: Serialize + DeserializeOwned {
    /// The file's name in [`dir`], e.g. `outage.json`.
    const FILE: &'static str;

    /// The file's path.
    fn path() -> PathBuf {
        dir().join(Self::FILE)
    }

    /// Writes the results, pretty-printed, and returns where.
    fn write(&self) -> anyhow::Result<PathBuf> {
        let path = Self::path();
        std::fs::create_dir_all(dir())
            .with_context(|| format!("Failed to create {}", dir().display()))?;
        let text = serde_json::to_string_pretty(self).context("Failed to serialise the results")?;
        std::fs::write(&path, text)
            .with_context(|| format!("Failed to write {}", path.display()))?;
        Ok(path)
    }

    /// Reads what the experiment wrote last.
    fn read() -> anyhow::Result<Self> {
        let path = Self::path();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no results at {}: run `just report` without --reuse",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not what the experiment writes", path.display()))
    }
}
