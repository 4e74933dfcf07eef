//! Wrong: the LSNs compared as strings, in Rust. An LSN prints as two hex
//! numbers without leading zeros, so text order is not number order:
//! `"0/3000148" >= "0/10000000"` as text (the '3' beats the '1'), though
//! 0x3000148 is 50 MB short of 0x10000000. Around a power of 16 this says
//! "replayed" when it is not (the stale fill is back), and "not replayed"
//! when it is (`"0/2000000" < "0/FFFFFF"`: the primary, for nothing). A
//! quick try on two nearby LSNs of the same length passes.

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
            let replay =
                sqlx::query_scalar::<_, Option<String>>("SELECT pg_last_wal_replay_lsn()::text")
                    .fetch_one(replica);
            let replay = tokio::time::timeout(TIMEOUT, replay)
                .await
                .context("no answer from the replica")?
                .context("Failed to read the replica's replay LSN")?;
            // `String >= &str`: byte by byte.
            match replay {
                Some(replay) if replay.as_str() >= lsn => Source::Replica,
                _ => Source::Primary,
            }
        }
    };
    read_from(primary, replica, id, source).await
}
