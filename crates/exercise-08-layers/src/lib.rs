//! # Exercise 8: cure the stale-set race with a versioned fill (about 30 minutes)
//!
//! Lesson 8 keeps each user in Redis as a hash,
//! `{v: <row version>, json: <body>}`; a hash with a `v` and no `json` is a
//! *tombstone*: nothing to serve, but a version that older values may not
//! overwrite. The
//! **stale-set race** is what lesson 2's fill lets happen:
//!
//! ```text
//!  reader (GET, a miss)            writer (PUT)
//!  reads v1 from the database
//!                                  UPDATE → v2, then writes v2 into Redis
//!  writes v1 into Redis  ← stale until the TTL
//! ```
//!
//! Nothing fails and nothing is logged: every read serves version 1 until
//! the key expires. Write `set_if_newer`, in `src/starter.rs`: a fill that
//! stores `{v, json}` **only if Redis does not hold a newer version**, and
//! does the comparison and the write **atomically**, as one Lua script. As
//! shipped it does lesson 2's fill (`DEL`, `HSET`, `PEXPIRE`, whatever is
//! there), so the late reader wins.
//!
//! ```text
//! just exercise-8          # the tests against your src/starter.rs
//! just hint-8 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-08-layers --features starter
//! ```
//!
//! The tests replay the race step by step on a key prefix of their own on
//! the workshop's Redis (the one `just doctor` finds), then let two hundred
//! tasks race your fill on one key over several connections, and read the
//! hash and its `PTTL` back. They check values and counts, never timings.
//!
//! ## What is yours and what is given, and why
//!
//! Yours: the comparison and the write, in one script. That is the
//! lesson's whole idea: a version makes "older" decidable, and only Redis
//! running the check and the write as one step makes the decision hold (a
//! `HGET` from the client, then a `HSET`, leaves a gap another fill
//! can write into). Also yours: that the versions compare as numbers, that
//! an equal version is accepted (a tombstone's own version must be
//! fillable), and that every store sets the TTL.
//!
//! Given: [`read`], the `HMGET` that turns a hash back into a version and a
//! body, so you and the tests read entries the same way; and the
//! signature, with a `MultiplexedConnection` (what the tests hold) rather
//! than a generic connection, so the compiler's messages name one type.
//! There is no writer's side to write: in lesson 8's versioned mode the
//! writer calls the same function, `set_if_newer(new version)` (or a
//! tombstone, when only the version is known) instead of a `DEL`, and the
//! tests do the same. A `DEL` would leave nothing to compare with: the late
//! reader's fill would land on an empty key.
//!
//! # Layout
//!
//! - this file: [`read`], and the choice of implementation the tests run;
//! - `starter.rs`: your `set_if_newer`; `solution.rs`: the reference;
//! - `wrong/`: plausible mistakes the tests catch (spoilers).

use anyhow::Context;
use redis::aio::MultiplexedConnection;

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-8` turns on) is yours; none is the
// reference in solution.rs; `wrong-*` are plausible mistakes that CI proves
// the tests catch. With several on (clippy's `--all-features`), the first
// in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::set_if_newer;
    } else if #[cfg(feature = "wrong-unconditional")] {
        pub use wrong::unconditional::set_if_newer;
    } else if #[cfg(feature = "wrong-string-compare")] {
        pub use wrong::string_compare::set_if_newer;
    } else if #[cfg(feature = "wrong-no-ttl")] {
        pub use wrong::no_ttl::set_if_newer;
    } else if #[cfg(feature = "wrong-strictly-newer")] {
        pub use wrong::strictly_newer::set_if_newer;
    } else {
        pub use solution::set_if_newer;
    }
}

/// The entry at `key`: `None` when there is none, else its version and its
/// body, `None` for a tombstone.
///
/// One `HMGET` for both fields: two `HGET`s could straddle a fill and
/// return one version's number with another version's body.
pub async fn read(
    redis: &mut MultiplexedConnection,
    key: &str,
) -> anyhow::Result<Option<(i64, Option<String>)>> {
    let (version, json): (Option<i64>, Option<String>) = redis::cmd("HMGET")
        .arg(key)
        .arg("v")
        .arg("json")
        .query_async(redis)
        .await
        .with_context(|| format!("Failed to read the entry {key:?} (HMGET v json)"))?;
    // No `v`, no entry: a fill always writes `v`, so a hash without one
    // was not written by a fill, and a missing key reads as two nils.
    Ok(version.map(|v| (v, json)))
}
