//! Your code goes here. `just exercise-9` runs the tests against it;
//! `just hint-9 1` prints the first hint (HINTS.md has three).

// These are the imports your code will need. Until it uses them the
// compiler would warn about each; delete this line when you are done.
#![allow(unused_imports)]

use anyhow::Context;
use lab::users::User;
use sqlx::PgPool;

// `Source::{Primary, Replica}`; `TIMEOUT`, the deadline for your query;
// `read_user(pool, id)`, the user query under that deadline.
use crate::{Source, TIMEOUT, read_user};

/// The read a cache miss fills from. `written` is the primary's WAL
/// position (LSN, text like "0/3000148") recorded when this user was last
/// written, if it was written recently. Read the replica when it has
/// replayed that position (or when there is no recorded write), else the
/// primary, so a cache is never filled with a row older than a write we
/// know of. `Ok((None, _))`: no such user.
pub async fn read_for_fill(
    primary: &PgPool,
    replica: &PgPool,
    id: i64,
    written: Option<&str>,
) -> anyhow::Result<(Option<User>, Source)> {
    // TODO: choose the pool, then `read_user(pool, id)` on it.
    //       - `written` is `None`: the replica.
    //       - `written` is `Some(lsn)`: ask the REPLICA how far it has
    //         replayed the primary's WAL, `pg_last_wal_replay_lsn()`, and
    //         whether that is at or past `lsn`. Yes: the replica. No: the
    //         primary.
    //       - An LSN is a number written as text: compare numbers, not
    //         strings. PostgreSQL's type `pg_lsn` compares them; your text
    //         becomes one with `$1::pg_lsn`, `$1` bound with `.bind(lsn)`.
    //       - Your query gets a deadline, as every query here does:
    //         `tokio::time::timeout(TIMEOUT, ...)`.
    //       - Return the user and the `Source` you read it from.
    let _ = (primary, replica, id, written);
    todo!("exercise 9: implement read_for_fill in crates/exercise-09-scale-out/src/starter.rs")
}
