//! A write on instance A reaches instance B's L1: by pub/sub, by NOTIFY, by
//! Redis's client tracking, and (the control) not at all with TTL only.
//! And when B's subscription is cut, B drops L1 rather than trust it.

mod common;

use std::time::Duration;

use common::{Lab, eventually, get, name, put};
use lab::faults::Fault;
use lesson_08_layers::hooks::Hooks;
use lesson_08_layers::metrics::{INVALIDATIONS, L1_FLUSHES};
use lesson_08_layers::{Instance, Invalidation};

const LIMIT: Duration = Duration::from_secs(20);

/// Waits until B's subscription is up (its first flush happens once it has
/// subscribed): a write before that would be missed by design.
async fn subscribed(b: &Instance) {
    eventually(LIMIT, "B never subscribed", || async {
        b.state.metrics.value(L1_FLUSHES) >= 1
    })
    .await;
}

#[tokio::test]
async fn a_write_on_a_evicts_b_once_the_message_arrived() {
    let lab = Lab::new().await;
    for (i, invalidation) in [Invalidation::PubSub, Invalidation::Notify]
        .into_iter()
        .enumerate()
    {
        let id = 20 + i as i64;
        let mut settings = lab.settings();
        settings.invalidation = invalidation;
        let a = lab.instance(settings.clone(), Hooks::default()).await;
        let b = lab.instance(settings, Hooks::default()).await;
        subscribed(&b).await;
        get(&b, id).await;
        assert_eq!(
            get(&b, id).await.header("x-cache"),
            "L1",
            "{invalidation:?}"
        );

        assert_eq!(put(&a, id, "Ada").await.status, 200);
        eventually(
            LIMIT,
            &format!("{invalidation:?}: B heard nothing"),
            || async { b.state.metrics.value(INVALIDATIONS) >= 1 },
        )
        .await;
        let read = get(&b, id).await;
        assert_eq!(
            name(&read),
            "Ada",
            "{invalidation:?}: B served its old copy"
        );
    }
}

#[tokio::test]
async fn with_ttl_only_b_serves_its_old_copy() {
    // The control: without a message, nothing evicts B's copy (L1's TTL in
    // the tests is 60 s), so the tests above can fail.
    let lab = Lab::new().await;
    let mut settings = lab.settings();
    settings.invalidation = Invalidation::Ttl;
    let a = lab.instance(settings.clone(), Hooks::default()).await;
    let b = lab.instance(settings, Hooks::default()).await;
    get(&b, 30).await;
    assert_eq!(put(&a, 30, "Ada").await.status, 200);
    let read = get(&b, 30).await;
    assert_eq!(read.header("x-cache"), "L1");
    assert_eq!(name(&read), "User 30", "TTL only, yet B's copy changed");
    assert_eq!(name(&get(&a, 30).await), "Ada");
}

#[tokio::test]
async fn with_client_tracking_redis_invalidates_b() {
    let lab = Lab::new().await;
    let mut settings = lab.settings();
    settings.invalidation = Invalidation::Tracking;
    let a = lab.instance(settings.clone(), Hooks::default()).await;
    let b = lab.instance(settings, Hooks::default()).await;
    get(&b, 31).await;
    get(&b, 31).await;
    let stats = || {
        b.state
            .reads
            .get_cache_statistics()
            .expect("tracking is on")
    };
    // The fill's own SET invalidates what B read before it, and that push
    // can arrive after the next reply (through Docker's port proxy it did,
    // one run in two): read until one read is served from the client-side
    // cache, within the bound.
    eventually(
        LIMIT,
        "B's reads were never served by its client-side cache",
        || async {
            let hits = stats().hit;
            get(&b, 31).await;
            stats().hit > hits
        },
    )
    .await;

    let told = stats().invalidate;
    assert_eq!(put(&a, 31, "Ada").await.status, 200);
    eventually(LIMIT, "Redis never told B", || async {
        stats().invalidate > told
    })
    .await;
    assert_eq!(name(&get(&b, 31).await), "Ada", "B served its old copy");
}

#[tokio::test]
async fn a_lost_subscription_drops_l1_and_no_stale_read_survives_it() {
    let lab = Lab::new().await;
    for (i, invalidation) in [
        Invalidation::PubSub,
        Invalidation::Notify,
        Invalidation::Tracking,
    ]
    .into_iter()
    .enumerate()
    {
        let id = 40 + i as i64;
        let mut settings = lab.settings();
        settings.invalidation = invalidation;
        let a = lab.instance(settings.clone(), Hooks::default()).await;
        let (b, proxies) = lab.proxied_instance(settings).await;
        if invalidation != Invalidation::Tracking {
            subscribed(&b).await;
        }
        get(&b, id).await;
        assert_eq!(name(&get(&b, id).await), format!("User {id}"));
        let flushes = b.state.metrics.value(L1_FLUSHES);

        // Cut every connection of B's and keep it from reconnecting, so
        // that the write's message cannot reach it: lost, not late.
        for p in [&proxies.pg, &proxies.redis] {
            p.set(Fault::RefuseNew);
            p.reset_all();
        }
        assert_eq!(put(&a, id, "Ada").await.status, 200);
        for p in [&proxies.pg, &proxies.redis] {
            p.set(Fault::None);
        }
        if invalidation != Invalidation::Tracking {
            eventually(
                LIMIT,
                &format!("{invalidation:?}: B never resubscribed"),
                || async {
                    // One flush when the loss is seen, one once subscribed again.
                    b.state.metrics.value(L1_FLUSHES) >= flushes + 2
                },
            )
            .await;
        }
        // Whatever B answers now, from any layer, is the new value.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let r = get(&b, id).await;
            seen.push((r.status.as_u16(), r.header("x-cache").to_string(), name(&r)));
        }
        assert!(
            seen.iter()
                .all(|(status, _, n)| *status == 200 && n == "Ada"),
            "{invalidation:?}: after a lost subscription B answered {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_silently_dead_subscription_is_noticed_and_l1_dropped() {
    // A blackholed connection never errors and never closes: only the
    // heartbeat can tell. B must notice and drop L1 on its own.
    let lab = Lab::new().await;
    for invalidation in [Invalidation::PubSub, Invalidation::Notify] {
        let mut settings = lab.settings();
        settings.invalidation = invalidation;
        // The heartbeat's query waits up to this long for an answer.
        settings.db_timeout = Duration::from_secs(2);
        let (b, proxies) = lab.proxied_instance(settings).await;
        subscribed(&b).await;
        let flushes = b.state.metrics.value(L1_FLUSHES);
        for p in [&proxies.pg, &proxies.redis] {
            p.set(Fault::Blackhole);
        }
        eventually(
            LIMIT,
            &format!("{invalidation:?}: a dead subscription went unnoticed"),
            || async { b.state.metrics.value(L1_FLUSHES) > flushes },
        )
        .await;
    }
}
