//! The read path through three layers, the writer's own view, and the
//! bound on L1. Counts and values, never timings.

mod common;

use std::time::Duration;

use common::{Lab, eventually, get, name, put};
use lesson_08_layers::Invalidation;
use lesson_08_layers::hooks::Hooks;
use lesson_08_layers::metrics::{DB_QUERIES, L1_HITS, L2_HITS};

#[tokio::test]
async fn a_read_fills_both_layers_and_the_next_ones_hit_them() {
    let lab = Lab::new().await;
    // TTL only: no subscription whose first flush could empty L1 between
    // the reads below.
    let mut settings = lab.settings();
    settings.invalidation = Invalidation::Ttl;
    let a = lab.instance(settings.clone(), Hooks::default()).await;
    let first = get(&a, 7).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-cache"), "MISS");
    assert_eq!(name(&first), "User 7");
    assert_eq!(
        lab.stored(7).await,
        (Some(1), Some(first.body.clone())),
        "a miss stores {{v: the row's version, json: the body}} in Redis"
    );
    let second = get(&a, 7).await;
    assert_eq!(second.header("x-cache"), "L1", "the second read is L1's");
    assert_eq!(second.body, first.body);

    // Another instance has its own, empty L1: Redis answers it.
    let b = lab.instance(settings, Hooks::default()).await;
    let from_b = get(&b, 7).await;
    assert_eq!(from_b.header("x-cache"), "L2");
    assert_eq!(from_b.body, first.body);
    assert_eq!(get(&b, 7).await.header("x-cache"), "L1");
    assert_eq!(a.state.metrics.value(DB_QUERIES), 1);
    assert_eq!(
        b.state.metrics.value(DB_QUERIES),
        0,
        "B never asked the database"
    );
    assert_eq!(a.state.metrics.value(L1_HITS), 1);
    assert_eq!(b.state.metrics.value(L2_HITS), 1);
}

#[tokio::test]
async fn bad_ids_are_400s_and_unknown_ids_404s() {
    let lab = Lab::new().await;
    let a = lab.instance(lab.settings(), Hooks::default()).await;
    for bad in ["abc", "-1", "0", "99999999999999999999999"] {
        let r = lab::testing::call(a.router(), "GET", &format!("/users/{bad}"), None).await;
        assert_eq!(r.status, 400, "/users/{bad}: {}", r.body);
        assert!(
            r.json()["error"].is_string(),
            "a JSON error body: {}",
            r.body
        );
    }
    let r = get(&a, 123_456).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = lab::testing::call(a.router(), "PUT", "/users/7", Some("{\"name\":1}")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        name(&get(&a, 7).await),
        "User 7",
        "a refused PUT changed nothing"
    );
}

#[tokio::test]
async fn the_writer_reads_its_own_write_at_once() {
    let lab = Lab::new().await;
    // Not with tracking: there L1 is redis-rs's, and only Redis's push
    // clears the writer's own copy, a moment later (no promise).
    for invalidation in [
        Invalidation::Ttl,
        Invalidation::PubSub,
        Invalidation::Notify,
    ] {
        let mut settings = lab.settings();
        settings.invalidation = invalidation;
        let a = lab.instance(settings, Hooks::default()).await;
        let id = 10 + invalidation as i64;
        get(&a, id).await;
        assert_eq!(get(&a, id).await.status, 200);
        let written = put(&a, id, "Ada").await;
        assert_eq!(written.status, 200, "{}", written.body);
        assert_eq!(written.header("x-invalidation"), "done");
        assert_eq!(
            name(&get(&a, id).await),
            "Ada",
            "{invalidation:?}: A read its old copy"
        );
    }
}

#[tokio::test]
async fn l1_holds_no_more_entries_than_its_capacity() {
    let lab = Lab::new().await;
    let mut settings = lab.settings();
    settings.l1_capacity = 10;
    let a = lab.instance(settings, Hooks::default()).await;
    for id in 1..=common::USERS {
        assert_eq!(get(&a, id).await.status, 200);
    }
    let held = a.state.l1.len();
    assert!(
        (1..=10).contains(&held),
        "{held} entries in an L1 of capacity 10"
    );
}

#[tokio::test]
async fn a_write_that_bypasses_the_service_reaches_redis_through_the_outbox() {
    let lab = Lab::new().await;
    let a = lab.instance(lab.settings(), Hooks::default()).await;
    get(&a, 5).await;
    assert_eq!(lab.stored(5).await.0, Some(1));
    // A migration, psql, lesson 2's PUT: the trigger records it all the same.
    sqlx::query("UPDATE users SET name = 'Grace' WHERE id = 5")
        .execute(lab.schema.pool())
        .await
        .expect("UPDATE");
    eventually(
        Duration::from_secs(20),
        "the relay never invalidated Redis after an UPDATE from outside the service",
        || async { lab.stored(5).await.0 == Some(2) },
    )
    .await;
    let b = lab.instance(lab.settings(), Hooks::default()).await;
    assert_eq!(name(&get(&b, 5).await), "Grace");
}
