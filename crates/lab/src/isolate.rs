//! Test isolation on shared servers: a schema, a database or a key prefix of
//! each test's own.
//!
//! Tests run in parallel against the same PostgreSQL, MariaDB and Redis, so
//! each one works inside a namespace it created, and removes only that. The
//! names carry their creation time: if a test process dies before cleaning
//! up, the next run removes namespaces of ours older than [`STALE_AFTER`],
//! and never anything it did not create (no `FLUSHALL`, no foreign schemas).
//! A cleanup that fails never fails the test, but says so in the test output.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

/// Every namespace the harness creates starts with this.
pub const PREFIX: &str = "lab_";
/// Namespaces of ours older than this are leftovers of a crashed run.
pub const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);
/// How long one cleanup statement may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys `SCAN` looks at per call: a page, not the whole keyspace.
const SCAN_COUNT: usize = 1000;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `lab_<unix seconds>_<pid>_<n>`: unique across parallel test processes.
pub fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}_{}_{n}", unix_now(), std::process::id())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether `name` is one of ours and older than [`STALE_AFTER`].
pub fn is_stale(name: &str, now: u64) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let Some(ts) = rest.split('_').next().and_then(|t| t.parse::<u64>().ok()) else {
        return false;
    };
    now.saturating_sub(ts) > STALE_AFTER.as_secs()
}

/// A PostgreSQL schema of one test's own, with a pool whose `search_path`
/// points at it: unqualified `users` means this test's `users`.
#[derive(Debug)]
pub struct PgSchema {
    name: String,
    server_url: String,
    pool: PgPool,
}

impl PgSchema {
    pub async fn create(server_url: &str) -> anyhow::Result<PgSchema> {
        let name = unique_name();
        let base = PgConnectOptions::from_str(server_url).context("Invalid PostgreSQL URL")?;
        let mut admin = base
            .connect()
            .await
            .context("Failed to connect to PostgreSQL")?;
        sweep_pg(&mut admin).await;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .context("Failed to create a test schema")?;
        admin.close().await.ok();
        let pool = schema_pool(server_url, &name, 5).await?;
        Ok(PgSchema {
            name,
            server_url: server_url.to_string(),
            pool,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A pool whose connections start with `search_path` set to `schema`.
pub async fn schema_pool(url: &str, schema: &str, max: u32) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url)
        .context("Invalid PostgreSQL URL")?
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .context("Failed to connect to PostgreSQL")
}

async fn sweep_pg(c: &mut sqlx::PgConnection) {
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lab\\_%'")
            .fetch_all(&mut *c)
            .await
            .unwrap_or_default();
    for (n,) in names.into_iter().filter(|(n,)| is_stale(n, unix_now())) {
        tracing::info!(schema = %n, "dropping a test schema left by a crashed run");
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {n} CASCADE"))
            .execute(&mut *c)
            .await;
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let url = self.server_url.clone();
        cleanup_blocking(
            &format!("dropping the schema {}", self.name),
            move || async move {
                let mut c = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(&sql).execute(&mut c).await?;
                Ok(())
            },
        );
    }
}

/// A MariaDB database of one test's own.
#[derive(Debug)]
pub struct MyDatabase {
    name: String,
    server_url: String,
    pool: MySqlPool,
}

impl MyDatabase {
    pub async fn create(server_url: &str) -> anyhow::Result<MyDatabase> {
        let name = unique_name();
        let base = MySqlConnectOptions::from_str(server_url).context("Invalid MySQL URL")?;
        let mut admin = base
            .connect()
            .await
            .context("Failed to connect to MariaDB")?;
        let dbs: Vec<(String,)> = sqlx::query_as(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'lab\\_%'",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
        for (n,) in dbs.into_iter().filter(|(n,)| is_stale(n, unix_now())) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {n}"))
                .execute(&mut admin)
                .await;
        }
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .context("Failed to create a test database")?;
        admin.close().await.ok();
        let pool = MySqlPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(base.database(&name))
            .await
            .context("Failed to connect to the test database")?;
        Ok(MyDatabase {
            name,
            server_url: server_url.to_string(),
            pool,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

impl Drop for MyDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
        let url = self.server_url.clone();
        cleanup_blocking(
            &format!("dropping the database {}", self.name),
            move || async move {
                let mut c = sqlx::MySqlConnection::connect(&url).await?;
                sqlx::query(&sql).execute(&mut c).await?;
                Ok(())
            },
        );
    }
}

/// A Redis key prefix of one test's own: `lab_<ts>_<pid>_<n>:`.
#[derive(Debug)]
pub struct RedisPrefix {
    prefix: String,
    url: String,
}

impl RedisPrefix {
    /// A new prefix on the Redis at `url`. The first one a process makes on
    /// a server also removes the keys of crashed runs ([`sweep_redis`]).
    pub fn new(url: &str) -> RedisPrefix {
        static SWEPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let first = SWEPT
            .lock()
            .map(|mut swept| {
                let first = !swept.iter().any(|u| u == url);
                if first {
                    swept.push(url.to_string());
                }
                first
            })
            .unwrap_or(false);
        if first && let Err(e) = sweep_redis(url) {
            cleanup_failed("sweeping the keys of crashed runs from Redis", &e);
        }
        RedisPrefix {
            prefix: format!("{}:", unique_name()),
            url: url.to_string(),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// `key` inside this test's namespace.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        if let Err(e) = delete_matching(&self.url, &pattern, |_| true) {
            cleanup_failed(&format!("deleting the Redis keys {pattern}"), &e);
        }
    }
}

/// Deletes the keys of ours that crashed runs left, those whose prefix is
/// older than [`STALE_AFTER`], and returns how many. A test that writes a
/// key without a TTL (a fixture, a backdated entry) and is killed before its
/// `RedisPrefix` drops would otherwise leave it on the shared server forever.
pub fn sweep_redis(url: &str) -> anyhow::Result<usize> {
    let now = unix_now();
    delete_matching(url, &format!("{PREFIX}*"), |key| {
        key.split_once(':')
            .is_some_and(|(prefix, _)| is_stale(prefix, now))
    })
}

/// Deletes the keys that match `pattern` and pass `keep`; returns how many.
fn delete_matching(url: &str, pattern: &str, keep: impl Fn(&str) -> bool) -> anyhow::Result<usize> {
    let mut c = cleanup_conn(url)?;
    let keys: Vec<String> = scan(&mut c, pattern)?
        .into_iter()
        .filter(|k| keep(k))
        .collect();
    let mut deleted = 0;
    for batch in keys.chunks(SCAN_COUNT) {
        let n: usize = redis::cmd("DEL")
            .arg(batch)
            .query(&mut c)
            .context("DEL failed")?;
        deleted += n;
    }
    Ok(deleted)
}

/// Every key on the Redis at `url` that matches `pattern`, found with `SCAN`:
/// what a test uses to check that keys are gone.
pub fn keys_matching(url: &str, pattern: &str) -> anyhow::Result<Vec<String>> {
    scan(&mut cleanup_conn(url)?, pattern)
}

/// The sync client, with timeouts: `Drop` cannot await, and a dead Redis
/// must not hang a test's teardown.
fn cleanup_conn(url: &str) -> anyhow::Result<redis::Connection> {
    let client = redis::Client::open(url).context("Invalid Redis URL")?;
    let c = client
        .get_connection_with_timeout(CLEANUP_TIMEOUT)
        .context("Failed to connect to Redis")?;
    c.set_read_timeout(Some(CLEANUP_TIMEOUT))
        .context("Failed to set a read timeout")?;
    c.set_write_timeout(Some(CLEANUP_TIMEOUT))
        .context("Failed to set a write timeout")?;
    Ok(c)
}

/// `SCAN`, never `KEYS`: `KEYS` walks the whole keyspace in one command,
/// and Redis runs one command at a time, so on a shared server holding
/// millions of keys every other client waits for it. `SCAN` walks it a page
/// at a time, and others' commands run between the pages.
fn scan(c: &mut redis::Connection, pattern: &str) -> anyhow::Result<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query(c)
            .context("SCAN failed")?;
        all.extend(keys);
        if next == 0 {
            // SCAN may return a key twice (when the table grows mid-scan).
            all.sort();
            all.dedup();
            return Ok(all);
        }
        cursor = next;
    }
}

/// Makes a cleanup failure visible, without failing the test: a test's
/// verdict must not depend on its teardown, but a teardown that silently
/// leaves schemas and keys behind fills the shared servers.
///
/// Written to the process's stderr directly, like `lab::spawn`'s SKIPPED
/// line: libtest captures `eprintln!` and the logs of a passing test and
/// shows nothing, so a logged failure was never seen.
fn cleanup_failed(what: &str, e: &anyhow::Error) {
    tracing::warn!("test cleanup failed: {what}: {e:#}");
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("\nCLEANUP FAILED in {test}: {what}: {e:#}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Runs async cleanup to completion from `Drop`, on a thread of its own so it
/// works inside and outside a Tokio runtime. Cleanup failures are reported
/// ([`cleanup_failed`]), not raised.
fn cleanup_blocking<F, Fut>(what: &str, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let joined = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            tokio::time::timeout(CLEANUP_TIMEOUT, f())
                .await
                .map_err(|_| anyhow::anyhow!("timed out"))?
        })
    })
    .join();
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(e)) => cleanup_failed(what, &e),
        Err(_) => cleanup_failed(what, &anyhow::anyhow!("the cleanup thread panicked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_names_of_ours_are_stale() {
        let now = 1_800_000_000;
        assert!(is_stale(&format!("lab_{}_1_0", now - 7 * 3600), now));
        assert!(!is_stale(&format!("lab_{}_1_0", now - 60), now));
        assert!(!is_stale("public", now));
        assert!(!is_stale("lab_notatime_1", now));
        assert!(unique_name().starts_with(PREFIX));
        assert_ne!(unique_name(), unique_name());
    }
}
