//! Exercise 9's reference answer: ask the replica whether it has replayed
//! the write, in SQL, with `pg_lsn`'s own `>=`; read where the answer says.

use anyhow::Context;
use lab::users::User;
use sqlx::PgPool;

use crate::{Source, TIMEOUT, read_user};

// ANCHOR: read_for_fill
/// The read a cache miss fills from: the replica when it has replayed
/// `written` (or when there is no recorded write), else the primary, so a
/// cache is never filled with a row older than a write we know of.
/// `Ok((None, _))`: no such user.
#[tracing::instrument(skip(primary, replica))]
pub async fn read_for_fill(
    primary: &PgPool,
    replica: &PgPool,
    id: i64,
    written: Option<&str>,
) -> anyhow::Result<(Option<User>, Source)> {
    let source = match written {
        // No write of this user that we know of: nothing the replica could
        // be behind, as far as this process can tell.
        None => Source::Replica,
        Some(lsn) => {
            if replayed(replica, lsn).await? {
                Source::Replica
            } else {
                Source::Primary
            }
        }
    };
    let pool = match source {
        Source::Primary => primary,
        Source::Replica => replica,
    };
    Ok((read_user(pool, id).await?, source))
}

/// Has `replica` replayed the WAL up to `lsn`?
///
/// The comparison is PostgreSQL's, on `pg_lsn` values: an LSN is a 64-bit
/// number printed as two hex halves without leading zeros, so as *text*
/// `"0/3000148" >= "0/10000000"` (the '3' beats the '1'), while as numbers
/// it is 50 MB short. `$1::pg_lsn` parses the text we recorded; a bound
/// parameter, never a string pasted into SQL.
///
/// *Replay*, not *receive*: a standby that has received the WAL but not
/// applied it (replay paused, or busy, or held back by a conflicting
/// query) still answers with the old row. Only `pg_last_wal_replay_lsn()`
/// says what its reads can see.
async fn replayed(replica: &PgPool, lsn: &str) -> anyhow::Result<bool> {
    let check =
        sqlx::query_scalar::<_, Option<bool>>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
            .bind(lsn)
            .fetch_one(replica);
    let replayed = tokio::time::timeout(TIMEOUT, check)
        .await
        .with_context(|| {
            format!("the replica did not say within {TIMEOUT:?} whether it has replayed {lsn}")
        })?
        .with_context(|| format!("Failed to ask the replica whether it has replayed {lsn}"))?;
    // NULL: a server that is not replaying anything (not a standby, or one
    // promoted to primary) has no replay position. Then "no": the primary
    // is always right.
    Ok(replayed.unwrap_or(false))
}
// ANCHOR_END: read_for_fill
