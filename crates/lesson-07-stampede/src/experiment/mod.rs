//! The experiments `just lesson-7` runs (short) and the `stampede` bench
//! runs (long, for the book). (Being written.)

/// `just lesson-7`.
pub async fn demo(_args: &crate::cli::Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
