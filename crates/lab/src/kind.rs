//! The servers the workshop uses, and the two questions the harness asks
//! of any of them: does it answer ([`ping`]), and which version is it
//! ([`server_version`]).
//!
//! It lives apart from [`discover`](crate::discover) (which finds a server)
//! and [`spawn`](crate::spawn) (which starts one), because both need it and
//! neither should need the other to name a server.

use std::fmt;
use std::time::Duration;

use sqlx::Connection;

/// How long a probe of one server may take. A server on loopback answers in
/// milliseconds; anything slower is not one we want to teach against.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The servers the workshop uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Postgres,
    Redis,
    MySql,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Postgres, Kind::Redis, Kind::MySql];

    /// The env var that names a server to use, checked first.
    pub fn env_var(self) -> &'static str {
        match self {
            Kind::Postgres => "DATABASE_URL",
            Kind::Redis => "REDIS_URL",
            Kind::MySql => "MYSQL_URL",
        }
    }

    /// The URL of a server on the default local port, as the workshop's
    /// machines and `docker-compose.yml` run it: trust auth for PostgreSQL,
    /// root with an empty password for MariaDB, database `test` in both.
    pub fn default_url(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Kind::Redis => "redis://127.0.0.1:6379",
            Kind::MySql => "mysql://root@127.0.0.1:3306/test",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Kind::Postgres => 5432,
            Kind::Redis => 6379,
            Kind::MySql => 3306,
        }
    }

    /// The name a reader knows the server by.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "PostgreSQL",
            Kind::Redis => "Redis",
            Kind::MySql => "MariaDB",
        }
    }

    /// How to install the server binaries, for error messages.
    pub fn install_hint(self) -> &'static str {
        match self {
            Kind::Postgres => "apt-get install postgresql (macOS: brew install postgresql@17)",
            Kind::Redis => "apt-get install redis-server (macOS: brew install redis)",
            Kind::MySql => "apt-get install mariadb-server (macOS: brew install mariadb)",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Connects once and runs a trivial command, within [`PROBE_TIMEOUT`].
pub async fn ping(kind: Kind, url: &str) -> anyhow::Result<()> {
    tokio::time::timeout(PROBE_TIMEOUT, ping_inner(kind, url))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {PROBE_TIMEOUT:?}"))?
}

async fn ping_inner(kind: Kind, url: &str) -> anyhow::Result<()> {
    match kind {
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query("SELECT 1").execute(&mut c).await?;
            c.close().await?;
        }
        Kind::MySql => {
            let mut c = sqlx::MySqlConnection::connect(url).await?;
            sqlx::query("SELECT 1").execute(&mut c).await?;
            c.close().await?;
        }
        Kind::Redis => {
            let client = redis::Client::open(url)?;
            let mut c = client.get_multiplexed_async_connection().await?;
            let _: String = redis::cmd("PING").query_async(&mut c).await?;
        }
    }
    Ok(())
}

/// The server's version string, for `just doctor` and the book's stamps.
pub async fn server_version(kind: Kind, url: &str) -> anyhow::Result<String> {
    let fut = async {
        Ok::<_, anyhow::Error>(match kind {
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await?;
                let (v,): (String,) = sqlx::query_as("SHOW server_version")
                    .fetch_one(&mut c)
                    .await?;
                format!("PostgreSQL {v}")
            }
            Kind::MySql => {
                let mut c = sqlx::MySqlConnection::connect(url).await?;
                let (v,): (String,) = sqlx::query_as("SELECT VERSION()").fetch_one(&mut c).await?;
                format!("MariaDB/MySQL {v}")
            }
            Kind::Redis => {
                let client = redis::Client::open(url)?;
                let mut c = client.get_multiplexed_async_connection().await?;
                let info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
                let v = info
                    .lines()
                    .find_map(|l| l.strip_prefix("redis_version:"))
                    .unwrap_or("unknown")
                    .trim()
                    .to_string();
                format!("Redis {v}")
            }
        })
    };
    tokio::time::timeout(PROBE_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {PROBE_TIMEOUT:?}"))?
}
