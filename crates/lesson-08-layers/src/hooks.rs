//! Pause points for the tests and experiments: the races in this lesson
//! are reproduced by stopping a request at a chosen line, not by sleeping
//! and hoping the other request gets there first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Where a request can be held. Empty in production: each is one
/// `Option` check.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// A GET after its database read, before it fills Redis: where the
    /// stale-set race happens.
    pub before_fill: Option<Arc<Pause>>,
    /// A PUT's task after its COMMIT, before it invalidates: where a lost
    /// invalidation happens when the process dies.
    pub after_commit: Option<Arc<Pause>>,
}

/// Holds the first request that reaches it until released; later ones pass.
#[derive(Debug)]
pub struct Pause {
    armed: AtomicBool,
    reached: Notify,
    release: Notify,
}

impl Pause {
    pub fn new() -> Arc<Pause> {
        Arc::new(Pause {
            armed: AtomicBool::new(true),
            reached: Notify::new(),
            release: Notify::new(),
        })
    }

    /// Called by the service at the pause point.
    pub async fn hold(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            // `notify_one` keeps a permit when nobody waits yet, so neither
            // side can miss the other's signal.
            self.reached.notify_one();
            self.release.notified().await;
        }
    }

    /// Waits until a request is held here.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held request go on.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// Runs `hook`'s pause, if there is one.
pub async fn hold(hook: &Option<Arc<Pause>>) {
    if let Some(p) = hook {
        p.hold().await;
    }
}
