//! The lost invalidation: a write committed, and Redis never heard (it was
//! down, or the writer stopped after its COMMIT). The outbox row the
//! trigger wrote in the same transaction makes the relay invalidate once
//! Redis answers; without the relay, the old value lives for the whole TTL.

mod common;

use std::time::Duration;

use common::{Lab, eventually, get, name, put};
use lab::Kind;
use lab::spawn::{Instance as Server, SpawnOptions};
use lesson_08_layers::db;
use lesson_08_layers::hooks::{Hooks, Pause};
use lesson_08_layers::metrics::RELAYED;

const LIMIT: Duration = Duration::from_secs(30);

/// A private Redis that writes every change to its append-only file, so a
/// restart brings back exactly what it held: the old value included.
async fn durable_redis() -> Option<Server> {
    if !lab::spawn::can_spawn(Kind::Redis, "lesson 8's lost invalidation") {
        return None;
    }
    let opts = SpawnOptions::with_settings([("appendonly", "yes"), ("appendfsync", "always")]);
    Some(
        Server::start_new(Kind::Redis, opts)
            .await
            .expect("a private Redis"),
    )
}

#[tokio::test]
async fn a_write_while_redis_is_down_is_relayed_when_it_is_back() {
    for relay in [true, false] {
        let Some(mut redis) = durable_redis().await else {
            return;
        };
        let lab = Lab::with_redis_url(&redis.url()).await;
        let mut settings = lab.settings();
        settings.relay = relay;
        let a = lab.instance(settings, Hooks::default()).await;
        get(&a, 60).await;
        assert_eq!(lab.stored(60).await.0, Some(1));

        redis.stop().await.expect("stop Redis");
        let written = put(&a, 60, "Ada").await;
        assert_eq!(written.status, 200, "{}", written.body);
        assert_eq!(
            written.header("x-invalidation"),
            "queued",
            "a write Redis did not hear must say so"
        );
        assert_eq!(db::outbox_len(&a.state.pool).await.expect("outbox"), 1);
        redis.start().await.expect("start Redis");
        // The hole: Redis is back with what it had, version 1.
        let (version, _) = lab.stored(60).await;
        assert!(
            version.is_some(),
            "the restarted Redis lost its data: no hole to show"
        );

        if relay {
            eventually(LIMIT, "the relay never invalidated", || async {
                a.state.metrics.value(RELAYED) >= 1
            })
            .await;
            assert_eq!(lab.stored(60).await.0, Some(2), "Redis still has version 1");
            assert_eq!(db::outbox_len(&a.state.pool).await.expect("outbox"), 0);
            let b = lab.instance(lab.settings(), Hooks::default()).await;
            assert_eq!(name(&get(&b, 60).await), "Ada");
        } else {
            // Without the relay, nothing will ever fix it before the TTL:
            // several relay periods later, Redis still serves version 1.
            tokio::time::sleep(a.state.settings.outbox_every * 5).await;
            assert_eq!(lab.stored(60).await.0, Some(1));
            let mut settings = lab.settings();
            settings.relay = false;
            let b = lab.instance(settings, Hooks::default()).await;
            assert_eq!(
                name(&get(&b, 60).await),
                "User 60",
                "the hole, without the outbox"
            );
        }
    }
}

#[tokio::test]
async fn a_put_cancelled_after_its_commit_still_invalidates() {
    let lab = Lab::new().await;
    let pause = Pause::new();
    let hooks = Hooks {
        after_commit: Some(pause.clone()),
        ..Hooks::default()
    };
    // No relay: the write's own task must do it (the relay would cover
    // for it within a second, and hide a handler that stops half way).
    let mut settings = lab.settings();
    settings.relay = false;
    let a = lab.instance(settings, hooks).await;
    get(&a, 61).await;
    let router = a.router();
    let request = tokio::spawn(async move {
        let body = r#"{"name":"Ada","email":"ada@example.com"}"#;
        lab::testing::call(router, "PUT", "/users/61", Some(body)).await
    });
    pause.reached().await;
    // The client hangs up after the COMMIT, before the invalidation.
    request.abort();
    assert!(request.await.is_err_and(|e| e.is_cancelled()));
    pause.release();
    eventually(
        LIMIT,
        "the cancelled PUT never invalidated Redis",
        || async { lab.stored(61).await.0 == Some(2) },
    )
    .await;
    assert_eq!(name(&get(&a, 61).await), "Ada");
}
