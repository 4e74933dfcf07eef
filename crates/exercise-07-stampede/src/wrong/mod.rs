//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.
//!
//! Each file holds its own `SingleFlight`, the mistake in it in full; the
//! pieces they share with the reference are below.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::{BoxFuture, Shared};
use tokio::task::JoinHandle;

use crate::Failed;

pub mod error_stuck;
pub mod global_lock;
pub mod leader_polls;
pub mod never_forget;
pub mod no_cleanup_on_cancel;

/// A load in flight, as the reference has it.
type Load<V> = Shared<BoxFuture<'static, Result<V, Failed>>>;

type Loads<K, V> = Arc<Mutex<HashMap<K, Load<V>>>>;

fn lock<K, V>(loads: &Loads<K, V>) -> MutexGuard<'_, HashMap<K, Load<V>>> {
    loads.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A spawned load's result, a panic turned into an error.
async fn joined<V>(task: JoinHandle<Result<V, Failed>>) -> Result<V, Failed> {
    task.await
        .unwrap_or_else(|e| Err(Failed(format!("the load failed: {e}").into())))
}
