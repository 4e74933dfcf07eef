//! The background tasks of an instance: the subscription that keeps its
//! L1 honest, and the outbox relay that keeps Redis honest.
//!
//! A message sent while a subscriber is disconnected is gone: Redis pub/sub
//! keeps nothing for absent subscribers, and PostgreSQL delivers a `NOTIFY`
//! only to sessions listening at the moment of the commit. So the one rule
//! of both loops: **whenever the subscription was down, L1 is dropped**,
//! after subscribing again (dropping it first would let an entry cached in
//! between outlive a message sent in between).

use std::time::Duration;

use futures_util::StreamExt;
use lab::log::Throttle;
use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::{AppState, store};

/// First wait before resubscribing; doubled per failure, up to [`BACKOFF_MAX`].
const BACKOFF: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Background tasks, aborted when the instance is dropped.
#[derive(Debug, Default)]
pub struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    pub fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// `"42:7"` → `(42, 7)`: user 42 is now at version 7.
pub fn parse_message(payload: &str) -> Option<(i64, i64)> {
    let (id, version) = payload.split_once(':')?;
    Some((id.parse().ok()?, version.parse().ok()?))
}

fn on_message(state: &AppState, payload: &str) {
    static BAD: Throttle = Throttle::new(WARN_EVERY);
    match parse_message(payload) {
        Some((id, version)) => {
            state.metrics.invalidation();
            state.l1.invalidate(id, version);
        }
        None => BAD.warn(format_args!(
            "ignoring an invalidation message that is not id:version: {}",
            lab::http::shown(payload)
        )),
    }
}

/// The subscription lost (or never made): L1 may hold what a missed message
/// would have removed.
fn flush(state: &AppState) {
    state.l1.clear();
    state.metrics.l1_flush();
}

// ANCHOR: pubsub
/// Redis pub/sub: subscribe to the prefix's channel, evict on each message,
/// and flush L1 every time the subscription is (re)made.
pub async fn pubsub(state: AppState, redis_url: String) {
    static DOWN: Throttle = Throttle::new(WARN_EVERY);
    let channel = store::channel(&state.settings.key_prefix);
    let mut backoff = BACKOFF;
    loop {
        let subscribed = async {
            let client = redis::Client::open(redis_url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            anyhow::Ok(pubsub)
        };
        match tokio::time::timeout(state.settings.redis_timeout * 20, subscribed).await {
            Ok(Ok(mut pubsub)) => {
                backoff = BACKOFF;
                flush(&state);
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    if let Ok(payload) = msg.get_payload::<String>() {
                        on_message(&state, &payload);
                    }
                }
                // The stream ends when the connection does.
                DOWN.warn(format_args!(
                    "lost the Redis invalidation channel: L1 dropped"
                ));
                flush(&state);
            }
            Ok(Err(e)) => DOWN.warn(format_args!("cannot subscribe to Redis: {e:#}")),
            Err(_) => DOWN.warn(format_args!("subscribing to Redis timed out")),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
// ANCHOR_END: pubsub

// ANCHOR: notify
/// PostgreSQL `LISTEN`: the trigger's `pg_notify` at each commit, from any
/// writer. The same rule: flush L1 whenever the listening session is new.
pub async fn notify(state: AppState) {
    static DOWN: Throttle = Throttle::new(WARN_EVERY);
    let channel = crate::db::channel(&state.settings.schema);
    let mut backoff = BACKOFF;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&state.pool).await?;
            listener.listen(&channel).await?;
            anyhow::Ok(listener)
        };
        match tokio::time::timeout(state.settings.db_timeout, listening).await {
            Ok(Ok(mut listener)) => {
                backoff = BACKOFF;
                flush(&state);
                loop {
                    // `try_recv` is `Ok(None)` when the session was lost,
                    // and sqlx would reconnect silently on the next call:
                    // we reconnect ourselves, to flush L1 first.
                    match listener.try_recv().await {
                        Ok(Some(n)) => on_message(&state, n.payload()),
                        Ok(None) => break,
                        Err(e) => {
                            DOWN.warn(format_args!("the LISTEN session failed: {e:#}"));
                            break;
                        }
                    }
                }
                DOWN.warn(format_args!(
                    "lost the PostgreSQL LISTEN session: L1 dropped"
                ));
                flush(&state);
            }
            Ok(Err(e)) => DOWN.warn(format_args!("cannot LISTEN on PostgreSQL: {e:#}")),
            Err(_) => DOWN.warn(format_args!("LISTEN on PostgreSQL timed out")),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
// ANCHOR_END: notify

// ANCHOR: relay
/// The outbox relay: every `outbox_every`, the changes whose writer did not
/// confirm within `outbox_grace` (its invalidation failed, it was cut
/// short, or its process died) are invalidated again, with a tombstone of
/// their version. Every instance runs one; they may overlap, and that is
/// harmless: invalidating twice costs a miss, never a stale value.
pub async fn relay(state: AppState) {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut tick = tokio::time::interval(state.settings.outbox_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = crate::db::outbox_due(&state.pool, state.settings.outbox_grace, 100);
        let due = match tokio::time::timeout(state.settings.db_timeout, due).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                FAILED.warn(format_args!("the outbox relay cannot read: {e:#}"));
                continue;
            }
            Err(_) => continue,
        };
        for (id, version) in due {
            if !store::invalidate(&state, id, &store::tombstone(version)).await {
                // Redis is still failing; the row stays for the next tick.
                break;
            }
            state.l1.invalidate(id, version);
            match crate::db::outbox_done(&state.pool, id, version).await {
                Ok(()) => state.metrics.relayed(),
                Err(e) => FAILED.warn(format_args!("the outbox relay cannot delete: {e:#}")),
            }
        }
    }
}
// ANCHOR_END: relay
