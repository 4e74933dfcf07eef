//! The experiments (to be written).

/// `just lesson-6`: every experiment, short.
pub async fn demo(_args: &crate::cli::Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

pub mod load;
