//! What lesson 2's test files share.

use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use lab::testing::SharedServers;
use lesson_02_cache_aside::{AppState, Settings, state};

/// A Redis of the test's own, which it may stop or pause, and lesson 2's
/// state over it and the shared PostgreSQL schema. No key prefix: nobody
/// else uses this Redis.
pub async fn with_private_redis(s: &SharedServers) -> (Instance, AppState) {
    let redis = Instance::start_new(Kind::Redis, SpawnOptions::default())
        .await
        .expect("a private Redis");
    let state = state(
        s.schema.pool().clone(),
        &redis.url(),
        Settings::for_tests(""),
    )
    .expect("state");
    (redis, state)
}
