//! Experiment 4, stale-while-revalidate: an entry that has just expired,
//! under load from many clients at once. With `proxy_cache_background_update`
//! (and stale allowed while `updating`) every client keeps getting the old
//! copy at cache speed while one subrequest refreshes it; then HITs. The
//! comparison turns the background refresh off and leaves stale serving to
//! the origin's `stale-while-revalidate` header alone: whoever finds the
//! entry expired first waits for the origin. And a baseline with no stale
//! serving at all (`stale-while-revalidate=0`, `proxy_cache_use_stale off`):
//! every client that finds the entry expired goes to the origin and waits
//! (`proxy_cache_lock` only guards a *new* entry, not an expired one).
//!
//! The verdict is the origin's count for the key during the load (one
//! refresh); the latencies are the measurement.
//!
//! # The one answer that still waits
//!
//! With background update on, one answer still takes about the origin's
//! latency, and it is a HIT, not the STALE that started the refresh. nginx
//! runs the refresh as a subrequest *of the client request that found the
//! entry expired*, and does not read that connection's next request until
//! the subrequest has finished: the STALE leaves at once, the same
//! client's next request waits for the refresh, and finds the entry fresh
//! (HIT). Two records show it: each load client has its own keep-alive
//! connection, and [`SlowAnswer`] says where the slowest answer sat in its
//! client's sequence; and a [`ConnectionProbe`] asks an expired key twice
//! on one connection and twice on two, on an edge of its own, while the
//! load's entries are still expiring (so the experiment takes no longer).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, Hit, client, counted, get, quantile_ms, tally, tally_text};
use crate::edge::UseStale;
use crate::origin::{OriginSettings, USERS};
use crate::policy::Lifetimes;

/// What this experiment shows, in plain words: the demo prints it under
/// the heading.
pub const SHOWS: &str = "whether an expired page under load stays fast while one request refreshes it in the background.";

/// One variant under load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwrRow {
    pub variant: String,
    pub clients: usize,
    pub seconds: f64,
    pub answers: usize,
    pub errors: usize,
    pub statuses: Vec<(String, usize)>,
    /// Requests that reached the origin during the load: the refreshes.
    pub origin_requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers that took at least half the origin's latency: the ones
    /// that waited for it.
    pub waited: usize,
    /// The slowest answer's `X-Cache-Status`.
    pub slowest_status: String,
    /// The fill, a MISS through the edge: what an answer from the origin costs.
    pub miss_ms: f64,
    /// Where the slowest answer sat in its client's (its connection's) sequence.
    #[serde(default)]
    pub slowest: Option<SlowAnswer>,
    /// The slowest answer came right after a STALE on the same connection
    /// (the request that started the background refresh).
    #[serde(default)]
    pub slow_after_stale_same_connection: bool,
    /// Of the answers that waited, those right after a STALE on the same
    /// connection.
    #[serde(default)]
    pub waited_after_stale: usize,
}

/// The slowest answer of a run, located in its client's sequence. Each
/// load client keeps one keep-alive connection, so "the same client" is
/// "the same connection".
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SlowAnswer {
    /// Which client (0-based), and which of its requests (0 = its first).
    pub client: usize,
    pub nth: usize,
    /// Its `X-Cache-Status` and time.
    pub status: String,
    pub ms: f64,
    /// The same client's previous answer's `X-Cache-Status` (`None`: it
    /// was the client's first request).
    pub previous: Option<String>,
}

impl SlowAnswer {
    /// It came right after a STALE on its own connection.
    pub fn after_stale(&self) -> bool {
        self.previous.as_deref() == Some(STALE)
    }
}

/// The `X-Cache-Status` of the request that starts a background refresh
/// (the others, while it runs, get UPDATING).
const STALE: &str = "STALE";

/// Two GETs of an expired key on one keep-alive connection, and two on
/// two connections, against the chapter's edge (background update on).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConnectionProbe {
    pub origin_latency_ms: u64,
    /// STALE (it starts the refresh), then the next request on the same connection.
    pub same_connection: Vec<ProbeAnswer>,
    /// The same, the second request on a new connection (the first stays open).
    pub new_connection: Vec<ProbeAnswer>,
}

/// One answer of the probe.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProbeAnswer {
    pub cache: String,
    pub ms: f64,
}

impl ConnectionProbe {
    /// The second answer on each path waited for the origin (at least half
    /// its latency): (same connection, new connection).
    pub fn second_waited(&self) -> (Option<bool>, Option<bool>) {
        let waited = |a: &[ProbeAnswer]| {
            a.get(1)
                .map(|p| p.ms >= self.origin_latency_ms as f64 / 2.0)
        };
        (waited(&self.same_connection), waited(&self.new_connection))
    }

    /// The hypothesis holds: the next request on the connection that got
    /// the STALE waited, the one on a new connection did not.
    pub fn confirms(&self) -> bool {
        self.same_connection
            .first()
            .is_some_and(|a| a.cache == STALE)
            && self.second_waited() == (Some(true), Some(false))
    }

    /// "STALE 2 ms → HIT 305 ms".
    pub fn text(answers: &[ProbeAnswer]) -> String {
        answers
            .iter()
            .map(|a| format!("{} {:.0} ms", a.cache, a.ms))
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// Both variants, with the settings they shared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwrResults {
    pub s_maxage_s: u64,
    pub stale_while_revalidate_s: u64,
    pub origin_latency_ms: u64,
    pub rows: Vec<SwrRow>,
    /// Where the one slow answer comes from (`None` in results from before it).
    #[serde(default)]
    pub probe: Option<ConnectionProbe>,
}

/// Name, `proxy_cache_background_update`, `proxy_cache_use_stale`, and
/// the origin's `stale-while-revalidate`.
const VARIANTS: [(&str, bool, UseStale, u64); 3] = [
    (
        "background update on (chapter)",
        true,
        UseStale::Directive,
        SWR_S,
    ),
    (
        "background update off, origin's header only",
        false,
        UseStale::OriginHeaders,
        SWR_S,
    ),
    ("no stale serving at all", false, UseStale::OriginHeaders, 0),
];
/// Long enough that the entry stays within it for the whole experiment.
const SWR_S: u64 = 60;

/// Fills the edges together, waits until the entries have expired, then
/// loads one after the other (all still within stale-while-revalidate).
/// The connection probe runs on its own edge during that wait.
pub async fn run(fx: &Fixture, plan: &Plan) -> anyhow::Result<SwrResults> {
    let http = client()?;
    // The probe's edge alongside: its entries expire sooner (s-maxage=1),
    // so it is done before the load's entries have expired.
    let setups = async {
        let mut setups = Vec::new();
        for (_, background, use_stale, swr) in VARIANTS {
            let settings = OriginSettings {
                latency: plan.swr_latency,
                lifetimes: Lifetimes {
                    browser: Duration::ZERO,
                    edge: plan.swr_s_maxage,
                    stale_while_revalidate: Duration::from_secs(swr),
                    stale_if_error: Duration::ZERO,
                },
                ..OriginSettings::default()
            };
            let origin = fx.origin(settings).await?;
            let edge = origin
                .edge(|c| {
                    c.background_update = background;
                    c.use_stale = use_stale;
                })
                .await?;
            let url = format!("{}/users/33", edge.base_url());
            let fill = get(&http, &url, &[]).await;
            anyhow::ensure!(fill.status == 200, "the fill failed ({})", fill.status);
            setups.push((origin, edge, url, fill.took));
        }
        anyhow::Ok(setups)
    };
    let (setups, probe_edge) = tokio::join!(setups, ProbeEdge::new(fx, plan));
    let (setups, probe_edge) = (setups?, probe_edge?);
    // nginx counts lifetimes in whole seconds: one more makes sure it expired.
    let expired = tokio::time::sleep(plan.swr_s_maxage + Duration::from_millis(1100));
    let (_, probe) = tokio::join!(expired, probe_edge.probe());
    let probe = probe?;
    let waited_at = plan.swr_latency / 2;
    let mut rows = Vec::new();
    for ((name, ..), (origin, _edge, url, miss)) in VARIANTS.into_iter().zip(setups) {
        let before = origin.handle.count(USERS);
        let per_client = load(&url, plan.swr_clients, plan.swr_for).await?;
        let (slowest, waited_after_stale) = locate(&per_client, waited_at);
        let hits: Vec<&Hit> = per_client.iter().flatten().collect();
        let took: Vec<Duration> = hits.iter().map(|h| h.took).collect();
        let row = SwrRow {
            variant: name.into(),
            clients: plan.swr_clients,
            seconds: plan.swr_for.as_secs_f64(),
            answers: hits.len(),
            errors: hits.iter().filter(|h| h.status != 200).count(),
            statuses: tally(hits.iter().map(|h| h.cache.as_str())),
            origin_requests: origin.handle.count(USERS) - before,
            p50_ms: quantile_ms(&took, 0.5),
            p99_ms: quantile_ms(&took, 0.99),
            max_ms: quantile_ms(&took, 1.0),
            waited: took.iter().filter(|t| **t >= waited_at).count(),
            slowest_status: slowest.as_ref().map_or("-".into(), |s| s.status.clone()),
            miss_ms: miss.as_secs_f64() * 1000.0,
            slow_after_stale_same_connection: slowest.as_ref().is_some_and(SlowAnswer::after_stale),
            slowest,
            waited_after_stale,
        };
        println!(
            "  {name:<45} {} answers, {} waited, p50 {:.1} ms, max {:.0} ms ({}), {}\n  {:<45} {}",
            row.answers,
            row.waited,
            row.p50_ms,
            row.max_ms,
            row.slowest_status,
            counted(row.origin_requests, "origin request"),
            "",
            tally_text(&row.statuses)
        );
        rows.push(row);
    }
    let results = SwrResults {
        s_maxage_s: plan.swr_s_maxage.as_secs(),
        stale_while_revalidate_s: SWR_S,
        origin_latency_ms: plan.swr_latency.as_millis() as u64,
        rows,
        probe: Some(probe),
    };
    println!("  {}", results.slow_answer_text());
    Ok(results)
}

impl SwrResults {
    /// The hypothesis held twice: under load the slowest answer came right
    /// after a STALE on its own connection, and the probe's next request
    /// waited on the same connection and not on a new one.
    pub fn slow_answer_explained(&self) -> bool {
        self.rows
            .first()
            .is_some_and(|r| r.slow_after_stale_same_connection)
            && self.probe.as_ref().is_some_and(ConnectionProbe::confirms)
    }

    /// Which answer was the slow one with background update on, and why,
    /// as a noun phrase (the findings' version).
    pub fn slow_answer_cause(&self) -> String {
        let slow = self.rows.first().and_then(|r| r.slowest.as_ref());
        match slow {
            None => "not recorded".into(),
            Some(s) if self.slow_answer_explained() => format!(
                "the next request on the connection that got the STALE ({} {:.0} ms), \
                 which nginx reads only once the background refresh is done",
                s.status, s.ms
            ),
            // Say what was seen, and not more.
            Some(s) => format!(
                "a {} of {:.0} ms that came after {} on its connection",
                s.status,
                s.ms,
                s.previous
                    .as_deref()
                    .unwrap_or("nothing (its first request)")
            ),
        }
    }

    /// [`SwrResults::slow_answer_cause`] with the probe's evidence: the
    /// line the demo prints.
    pub fn slow_answer_text(&self) -> String {
        let probe = self.probe.as_ref().map_or(String::new(), |p| {
            format!(
                " (probe: same connection {}; new connection {})",
                ConnectionProbe::text(&p.same_connection),
                ConnectionProbe::text(&p.new_connection)
            )
        });
        format!(
            "the slow answer with background update on: {}{probe}",
            self.slow_answer_cause()
        )
    }
}

/// The slowest answer in its client's sequence, and how many answers that
/// waited (`>= waited`) came right after a STALE on the same connection.
/// Pure, so the unit tests pin what "right after" means.
fn locate(per_client: &[Vec<Hit>], waited: Duration) -> (Option<SlowAnswer>, usize) {
    let mut slowest: Option<SlowAnswer> = None;
    let mut after_stale = 0;
    for (client, hits) in per_client.iter().enumerate() {
        for (nth, h) in hits.iter().enumerate() {
            let previous = nth.checked_sub(1).map(|p| hits[p].cache.clone());
            if h.took >= waited && previous.as_deref() == Some(STALE) {
                after_stale += 1;
            }
            let ms = h.took.as_secs_f64() * 1000.0;
            if slowest.as_ref().is_none_or(|s| ms > s.ms) {
                slowest = Some(SlowAnswer {
                    client,
                    nth,
                    status: h.cache.clone(),
                    ms,
                    previous,
                });
            }
        }
    }
    (slowest, after_stale)
}

/// `clients` closed loops on one URL for `dur`: bounded in time and count.
/// Each client has its own HTTP client, so its requests share one
/// keep-alive connection and its answers, in order, are that connection's
/// (nginx closes a connection after 1,000 requests, `keepalive_requests`;
/// a client here makes fewer than that in 1.5 s, about 600 at 2.5 ms each).
async fn load(url: &str, clients: usize, dur: Duration) -> anyhow::Result<Vec<Vec<Hit>>> {
    let until = Instant::now() + dur;
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (http, url) = (client()?, url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < until && out.len() < 100_000 {
                out.push(get(&http, &url, &[]).await);
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(clients);
    for t in tasks {
        all.push(t.await?);
    }
    Ok(all)
}

/// The probe's lifetime at the edge: shorter than the load's, so its keys
/// expire (and it runs) while the load's entries are still fresh.
const PROBE_S_MAXAGE: Duration = Duration::from_secs(1);
/// The probe's two keys: one for each path.
const PROBE_KEYS: [i64; 2] = [35, 36];

/// The probe's origin and edge (the chapter's config), its keys filled.
struct ProbeEdge {
    _origin: super::fixture::Origin,
    edge: lab::edge::Nginx,
    latency: Duration,
    filled: Instant,
}

impl ProbeEdge {
    async fn new(fx: &Fixture, plan: &Plan) -> anyhow::Result<ProbeEdge> {
        let origin = fx
            .origin(OriginSettings {
                latency: plan.swr_latency,
                lifetimes: Lifetimes {
                    browser: Duration::ZERO,
                    edge: PROBE_S_MAXAGE,
                    stale_while_revalidate: Duration::from_secs(SWR_S),
                    stale_if_error: Duration::ZERO,
                },
                ..OriginSettings::default()
            })
            .await?;
        let edge = origin.edge(|_| {}).await?;
        let http = client()?;
        let [a, b] = PROBE_KEYS.map(|k| format!("{}/users/{k}", edge.base_url()));
        let (fa, fb) = tokio::join!(get(&http, &a, &[]), get(&http, &b, &[]));
        anyhow::ensure!(
            fa.status == 200 && fb.status == 200,
            "the probe's fill failed ({}, {})",
            fa.status,
            fb.status
        );
        Ok(ProbeEdge {
            _origin: origin,
            edge,
            latency: plan.swr_latency,
            filled: Instant::now(),
        })
    }

    /// Once both keys have expired: key A twice on one connection, key B
    /// on one connection and then on a second one (the first kept open, so
    /// nothing but the connection differs).
    async fn probe(&self) -> anyhow::Result<ConnectionProbe> {
        tokio::time::sleep_until(
            (self.filled + PROBE_S_MAXAGE + Duration::from_millis(1100)).into(),
        )
        .await;
        let [a, b] = PROBE_KEYS.map(|k| format!("{}/users/{k}", self.edge.base_url()));
        let answer = |h: Hit| ProbeAnswer {
            cache: h.cache,
            ms: h.took.as_secs_f64() * 1000.0,
        };
        let one = client()?;
        let same_connection = vec![
            answer(get(&one, &a, &[]).await),
            answer(get(&one, &a, &[]).await),
        ];
        let (first, second) = (client()?, client()?);
        let new_connection = vec![
            answer(get(&first, &b, &[]).await),
            answer(get(&second, &b, &[]).await),
        ];
        // Until here: `first`'s connection stays open, like `one`'s.
        drop(first);
        Ok(ConnectionProbe {
            origin_latency_ms: self.latency.as_millis() as u64,
            same_connection,
            new_connection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(cache: &str, ms: u64) -> Hit {
        Hit {
            status: 200,
            cache: cache.into(),
            bytes: 55,
            took: Duration::from_millis(ms),
        }
    }

    #[test]
    fn the_slowest_answer_is_found_with_its_connections_previous_answer() {
        let per_client = vec![
            vec![hit("UPDATING", 2), hit("HIT", 1)],
            vec![
                hit("HIT", 3),
                hit("STALE", 2),
                hit("HIT", 310),
                hit("HIT", 1),
            ],
            // A slow first request has no predecessor.
            vec![hit("REVALIDATED", 200)],
        ];
        let (slow, after_stale) = locate(&per_client, Duration::from_millis(150));
        let slow = slow.expect("an answer");
        assert_eq!((slow.client, slow.nth, slow.status.as_str()), (1, 2, "HIT"));
        assert_eq!(slow.previous.as_deref(), Some("STALE"));
        assert!(slow.after_stale());
        // 310 ms after a STALE counts; the 200 ms first request does not.
        assert_eq!(after_stale, 1);
        assert_eq!(locate(&[], Duration::ZERO), (None, 0));
        let first = locate(&per_client[2..], Duration::ZERO).0.expect("one");
        assert!(!first.after_stale() && first.previous.is_none());
    }

    fn probe(same: [(&str, f64); 2], new: [(&str, f64); 2]) -> ConnectionProbe {
        let answers = |a: [(&str, f64); 2]| {
            a.map(|(c, ms)| ProbeAnswer {
                cache: c.into(),
                ms,
            })
            .to_vec()
        };
        ConnectionProbe {
            origin_latency_ms: 300,
            same_connection: answers(same),
            new_connection: answers(new),
        }
    }

    #[test]
    fn the_probe_confirms_only_when_just_the_same_connection_waits() {
        let p = probe(
            [("STALE", 2.0), ("HIT", 305.0)],
            [("STALE", 2.0), ("UPDATING", 1.0)],
        );
        assert!(p.confirms());
        assert_eq!(
            ConnectionProbe::text(&p.same_connection),
            "STALE 2 ms → HIT 305 ms"
        );
        // Both waited: the connection is not what made the difference.
        assert!(
            !probe(
                [("STALE", 2.0), ("HIT", 305.0)],
                [("STALE", 2.0), ("HIT", 300.0)]
            )
            .confirms()
        );
        // Nothing waited, or the first answer did not start a refresh.
        assert!(
            !probe(
                [("STALE", 2.0), ("HIT", 3.0)],
                [("STALE", 2.0), ("UPDATING", 1.0)]
            )
            .confirms()
        );
        assert!(
            !probe(
                [("HIT", 2.0), ("HIT", 305.0)],
                [("STALE", 2.0), ("UPDATING", 1.0)]
            )
            .confirms()
        );
    }
}
