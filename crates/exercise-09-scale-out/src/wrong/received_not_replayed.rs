//! Wrong: `pg_last_wal_receive_lsn()`, how far the standby has *received*
//! the WAL, not how far it has *replayed* it. Reads see only what has been
//! replayed, and replay can lag behind receiving: paused, busy, or waiting
//! for a query on the standby that a replayed change would conflict with.
//! The two are so often equal that this passes every try but the one that
//! matters.

use anyhow::Context;
use lab::users::User;
use sqlx::PgPool;

use super::read_from;
use crate::{Source, TIMEOUT};

pub async fn read_for_fill(
    primary: &PgPool,
    replica: &PgPool,
    id: i64,
    written: Option<&str>,
) -> anyhow::Result<(Option<User>, Source)> {
    let source = match written {
        None => Source::Replica,
        Some(lsn) => {
            let check = sqlx::query_scalar::<_, Option<bool>>(
                "SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn",
            )
            .bind(lsn)
            .fetch_one(replica);
            let received = tokio::time::timeout(TIMEOUT, check)
                .await
                .context("no answer from the replica")?
                .context("Failed to ask the replica how far it has received")?;
            if received.unwrap_or(false) {
                Source::Replica
            } else {
                Source::Primary
            }
        }
    };
    read_from(primary, replica, id, source).await
}
