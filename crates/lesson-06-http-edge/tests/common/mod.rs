//! What lesson 6's test files share: a PostgreSQL schema of the test's own,
//! seeded with users, and the origin over it.

use std::time::Duration;

use axum::Router;
use lab::Kind;
use lab::isolate::PgSchema;
use lesson_06_http_edge::origin::{OriginHandle, OriginSettings, origin};

/// Users seeded in every test's schema: ids 1..=100.
pub const USERS: i64 = 100;

/// A schema of the test's own on the shared PostgreSQL (or on a private
/// one, with `LAB_BACKEND=local`), dropped when the test ends.
pub struct Db {
    // Fields drop in order: the schema goes while its server still runs.
    _schema: PgSchema,
    pub pool: sqlx::PgPool,
    _pg: lab::Server,
}

impl Db {
    /// `connections`: the pool's size. The edge tests send 20 requests at
    /// once to a slow origin; with the schema's default 5 connections, 15
    /// of them would queue in the pool (they would still be counted, but
    /// the tests should not depend on that).
    pub async fn new(connections: u32) -> Db {
        lab::init_tracing();
        let pg = lab::discover(Kind::Postgres).await.expect("a PostgreSQL");
        let schema = PgSchema::create(pg.url()).await.expect("a test schema");
        lab::seed::ensure_users_pg(schema.pool(), USERS)
            .await
            .expect("seeded users");
        let pool = lab::isolate::schema_pool(pg.url(), schema.name(), connections)
            .await
            .expect("a pool on the test schema");
        Db {
            _schema: schema,
            pool,
            _pg: pg,
        }
    }

    /// The origin's router and handle over this schema.
    pub fn origin(&self, settings: OriginSettings) -> (Router, OriginHandle) {
        origin(self.pool.clone(), settings).expect("the origin")
    }
}

/// The origin's settings with this query latency (0 for speed).
pub fn settings(latency: Duration) -> OriginSettings {
    OriginSettings {
        latency,
        ..OriginSettings::default()
    }
}
