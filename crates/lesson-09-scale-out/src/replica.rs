//! A PostgreSQL read replica behind lesson 2's cache, and the lag that
//! poisons it.
//!
//! The textbook split is "writes to the primary, reads to the replicas".
//! A replica is *asynchronous*: a commit on the primary returns before the
//! replica has replayed it. So after `PUT /users/7` (UPDATE on the primary,
//! then DEL of the cache key), the very next `GET /users/7` misses, reads
//! the replica, gets the **old** row, and caches it for the whole TTL. The
//! lag was milliseconds; the stale answer lasts a minute. That is what
//! [`FillFrom::Replica`] does, on purpose.
//!
//! The fixes decide, per cache fill, which database to read ([`Db::read_for_fill`]):
//!
//! - [`FillFrom::Primary`]: cache fills read the primary. The replica still
//!   serves everything that is not copied into the cache (lists, searches,
//!   reports); only what is kept for a TTL must be fresh when read.
//! - [`FillFrom::ReadYourWrites`]: for a short window after this process
//!   wrote a user, that user's fill reads the primary.
//! - [`FillFrom::Lsn`] (the default): a write remembers the position in the
//!   primary's write-ahead log (its LSN) just past its commit; a fill asks
//!   the replica whether it has replayed that far, and reads it only if so.
//!   Exact, and the replica takes every read it can.
//!
//! What none of them cover: writes made by *another* process, which this
//! one never heard of. Sharing the "recent writes" (in Redis, or in the
//! client's session) extends them; lesson 8's invalidation is the other
//! half of that story.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::users::User;
use sqlx::PgPool;

/// Which database a cache miss fills from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FillFrom {
    /// Always the replica: the naive split. Poisons the cache after a write.
    Replica,
    /// Always the primary.
    Primary,
    /// The primary for a user this process wrote in the last window, else the replica.
    ReadYourWrites,
    /// The replica once it has replayed this process's last write of the user, else the primary.
    Lsn,
}

impl FillFrom {
    pub const ALL: [FillFrom; 4] = [
        FillFrom::Replica,
        FillFrom::Primary,
        FillFrom::ReadYourWrites,
        FillFrom::Lsn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FillFrom::Replica => "replica",
            FillFrom::Primary => "primary",
            FillFrom::ReadYourWrites => "read-your-writes",
            FillFrom::Lsn => "lsn",
        }
    }
}

/// Where a read was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Primary,
    Replica,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Primary => "primary",
            Source::Replica => "replica",
        }
    }
}

/// The knobs of [`Db`].
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    /// [`FillFrom::ReadYourWrites`]' window: how long after a write the
    /// writer's fills read the primary. It must outlast the replica's worst
    /// lag; 2 s is hundreds of times a healthy replica's (milliseconds) and
    /// short enough that the primary sees only a trickle of extra reads.
    pub window: Duration,
    /// The longest one database call (pool wait included) may take.
    pub timeout: Duration,
    /// Lesson 1's simulated latency, spent inside PostgreSQL by each read.
    pub latency: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            window: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            latency: Duration::ZERO,
        }
    }
}

/// A write-ahead log position: PostgreSQL's `pg_lsn`, a 64-bit byte offset
/// printed as two hex halves, `16/B374D848`.
///
/// Why not keep the text and compare strings: the halves are not padded,
/// so `"0/10000000" < "0/9000000"` as text although it is the later
/// position. The decision that matters is made by PostgreSQL (`>=` on
/// `pg_lsn`); this type only lets us forget entries the replica has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Lsn> {
        let (hi, lo) = s
            .split_once('/')
            .with_context(|| format!("not an LSN: {s:?}"))?;
        let hi = u32::from_str_radix(hi, 16).with_context(|| format!("not an LSN: {s:?}"))?;
        let lo = u32::from_str_radix(lo, 16).with_context(|| format!("not an LSN: {s:?}"))?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// What this process remembers of one user's last write.
#[derive(Clone, Copy, Debug)]
struct Written {
    /// When the write was acknowledged (or began, while it runs).
    at: Instant,
    /// The UPDATE has not answered yet: every policy reads the primary.
    in_flight: bool,
    /// The LSN just past its commit (the LSN policy's).
    lsn: Option<Lsn>,
}

/// The primary, the replica if there is one, and the policy that picks
/// between them for a cache fill.
#[derive(Clone)]
pub struct Db {
    primary: PgPool,
    replica: Option<PgPool>,
    fill: FillFrom,
    settings: ReplicaSettings,
    // A std Mutex, not tokio's: it is held for a map lookup or insert,
    // never across an `.await`, so it cannot block the runtime for long
    // and never needs to be held by a suspended task.
    written: Arc<Mutex<HashMap<i64, Written>>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("fill", &self.fill)
            .field("replica", &self.replica.is_some())
            .field("tracked", &self.tracked())
            .finish()
    }
}

impl Db {
    /// Without a replica, every read is the primary's, whatever `fill` says.
    pub fn new(
        primary: PgPool,
        replica: Option<PgPool>,
        fill: FillFrom,
        settings: ReplicaSettings,
    ) -> Db {
        Db {
            primary,
            replica,
            fill,
            settings,
            written: Arc::default(),
        }
    }

    pub fn fill_from(&self) -> FillFrom {
        self.fill
    }

    pub fn primary(&self) -> &PgPool {
        &self.primary
    }

    pub fn replica(&self) -> Option<&PgPool> {
        self.replica.as_ref()
    }

    pub fn settings(&self) -> &ReplicaSettings {
        &self.settings
    }

    /// Users whose last write this process still remembers.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Written>> {
        // A panic while holding it cannot leave the map half-updated (each
        // use is one insert, remove or retain), so a poisoned lock is fine.
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The read a cache miss fills from: the replica or the primary, by the
    /// policy. `Ok(None)`: no such user. If the replica fails, the read
    /// goes to the primary (a replica is an optimisation, like the cache);
    /// if the primary fails, the error is returned.
    #[tracing::instrument(skip(self), fields(fill = self.fill.name(), source))]
    pub async fn read_for_fill(&self, id: i64) -> anyhow::Result<Option<(User, Source)>> {
        let source = self.choose(id).await;
        tracing::Span::current().record("source", source.name());
        if let (Source::Replica, Some(replica)) = (source, &self.replica) {
            match self.fetch(replica, id, "the replica").await {
                Ok(user) => return Ok(user.map(|u| (u, Source::Replica))),
                Err(e) => tracing::warn!("replica read failed, reading the primary: {e:#}"),
            }
        }
        let user = self.fetch(&self.primary, id, "the primary").await?;
        Ok(user.map(|u| (u, Source::Primary)))
    }

    async fn fetch(&self, pool: &PgPool, id: i64, which: &str) -> anyhow::Result<Option<User>> {
        bounded(
            self.settings.timeout,
            lab::users::fetch_user(pool, id, self.settings.latency),
        )
        .await
        .with_context(|| format!("Failed to read user {id} from {which}"))
    }

    // ANCHOR: policy
    /// Which database user `id`'s cache fill reads.
    async fn choose(&self, id: i64) -> Source {
        match (self.fill, &self.replica) {
            (_, None) | (FillFrom::Primary, _) => return Source::Primary,
            // The naive split: whatever the replica has replayed so far.
            (FillFrom::Replica, _) => return Source::Replica,
            (FillFrom::ReadYourWrites | FillFrom::Lsn, Some(_)) => {}
        }
        // Copied out: the lock is released before any `.await`.
        let Some(w) = self.lock().get(&id).copied() else {
            // Nothing written here lately: the replica is as good as anything.
            return Source::Replica;
        };
        if w.in_flight {
            // Our write may commit any moment, and the replica will lag it.
            return Source::Primary;
        }
        match (self.fill, w.lsn) {
            (FillFrom::Lsn, Some(lsn)) => match self.replayed(lsn).await {
                Ok(true) => {
                    self.forget(id, w.at);
                    Source::Replica
                }
                Ok(false) => Source::Primary,
                Err(e) => {
                    // Not knowing counts as "not yet": the primary is
                    // always right, only busier.
                    tracing::warn!("{e:#}");
                    Source::Primary
                }
            },
            (FillFrom::Lsn, None) => Source::Primary,
            // Read-your-writes: a guess by the clock, that the replica is
            // never more than `window` behind.
            _ if w.at.elapsed() < self.settings.window => Source::Primary,
            _ => {
                self.forget(id, w.at);
                Source::Replica
            }
        }
    }
    // ANCHOR_END: policy

    /// Forgets `id`'s write, unless a newer one has replaced it meanwhile.
    fn forget(&self, id: i64, at: Instant) {
        let mut written = self.lock();
        if written.get(&id).is_some_and(|w| w.at == at) {
            written.remove(&id);
        }
    }

    // ANCHOR: lsn
    /// Has the replica replayed the WAL up to `lsn`?
    #[tracing::instrument(skip(self, lsn), fields(lsn = %lsn))]
    async fn replayed(&self, lsn: Lsn) -> anyhow::Result<bool> {
        let replica = self.replica.as_ref().context("no replica")?;
        // The comparison is PostgreSQL's, on `pg_lsn` values, never on
        // their text: "0/10000000" sorts before "0/9000000" as a string.
        // `pg_last_wal_replay_lsn()` is NULL on a server that is not a
        // standby: then nothing counts as replayed.
        let (replayed, position): (bool, Option<String>) = bounded(
            self.settings.timeout,
            sqlx::query_as(
                "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), \
                        pg_last_wal_replay_lsn()::text",
            )
            .bind(lsn.to_string())
            .fetch_one(replica),
        )
        .await
        .context("Failed to ask the replica how far it has replayed")?;
        // While we know where the replica is, forget every write it has
        // passed: the map holds only writes the replica may not show yet.
        if let Some(position) = position.and_then(|p| p.parse::<Lsn>().ok()) {
            self.lock()
                .retain(|_, w| w.in_flight || w.lsn.is_none_or(|l| l > position));
        }
        Ok(replayed)
    }
    // ANCHOR_END: lsn

    /// `UPDATE users SET name` on the primary; `Ok(false)`: no such user.
    /// Remembers what the policy needs to route this user's next fill.
    #[tracing::instrument(skip(self, name), fields(fill = self.fill.name()))]
    pub async fn update_name(&self, id: i64, name: &str) -> anyhow::Result<bool> {
        let track = matches!(self.fill, FillFrom::ReadYourWrites | FillFrom::Lsn);
        let began = Instant::now();
        if track {
            // Marked before the UPDATE, not after: once it commits, a fill
            // may run at any moment, and must already find the mark.
            self.lock().insert(
                id,
                Written {
                    at: began,
                    in_flight: true,
                    lsn: None,
                },
            );
        }
        let result = bounded(self.settings.timeout, self.write(id, name)).await;
        if !track {
            return result.map(|(found, _)| found);
        }
        let mut written = self.lock();
        let mine = written.get(&id).is_some_and(|w| w.at == began);
        match &result {
            Ok((true, lsn)) if mine => {
                // The window starts at the acknowledgement.
                written.insert(
                    id,
                    Written {
                        at: Instant::now(),
                        in_flight: false,
                        lsn: *lsn,
                    },
                );
            }
            // No such user, or the write failed: nothing to route. (A
            // write that timed out may still commit; the replica then shows
            // it late, as it shows any write this process did not make.)
            _ if mine => {
                written.remove(&id);
            }
            _ => {}
        }
        // Pruned here, on the write path: without reads, entries would
        // otherwise pile up. RYW forgets by age; LSN entries are forgotten
        // once the replica is seen past them (in `replayed`).
        if self.fill == FillFrom::ReadYourWrites {
            let window = self.settings.window;
            written.retain(|_, w| w.in_flight || w.at.elapsed() < window);
        }
        drop(written);
        result.map(|(found, _)| found)
    }

    async fn write(&self, id: i64, name: &str) -> anyhow::Result<(bool, Option<Lsn>)> {
        let mut conn = self
            .primary
            .acquire()
            .await
            .context("Failed to get a primary connection")?;
        // One statement, autocommit: when `execute` returns, it has committed.
        let found = sqlx::query("UPDATE users SET name = $2 WHERE id = $1")
            .bind(id)
            .bind(name)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("Failed to update user {id}"))?
            .rows_affected()
            > 0;
        if !found || self.fill == FillFrom::ReadYourWrites {
            return Ok((found, None));
        }
        // Which LSN. `pg_current_wal_lsn()` inside the transaction would be
        // *before* the commit record (not written yet), so a replica that
        // replayed that far still would not show the row. After the commit,
        // `pg_current_wal_insert_lsn()` is at or past the end of our commit
        // record even with `synchronous_commit = off` (where the *write*
        // position, `pg_current_wal_lsn()`, may still lag behind it). It may
        // also include later writes by others: we wait a little longer than
        // needed, never too little.
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut *conn)
            .await
            .context("Failed to read the primary's WAL position")?;
        Ok((true, Some(lsn.parse()?)))
    }
}

/// `fut` under `timeout`: no database call waits forever.
async fn bounded<T, E>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: Into<anyhow::Error>,
{
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => anyhow::bail!("no answer within {timeout:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_compare_as_numbers_not_text() {
        let a: Lsn = "0/10000000".parse().expect("an LSN");
        let b: Lsn = "0/9000000".parse().expect("an LSN");
        assert!(
            "0/10000000" < "0/9000000",
            "as text, the later one sorts first"
        );
        assert!(a > b);
        assert!("1/0".parse::<Lsn>().expect("an LSN") > "0/FFFFFFFF".parse().expect("an LSN"));
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        for bad in ["", "0", "0/", "/1", "x/1", "1/2/3", "100000000/0"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad}");
        }
    }
}
