//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.
//!
//! Each file holds its own `read_for_fill`, the mistake in it in full; the
//! read they all end with is shared below.

use lab::users::User;
use sqlx::PgPool;

use crate::{Source, read_user};

pub mod always_primary;
pub mod always_replica;
pub mod received_not_replayed;
pub mod text_compare;

/// Reads user `id` from the pool `source` names, as the reference does.
async fn read_from(
    primary: &PgPool,
    replica: &PgPool,
    id: i64,
    source: Source,
) -> anyhow::Result<(Option<User>, Source)> {
    let pool = match source {
        Source::Primary => primary,
        Source::Replica => replica,
    };
    Ok((read_user(pool, id).await?, source))
}
