//! The open-loop load generator: a fixed number of requests per second to
//! each service, whatever the service does, as real users would send them.
//!
//! Open loop matters here: a closed-loop client (send, wait, send) slows
//! down when the service does, so a hanging service would see fewer
//! requests and look better than it is. The pattern is lesson 3's outage
//! experiment's; what it records differs (how a request ended, not how
//! fresh its answer was), so this is its own small loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::plan::Plan;

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// An HTTP answer; `stale` when lesson 3 said `X-Cache: STALE`;
    /// `wrong` when a 2xx body is not the user asked for (another user's
    /// copy, or not a user at all): a cache that mixed up its answers.
    Answered {
        status: u16,
        stale: bool,
        wrong: bool,
    },
    /// No answer: the connection was refused, reset or closed early.
    NoAnswer,
    /// No answer within [`Plan::hung_after`]: the client gave up.
    Hung,
    /// Not sent: the client already had its cap of requests in flight to
    /// this service (which only a service that stops answering reaches).
    Shed,
}

/// One request, as the load generator saw it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Index into [`crate::services::SERVICES`].
    pub service: usize,
    /// When it was sent, since the load started.
    pub sent: Duration,
    pub took: Duration,
    pub outcome: Outcome,
}

impl Sample {
    pub fn is_2xx(&self) -> bool {
        matches!(self.outcome, Outcome::Answered { status, .. } if is_2xx_status(status))
    }
}

/// The client every driver shares: one timeout for every request, which is
/// what tells a hung request from a slow one.
pub fn client(plan: &Plan) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(plan.hung_after)
        .connect_timeout(plan.hung_after)
        .pool_max_idle_per_host(64)
        .build()?)
}

/// At most this many requests in flight per service. At the standard
/// rate a service that hangs every request for `hung_after` reaches it;
/// one that answers, however badly, does not.
const IN_FLIGHT: usize = 512;

/// Sends `plan.rate` GETs per second to `base` until `stop_at`, cycling
/// through ids `1..=plan.ids`, and records a [`Sample`] per request.
pub async fn drive(
    service: usize,
    base: String,
    plan: Plan,
    client: reqwest::Client,
    samples: Arc<Mutex<Vec<Sample>>>,
    start: Instant,
    stop_at: Instant,
) {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / plan.rate);
    // Open loop means the schedule does not wait for anyone: if this task
    // itself falls behind (two shared cores), the ticks it missed are sent
    // at once to catch up, so the service sees the planned number of
    // requests. `Delay` would quietly send fewer, closing the loop through
    // the generator.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = tokio::task::JoinSet::new();
    // A stride coprime with the id count visits every id in a scrambled
    // order, the same for every service.
    let mut id = 0i64;
    loop {
        tick.tick().await;
        if Instant::now() >= stop_at {
            break;
        }
        id = (id + 7919) % plan.ids;
        let sent = start.elapsed();
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            record(&samples, service, sent, Duration::ZERO, Outcome::Shed);
            continue;
        };
        let (client, url, samples) = (
            client.clone(),
            format!("{base}/users/{}", id + 1),
            samples.clone(),
        );
        inflight.spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            let outcome = match client.get(&url).send().await {
                Ok(r) => {
                    let stale = r.headers().get("x-cache").is_some_and(|v| v == "STALE");
                    let status = r.status().as_u16();
                    match r.bytes().await {
                        Ok(body) => Outcome::Answered {
                            status,
                            stale,
                            wrong: is_2xx_status(status) && !is_user(&body, id + 1),
                        },
                        Err(e) if e.is_timeout() => Outcome::Hung,
                        Err(_) => Outcome::NoAnswer,
                    }
                }
                Err(e) if e.is_timeout() => Outcome::Hung,
                Err(_) => Outcome::NoAnswer,
            };
            record(&samples, service, sent, t0.elapsed(), outcome);
        });
        // Reap what has finished, so the set stays small.
        while inflight.try_join_next().is_some() {}
    }
    // Every request has a deadline, so this ends within `hung_after`.
    while inflight.join_next().await.is_some() {}
}

fn is_2xx_status(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Whether `body` is user `id` as JSON.
fn is_user(body: &[u8], id: i64) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["id"].as_i64() == Some(id))
}

fn record(
    samples: &Mutex<Vec<Sample>>,
    service: usize,
    sent: Duration,
    took: Duration,
    outcome: Outcome,
) {
    samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Sample {
            service,
            sent,
            took,
            outcome,
        });
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::extract::Path;
    use axum::routing::get;

    use super::*;

    /// A service that hangs on user 1 and answers user 3's data for user 2:
    /// the generator must call the first hung and the second wrong, and
    /// still stop within `hung_after` of the end.
    #[tokio::test]
    async fn hung_and_wrong_answers_are_told_apart_from_good_ones() {
        let app = Router::new().route(
            "/users/{id}",
            get(|Path(id): Path<i64>| async move {
                if id == 1 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                let shown = if id == 2 { 3 } else { id };
                axum::Json(
                    serde_json::json!({ "id": shown, "name": "x", "email": "x@example.com" }),
                )
            }),
        );
        let server = lab::http::spawn_server(app, 0).await.expect("server");
        let plan = Plan {
            rate: 30,
            ids: 3,
            hung_after: Duration::from_millis(500),
            ..Plan::quick()
        };
        let samples = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let driving = drive(
            0,
            server.base_url(),
            plan.clone(),
            client(&plan).expect("client"),
            samples.clone(),
            start,
            start + Duration::from_secs(1),
        );
        // Generous: the load is 1 s, the last request ends by 1.5 s.
        tokio::time::timeout(Duration::from_secs(30), driving)
            .await
            .expect("drive ends once its requests have");
        let samples = samples.lock().expect("samples").clone();
        let count = |f: &dyn Fn(&Outcome) -> bool| samples.iter().filter(|s| f(&s.outcome)).count();
        let hung = count(&|o| *o == Outcome::Hung);
        let wrong = count(&|o| matches!(o, Outcome::Answered { wrong: true, .. }));
        let good = count(&|o| {
            matches!(
                o,
                Outcome::Answered {
                    status: 200,
                    wrong: false,
                    ..
                }
            )
        });
        assert!(samples.len() >= 9, "{samples:?}");
        // Every third request is for each id.
        assert!(hung >= 3 && wrong >= 3 && good >= 3, "{samples:?}");
        assert_eq!(hung + wrong + good, samples.len(), "{samples:?}");
    }

    #[test]
    fn a_user_is_the_one_asked_for() {
        assert!(is_user(br#"{"id":7,"name":"a"}"#, 7));
        assert!(!is_user(br#"{"id":8,"name":"a"}"#, 7));
        assert!(!is_user(b"not json", 7));
        assert!(!is_user(br#"{"error":"x"}"#, 7));
    }
}
