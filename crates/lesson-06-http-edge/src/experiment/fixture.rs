//! What every experiment stands on: PostgreSQL in a schema of the run's
//! own, origins started on demand, edges around them, and a client that
//! reads what the edge says it did (`X-Cache-Status`).
//!
//! Each experiment gets its own origin (so its counts are its own) and its
//! own nginx (so its cache starts empty): nothing one experiment leaves
//! behind can change what the next one measures.

use std::time::{Duration, Instant};

use anyhow::Context;
use lab::edge::Nginx;
use lab::http::Running;
use lab::isolate::PgSchema;
use sqlx::PgPool;

use crate::edge::EdgeConfig;
use crate::origin::{OriginHandle, OriginSettings, origin};

/// Users in the run's table: enough distinct keys, seeded in a second.
pub const USERS: i64 = 300;
/// Every request's limit: far above any latency here, so a timeout is a bug.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// PostgreSQL with a seeded schema of this run's own (dropped at the end).
#[derive(Debug)]
pub struct Fixture {
    pub pool: PgPool,
    // Dropped after the pool's users: the schema, then the server.
    _schema: PgSchema,
    _server: lab::Server,
}

impl Fixture {
    /// `connections`: the most queries that may wait in `pg_sleep` at once;
    /// the collapse experiment sends N cold requests and needs N of them.
    pub async fn new(connections: u32) -> anyhow::Result<Fixture> {
        let server = lab::discover(lab::Kind::Postgres).await?;
        let schema = PgSchema::create(server.url()).await?;
        let pool = lab::isolate::schema_pool(server.url(), schema.name(), connections).await?;
        lab::seed::ensure_users_pg(&pool, USERS).await?;
        Ok(Fixture {
            pool,
            _schema: schema,
            _server: server,
        })
    }

    /// An origin with these settings on a free port.
    pub async fn origin(&self, settings: OriginSettings) -> anyhow::Result<Origin> {
        let (router, handle) = origin(self.pool.clone(), settings)?;
        let running = lab::http::spawn_server(router, 0).await?;
        Ok(Origin {
            handle,
            port: running.addr.port(),
            running: Some(running),
        })
    }
}

/// A running (or killed) origin.
#[derive(Debug)]
pub struct Origin {
    pub handle: OriginHandle,
    running: Option<Running>,
    port: u16,
}

impl Origin {
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// An edge in front of this origin, from the chapter's config changed by `tweak`.
    pub async fn edge(&self, tweak: impl FnOnce(&mut EdgeConfig)) -> anyhow::Result<Nginx> {
        let mut config = EdgeConfig::new(self.addr());
        tweak(&mut config);
        config.spawn(None).await
    }

    /// The outage that is not a 500: the port stops answering (connection
    /// refused), as when the process has died.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.shutdown().await.context("Failed to stop the origin")?;
        }
        Ok(())
    }
}

/// The client every experiment uses: a timeout on every request.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .context("Failed to build the HTTP client")
}

/// One answer from the edge, as the experiments record it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub status: u16,
    /// `X-Cache-Status`: HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED, or "-".
    pub cache: String,
    pub bytes: usize,
    pub took: Duration,
}

/// GETs `url` (with extra headers) and reads the whole body. A transport
/// error is an answer too (status 0): the experiments count them.
pub async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Hit {
    let t0 = Instant::now();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let cache = resp
                .headers()
                .get("x-cache-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            let bytes = resp.bytes().await.map_or(0, |b| b.len());
            Hit {
                status,
                cache,
                bytes,
                took: t0.elapsed(),
            }
        }
        Err(_) => Hit {
            status: 0,
            cache: "-".into(),
            bytes: 0,
            took: t0.elapsed(),
        },
    }
}

pub use lab::units::quantile_ms;

/// "MISS×1, HIT×19": each cache status with how often it was seen, in
/// first-seen order.
pub fn tally<'a>(statuses: impl IntoIterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in statuses {
        match out.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => out.push((s.to_string(), 1)),
        }
    }
    out
}

/// "1 origin request", "20 origin requests": a count with its noun.
pub fn counted(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `tally`'s output as text.
pub fn tally_text(t: &[(String, usize)]) -> String {
    t.iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_their_plural_and_tallies_keep_first_seen_order() {
        assert_eq!(counted(1, "origin request"), "1 origin request");
        assert_eq!(counted(20, "origin request"), "20 origin requests");
        assert_eq!(counted(0, "answer"), "0 answers");
        let t = tally(["MISS", "HIT", "HIT"]);
        assert_eq!(tally_text(&t), "MISS×1, HIT×2");
    }
}
