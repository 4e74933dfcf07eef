//! # Exercise 9: fill the cache only from a replica that has seen the write (about 30 minutes)
//!
//! Lesson 9 adds a read replica: a PostgreSQL standby that streams the
//! primary's write-ahead log (WAL) and replays it, so reads can go there
//! and the primary keeps its time for writes. The replica is
//! *asynchronous*: a commit on the primary returns before the replica has
//! replayed it. Usually the gap is milliseconds, but a cache turns a
//! millisecond into a TTL:
//!
//! ```text
//!  primary   UPDATE users SET name = 'Ada Lovelace' WHERE id = 1, commits at 0/3000148; DEL the key
//!  replica   has replayed up to 0/3000100: still says 'Ada'
//!  a miss    reads the replica, 'Ada', and SETs it: the cache serves the old name for the TTL
//! ```
//!
//! The write deleted the key, as lesson 2's writes do, and the very next
//! miss put the old row back. Nothing failed, nothing was logged.
//!
//! Every write moves the primary's WAL position, its **LSN** (log sequence
//! number), and every replica tells how far it has
//! replayed (`pg_last_wal_replay_lsn()`). So the service records the
//! primary's LSN when it writes a user, and a miss for that user asks:
//! *has the replica replayed it yet?* Yes: the replica's row is at least as
//! new as our write, read it there. No: read the primary, this once.
//!
//! Write [`read_for_fill`], in `src/starter.rs`:
//!
//! - `written` is `Some(lsn)`, the primary's LSN recorded when this user was
//!   last written (as text, `"0/3000148"`): read the replica if it has
//!   replayed that position, else the primary;
//! - `written` is `None` (no write of this user that we know of): read the
//!   replica;
//! - return the user (`None`: no such user) and where it came from.
//!
//! ```text
//! just exercise-9          # the tests against your src/starter.rs
//! just hint-9 1            # the first hint (of HINTS.md's three), if you are stuck
//! # without just: cargo test -p exercise-09-scale-out --features starter
//! ```
//!
//! The tests spawn a private primary and a streaming standby (`lab::replica`)
//! for each test, seed three users, *pause* the standby's replay, rename a
//! user on the primary, and call your function with and without the
//! write's LSN; then resume replay and call it again. They check which
//! server answered and which name it gave, never timings.
//!
//! ## What is yours and what is given, and why
//!
//! Yours: the decision, replica or primary, and asking the replica for it.
//! An LSN looks like text but is a 64-bit number, printed as two
//! hexadecimal halves (`high/low`, without leading zeros): compare LSNs as
//! numbers. PostgreSQL has a type for them, `pg_lsn`, with `>=`.
//!
//! Given: [`Source`], the answer's second half; [`read_user`], the lessons'
//! query for one user under a deadline, so you only choose the pool; and
//! [`TIMEOUT`], the deadline for the question you ask the replica. Given
//! too, by the tests: the recorded LSN. A service records it when it
//! writes (lesson 9 asks the primary for `pg_current_wal_insert_lsn()`
//! once the `UPDATE` has committed: past the commit record even with
//! `synchronous_commit = off`) and needs it only while a replica may still be behind;
//! how lesson 9 keeps it is the lesson's business, not this exercise's.
//!
//! Without a recorded write there is nothing to compare: the replica is
//! read, and it may be behind a write that another instance made, one this
//! process has no LSN for. A test says so: the recorded LSN protects only
//! the writes it records.
//!
//! # Layout
//!
//! - this file: [`Source`], [`read_user`], and the choice of implementation
//!   the tests run;
//! - `starter.rs`: your `read_for_fill`; `solution.rs`: the reference;
//! - `wrong/`: plausible mistakes the tests catch (spoilers).

use std::time::Duration;

use anyhow::Context;
use lab::users::User;
use sqlx::PgPool;

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-9` turns on) is yours; none is the
// reference in solution.rs; `wrong-*` are plausible mistakes that CI proves
// the tests catch. With several on (clippy's `--all-features`), the first
// in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::read_for_fill;
    } else if #[cfg(feature = "wrong-always-replica")] {
        pub use wrong::always_replica::read_for_fill;
    } else if #[cfg(feature = "wrong-always-primary")] {
        pub use wrong::always_primary::read_for_fill;
    } else if #[cfg(feature = "wrong-text-compare")] {
        pub use wrong::text_compare::read_for_fill;
    } else if #[cfg(feature = "wrong-received-not-replayed")] {
        pub use wrong::received_not_replayed::read_for_fill;
    } else {
        pub use solution::read_for_fill;
    }
}

/// Which server a fill's row came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Primary,
    Replica,
}

/// The deadline of every query here. Generous for a primary-key lookup on
/// loopback; what it guards against is a server that does not answer at
/// all (a replica stuck behind a long recovery conflict, a dead host),
/// which without it would hold the request, and its pool connection, for
/// as long as TCP cares to wait.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// User `id` from `pool` (the primary or the replica: the same query runs
/// on both), under [`TIMEOUT`]. `Ok(None)`: no such user.
pub async fn read_user(pool: &PgPool, id: i64) -> anyhow::Result<Option<User>> {
    // The lessons' query (`SELECT id, name, email FROM users WHERE id = $1`),
    // with no simulated latency.
    tokio::time::timeout(TIMEOUT, lab::users::fetch_user(pool, id, Duration::ZERO))
        .await
        .with_context(|| format!("no answer within {TIMEOUT:?} reading user {id}"))?
}
