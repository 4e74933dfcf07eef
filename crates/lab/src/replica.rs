//! A private PostgreSQL primary with a streaming read replica: lesson 9's
//! second database.
//!
//! [`PgReplica::start`] spawns a primary (like any private instance), then a
//! standby from `pg_basebackup -R` that streams the primary's WAL and
//! replays it ([`Instance::start_standby`]). Both are dropped with the
//! value.
//!
//! The replica is *asynchronous*, as read replicas are by default: a commit
//! on the primary returns before the standby has replayed it. The gap is
//! the lesson: [`PgReplica::pause_replay`] (`pg_wal_replay_pause()`) makes
//! it as long as a test needs, deterministically, and
//! [`PgReplica::wait_replayed`] waits until the standby has caught up with a
//! given LSN.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;

use crate::kind::Kind;
use crate::spawn::{Instance, SpawnOptions};

/// Every statement the harness sends here is bounded by this.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A primary and one streaming standby.
#[derive(Debug)]
pub struct PgReplica {
    // Field order is drop order: the standby stops before its primary, so
    // it does not spend its last moments retrying a vanished upstream.
    pub standby: Instance,
    pub primary: Instance,
}

impl PgReplica {
    /// Spawns the primary with `settings`, then its standby, and waits until
    /// the standby streams.
    pub async fn start<K: Into<String>, V: Into<String>>(
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<PgReplica> {
        let opts = SpawnOptions::with_settings(settings);
        let primary = Instance::start_new(Kind::Postgres, opts.clone()).await?;
        let standby = Instance::start_standby(&primary, opts).await?;
        let r = PgReplica { standby, primary };
        r.wait_streaming(Duration::from_secs(30)).await?;
        Ok(r)
    }

    /// The URL of database `test` on the primary (writes).
    pub fn primary_url(&self) -> String {
        self.primary.url()
    }

    /// The URL of database `test` on the standby (reads only).
    pub fn standby_url(&self) -> String {
        self.standby.url()
    }

    async fn wait_streaming(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let n: i64 = scalar(
                &self.primary_url(),
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .await?;
            if n > 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the standby did not start streaming within {within:?}\n{}",
                    self.standby.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The primary's current WAL position, as text (`0/3000148`).
    pub async fn primary_lsn(&self) -> anyhow::Result<String> {
        scalar(&self.primary_url(), "SELECT pg_current_wal_lsn()::text").await
    }

    /// The last WAL position the standby has replayed.
    pub async fn replay_lsn(&self) -> anyhow::Result<String> {
        scalar(&self.standby_url(), "SELECT pg_last_wal_replay_lsn()::text").await
    }

    /// How many bytes of WAL the standby has still to replay, by the
    /// primary's `pg_stat_replication`.
    pub async fn lag_bytes(&self) -> anyhow::Result<i64> {
        scalar(
            &self.primary_url(),
            "SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint \
             FROM pg_stat_replication",
        )
        .await
    }

    /// Stops replay on the standby (it still receives WAL): from now on
    /// it answers reads from the past, until [`resume_replay`](Self::resume_replay).
    pub async fn pause_replay(&self) -> anyhow::Result<()> {
        exec(&self.standby_url(), "SELECT pg_wal_replay_pause()").await
    }

    pub async fn resume_replay(&self) -> anyhow::Result<()> {
        exec(&self.standby_url(), "SELECT pg_wal_replay_resume()").await
    }

    /// Waits until the standby has replayed `lsn`; returns how long it took.
    pub async fn wait_replayed(&self, lsn: &str, within: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let sql = format!(
            "SELECT pg_last_wal_replay_lsn() >= '{}'::pg_lsn",
            check_lsn(lsn)?
        );
        loop {
            let done: bool = scalar(&self.standby_url(), &sql).await?;
            if done {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > within {
                bail!("the standby did not replay {lsn} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// An LSN is two hex numbers around a slash; anything else is refused
/// before it reaches SQL text.
fn check_lsn(lsn: &str) -> anyhow::Result<&str> {
    let ok = lsn.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_hexdigit())
    });
    anyhow::ensure!(ok, "not an LSN: {lsn:?}");
    Ok(lsn)
}

async fn scalar<T>(url: &str, sql: &str) -> anyhow::Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let fut = async {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let (v,): (T,) = sqlx::query_as(sql).fetch_one(&mut c).await?;
        c.close().await?;
        Ok::<_, sqlx::Error>(v)
    };
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}: {sql}"))?
        .with_context(|| format!("{sql} on {}", crate::discover::redact(url)))
}

async fn exec(url: &str, sql: &str) -> anyhow::Result<()> {
    let fut = async {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query(sql).execute(&mut c).await?;
        c.close().await?;
        Ok::<_, sqlx::Error>(())
    };
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}: {sql}"))?
        .with_context(|| format!("{sql} on {}", crate::discover::redact(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lsns_pass() {
        assert!(check_lsn("0/3000148").is_ok());
        assert!(check_lsn("1A/FF").is_ok());
        for bad in ["", "0/", "/1", "0/1'; DROP", "x/1", "01"] {
            assert!(check_lsn(bad).is_err(), "{bad}");
        }
    }
}
