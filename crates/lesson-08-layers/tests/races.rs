//! The stale-set race, replayed in order with a pause point rather than
//! sleeps: a reader misses and reads version 1; a writer commits version 2
//! and invalidates; then the reader fills. Lesson 2's fill puts version 1
//! back for the whole TTL; the versioned fill and the lease both refuse it.

mod common;

use std::time::Duration;

use common::{Lab, get, name, put};
use lesson_08_layers::hooks::{Hooks, Pause};
use lesson_08_layers::metrics::{FILLS_REFUSED, INVALIDATIONS, L1_FLUSHES};
use lesson_08_layers::{Fill, Invalidation};

/// Replays the race with `fill` and returns what Redis holds afterwards
/// (the version and the name in its JSON), and the refused fills.
async fn race(lab: &Lab, fill: Fill, id: i64) -> (Option<i64>, Option<String>, u64) {
    let mut settings = lab.settings();
    settings.fill = fill;
    let pause = Pause::new();
    let hooks = Hooks {
        before_fill: Some(pause.clone()),
        ..Hooks::default()
    };
    let reader = lab.instance(settings.clone(), hooks).await;
    let writer = lab.instance(settings, Hooks::default()).await;
    // Warm the writer's Redis connection and scripts (another user), so
    // that its invalidation below is not its first call on a cold
    // connection, under a 200 ms budget on a busy machine.
    assert_eq!(get(&writer, id + 1000).await.status, 404);
    assert_eq!(get(&writer, 1).await.status, 200);

    let router = reader.router();
    let read = tokio::spawn(async move {
        lab::testing::call(router, "GET", &format!("/users/{id}"), None).await
    });
    tokio::time::timeout(Duration::from_secs(20), pause.reached())
        .await
        .expect("the reader never reached its fill");
    // The reader holds version 1 and has not filled yet.
    let written = put(&writer, id, "Ada").await;
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(
        written.header("x-invalidation"),
        "done",
        "the writer could not reach Redis: no race to replay"
    );
    pause.release();
    let read = read.await.expect("the reader");
    assert_eq!(
        name(&read),
        format!("User {id}"),
        "the reader read before the write"
    );

    let (version, json) = lab.stored(id).await;
    let stored_name = json.map(|j| {
        serde_json::from_str::<serde_json::Value>(&j).expect("JSON")["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    (
        version,
        stored_name,
        reader.state.metrics.value(FILLS_REFUSED),
    )
}

#[tokio::test]
async fn the_naive_fill_puts_the_old_value_back() {
    let lab = Lab::new().await;
    let (version, stored, refused) = race(&lab, Fill::Naive, 50).await;
    assert_eq!(
        (version, stored.as_deref()),
        (Some(1), Some("User 50")),
        "the race did not happen: the naive fill should have stored version 1 after the write"
    );
    assert_eq!(refused, 0);
    // And every instance that starts now serves the old name from Redis.
    let fresh = lab.instance(lab.settings(), Hooks::default()).await;
    let r = get(&fresh, 50).await;
    assert_eq!((r.header("x-cache"), name(&r).as_str()), ("L2", "User 50"));
}

#[tokio::test]
async fn the_versioned_fill_refuses_the_old_value() {
    let lab = Lab::new().await;
    let (version, stored, refused) = race(&lab, Fill::Versioned, 51).await;
    assert_eq!(
        (version, stored.as_deref()),
        (Some(2), Some("Ada")),
        "Redis must keep the writer's version 2"
    );
    assert_eq!(refused, 1, "the reader's fill of version 1 was not refused");
}

#[tokio::test]
async fn the_lease_fill_refuses_the_old_value() {
    let lab = Lab::new().await;
    let (version, stored, refused) = race(&lab, Fill::Lease, 52).await;
    assert_eq!(
        (version, stored),
        (None, None),
        "the writer deleted the entry and the lease: the reader's fill must not land"
    );
    assert_eq!(refused, 1, "the reader's fill was not refused");
    let fresh = lab.instance(lab.settings(), Hooks::default()).await;
    assert_eq!(name(&get(&fresh, 52).await), "Ada");
}

#[tokio::test]
async fn with_leases_a_miss_without_the_lease_does_not_fill() {
    let lab = Lab::new().await;
    let mut settings = lab.settings();
    settings.fill = Fill::Lease;
    let pause = Pause::new();
    let hooks = Hooks {
        before_fill: Some(pause.clone()),
        ..Hooks::default()
    };
    let a = lab.instance(settings, hooks).await;
    // The first miss takes the lease and is held before its fill; the
    // others miss while it holds it.
    let router = a.router();
    let first =
        tokio::spawn(async move { lab::testing::call(router, "GET", "/users/53", None).await });
    pause.reached().await;
    // A second miss: no lease, so it reads the database and fills nothing
    // in Redis (its own L1 it may fill: the value is fresh from the
    // database, and an invalidation would raise the floor first).
    let r = lab::testing::call(a.router(), "GET", "/users/53", None).await;
    assert_eq!((r.status.as_u16(), r.header("x-cache")), (200, "MISS"));
    assert_eq!(
        lab.stored(53).await,
        (None, None),
        "a reader without the lease filled"
    );
    pause.release();
    assert_eq!(first.await.expect("first").status, 200);
    assert_eq!(lab.stored(53).await.0, Some(1), "the lease holder filled");
    assert_eq!(
        a.state.metrics.value(FILLS_REFUSED),
        1,
        "the one without the lease"
    );
}

#[tokio::test]
async fn a_slow_read_on_b_does_not_bring_the_old_value_back_into_its_l1() {
    // The race one layer up: B's read loaded version 1 before A's write,
    // B heard of the write, then B's read finishes. Its fill is refused
    // (Redis has version 2), and it must not land in B's L1 either.
    let lab = Lab::new().await;
    for invalidation in [Invalidation::PubSub, Invalidation::Notify] {
        let id = 54 + invalidation as i64;
        let mut settings = lab.settings();
        settings.invalidation = invalidation;
        let pause = Pause::new();
        let hooks = Hooks {
            before_fill: Some(pause.clone()),
            ..Hooks::default()
        };
        let b = lab.instance(settings.clone(), hooks).await;
        let a = lab.instance(settings, Hooks::default()).await;
        common::eventually(Duration::from_secs(20), "B never subscribed", || async {
            b.state.metrics.value(L1_FLUSHES) >= 1
        })
        .await;
        let router = b.router();
        let read = tokio::spawn(async move {
            lab::testing::call(router, "GET", &format!("/users/{id}"), None).await
        });
        pause.reached().await;
        assert_eq!(put(&a, id, "Ada").await.header("x-invalidation"), "done");
        common::eventually(Duration::from_secs(20), "B heard nothing", || async {
            b.state.metrics.value(INVALIDATIONS) >= 1
        })
        .await;
        pause.release();
        assert_eq!(name(&read.await.expect("read")), format!("User {id}"));
        let next = get(&b, id).await;
        assert_eq!(
            name(&next),
            "Ada",
            "{invalidation:?}: B's slow read put version 1 back into its L1 ({})",
            next.header("x-cache")
        );
    }
}

#[tokio::test]
async fn a_lease_is_given_back_when_the_user_is_not_found() {
    let lab = Lab::new().await;
    let mut settings = lab.settings();
    settings.fill = Fill::Lease;
    let a = lab.instance(settings, Hooks::default()).await;
    assert_eq!(get(&a, 99_999).await.status, 404);
    let mut c = lab.redis().await;
    let lease: Option<String> = redis::cmd("GET")
        .arg(lab.prefix.key("user:99999:lease"))
        .query_async(&mut c)
        .await
        .expect("GET");
    assert_eq!(
        lease, None,
        "a 404 kept its lease: the next miss would be denied"
    );
}
