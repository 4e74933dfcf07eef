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
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::{AppState, store};

/// First wait before resubscribing (see [`Backoff`]).
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
/// and flush L1 every time the subscription is (re)made. A `PING` every
/// [`HEARTBEAT`] proves the connection alive: a connection that died
/// without a word (a blackholed network) would otherwise wait forever,
/// with no message, no error and no flush.
pub async fn pubsub(state: AppState, redis_url: String) {
    static DOWN: Throttle = Throttle::new(WARN_EVERY);
    let channel = store::channel(&state.settings.key_prefix);
    let limit = state.settings.redis_timeout * 20;
    let mut backoff = Backoff::default();
    loop {
        let subscribed = async {
            let client = redis::Client::open(redis_url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            anyhow::Ok(pubsub)
        };
        match tokio::time::timeout(limit, subscribed).await {
            Ok(Ok(pubsub)) => {
                let up = backoff.up();
                flush(&state);
                let (mut sink, mut messages) = pubsub.split();
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                let why = loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(msg) => {
                                if let Ok(payload) = msg.get_payload::<String>() {
                                    on_message(&state, &payload);
                                }
                            }
                            // The stream ends when the connection does.
                            None => break "the connection closed",
                        },
                        _ = heartbeat.tick() => {
                            let ping = sink.ping::<redis::Value>();
                            if !matches!(tokio::time::timeout(limit, ping).await, Ok(Ok(_))) {
                                break "a PING got no answer";
                            }
                        }
                    }
                };
                DOWN.warn(format_args!(
                    "lost the Redis invalidation channel ({why}): L1 dropped"
                ));
                flush(&state);
                backoff.down(up);
            }
            Ok(Err(e)) => DOWN.warn(format_args!("cannot subscribe to Redis: {e:#}")),
            Err(_) => DOWN.warn(format_args!("subscribing to Redis timed out")),
        }
        backoff.wait().await;
    }
}
// ANCHOR_END: pubsub

// ANCHOR: notify
/// PostgreSQL `LISTEN`: the trigger's `pg_notify` at each commit, from any
/// writer. The same rules: flush L1 whenever the listening session is new,
/// and prove it alive with a query every [`HEARTBEAT`].
pub async fn notify(state: AppState) {
    static DOWN: Throttle = Throttle::new(WARN_EVERY);
    let channel = crate::db::channel(&state.settings.schema);
    let limit = state.settings.db_timeout;
    // A connection of its own, outside the service's pool: a listening
    // session is held for good, and taking it from the pool would leave
    // one connection fewer for the requests (none, with a pool of one).
    let options = state.pool.connect_options().as_ref().clone();
    let mut backoff = Backoff::default();
    loop {
        let listening = async {
            let session = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(limit)
                .connect_lazy_with(options.clone());
            let mut listener = PgListener::connect_with(&session).await?;
            // We reconnect ourselves (to flush L1 first), never sqlx.
            listener.eager_reconnect(false);
            listener.listen(&channel).await?;
            anyhow::Ok(listener)
        };
        match tokio::time::timeout(limit, listening).await {
            Ok(Ok(mut listener)) => {
                let up = backoff.up();
                flush(&state);
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                let why = loop {
                    tokio::select! {
                        // `Ok(None)`: the session was lost.
                        n = listener.try_recv() => match n {
                            Ok(Some(n)) => on_message(&state, n.payload()),
                            Ok(None) => break "the session closed".to_string(),
                            Err(e) => break format!("{e:#}"),
                        },
                        _ = heartbeat.tick() => {
                            let ping = sqlx::query("SELECT 1").execute(&mut listener);
                            if !matches!(tokio::time::timeout(limit, ping).await, Ok(Ok(_))) {
                                break "a query got no answer".to_string();
                            }
                        }
                    }
                };
                DOWN.warn(format_args!(
                    "lost the PostgreSQL LISTEN session ({why}): L1 dropped"
                ));
                flush(&state);
                backoff.down(up);
            }
            Ok(Err(e)) => DOWN.warn(format_args!("cannot LISTEN on PostgreSQL: {e:#}")),
            Err(_) => DOWN.warn(format_args!("LISTEN on PostgreSQL timed out")),
        }
        backoff.wait().await;
    }
}
// ANCHOR_END: notify

/// How often a subscription proves its connection alive. Also the bound on
/// how long a silently dead one goes unnoticed (plus the ping's timeout).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The wait before resubscribing: doubled per failure, up to
/// [`BACKOFF_MAX`], and back to [`BACKOFF`] only after a subscription that
/// lasted [`STABLE`]: one that drops the moment it is made (a client
/// killed for its buffer, a flapping proxy) must not loop twenty times a
/// second, each time dropping L1.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

/// A subscription up this long counts as healthy.
const STABLE: Duration = Duration::from_secs(10);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: BACKOFF }
    }
}

impl Backoff {
    fn up(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn down(&mut self, up: std::time::Instant) {
        if up.elapsed() >= STABLE {
            self.next = BACKOFF;
        }
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(BACKOFF_MAX);
    }
}

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
        let mut failures = 0;
        for (id, version) in due {
            if !store::invalidate(&state, id, &store::tombstone(version)).await {
                // The row stays for the next tick. One bad row (a stray
                // key of another type) must not block the others; three
                // failures in a tick mean Redis is failing: wait.
                failures += 1;
                if failures >= 3 {
                    break;
                }
                continue;
            }
            state.l1.invalidate(id, version);
            let done = crate::db::outbox_done(&state.pool, id, version);
            match tokio::time::timeout(state.settings.db_timeout, done).await {
                Ok(Ok(())) => state.metrics.relayed(),
                Ok(Err(e)) => FAILED.warn(format_args!("the outbox relay cannot delete: {e:#}")),
                Err(_) => FAILED.warn(format_args!("the outbox relay's delete timed out")),
            }
        }
    }
}
// ANCHOR_END: relay
