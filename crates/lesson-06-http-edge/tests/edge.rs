//! The origin behind a real nginx: what the edge did (`X-Cache-Status`),
//! how many requests reached the origin (its own count), and what the
//! client got. No assertion is on a time. Where a test needs requests to
//! overlap (collapsing) the origin is made slow (hundreds of milliseconds,
//! against requests fired together within a few); where it needs an entry
//! to expire it sleeps past the lifetime nginx counts in whole seconds.
//! Each test skips, saying why, on a machine without nginx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use lab::edge::{Nginx, can_spawn, purge_module};
use lab::http::{Running, spawn_server};
use lesson_06_http_edge::edge::{EdgeConfig, UseStale};
use lesson_06_http_edge::origin::{ME, OriginHandle, OriginSettings, USERS};
use lesson_06_http_edge::policy::Lifetimes;
use tokio::sync::Barrier;

mod common;
use common::{Db, settings};

/// Every request a test sends has this bound (the rules: no call without one).
const TIMEOUT: Duration = Duration::from_secs(10);

/// An origin served on a loopback port, and an edge in front of it.
struct Site {
    // Fields drop in order: nginx, then the origin, then the schema.
    edge: Nginx,
    origin: Option<Running>,
    handle: OriginHandle,
    client: reqwest::Client,
    _db: Db,
}

/// What the client got through the edge.
#[derive(Debug)]
struct Got {
    status: StatusCode,
    /// `X-Cache-Status`: HIT, MISS, EXPIRED, STALE, REVALIDATED, … ("" for none).
    cache: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The origin with `settings`, the edge with `EdgeConfig::new` changed by
/// `configure`.
async fn site(settings: OriginSettings, configure: impl FnOnce(&mut EdgeConfig)) -> Site {
    // 25 connections: the collapsing tests send 20 requests at once.
    let db = Db::new(25).await;
    let (router, handle) = db.origin(settings);
    let origin = spawn_server(router, 0).await.expect("the origin serves");
    let mut config = EdgeConfig::new(origin.addr);
    configure(&mut config);
    let edge = config.spawn(None).await.expect("nginx accepts the config");
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("a client");
    Site {
        edge,
        origin: Some(origin),
        handle,
        client,
        _db: db,
    }
}

impl Site {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Got {
        fetch(
            &self.client,
            &format!("{}{path}", self.edge.base_url()),
            headers,
        )
        .await
    }

    /// `n` GETs of one path, released together by a barrier so that they
    /// all reach the edge while the first is still at the (slow) origin.
    async fn burst(&self, path: &str, n: usize) -> Vec<Got> {
        let barrier = Arc::new(Barrier::new(n));
        let url = format!("{}{path}", self.edge.base_url());
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, url, barrier) = (self.client.clone(), url.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    fetch(&client, &url, &[]).await
                })
            })
            .collect();
        let mut got = Vec::with_capacity(n);
        for t in tasks {
            got.push(t.await.expect("a request task"));
        }
        got
    }

    /// Stops the origin: new connections are refused.
    async fn stop_origin(&mut self) {
        if let Some(running) = self.origin.take() {
            running.shutdown().await.expect("the origin stops");
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client.get(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    let headers = resp.headers().clone();
    let cache = headers
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().await.expect("a body");
    Got {
        status,
        cache,
        headers,
        body,
    }
}

fn fast() -> OriginSettings {
    settings(Duration::ZERO)
}

/// The statuses of a burst, counted: `{"HIT": 19, "MISS": 1}`.
fn tally(got: &[Got]) -> std::collections::BTreeMap<&str, usize> {
    let mut t = std::collections::BTreeMap::new();
    for g in got {
        assert_eq!(g.status, StatusCode::OK, "{g:?}");
        *t.entry(g.cache.as_str()).or_insert(0) += 1;
    }
    t
}

#[tokio::test]
async fn a_miss_then_hits_and_the_edge_answers_304_itself() {
    if !can_spawn("a_miss_then_hits_and_the_edge_answers_304_itself") {
        return;
    }
    let s = site(fast(), |_| {}).await;
    let first = s.get("/users/42", &[]).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (StatusCode::OK, "MISS")
    );
    let second = s.get("/users/42", &[]).await;
    assert_eq!(
        (second.status, second.cache.as_str()),
        (StatusCode::OK, "HIT")
    );
    assert_eq!(second.body, first.body);
    // The origin's headers pass through the edge to the browser.
    let etag = first.header("etag").to_string();
    assert!(etag.starts_with('"'), "a strong ETag: {etag:?}");
    assert_eq!(second.header("etag"), etag);
    assert_eq!(
        second.header("cache-control"),
        Lifetimes::default()
            .cache_control()
            .to_str()
            .expect("ASCII")
    );
    assert_eq!(
        s.handle.count(USERS),
        1,
        "two requests, one reached the origin"
    );
    // The origin's Server-Timing is the fill's: hidden, or every HIT would
    // claim the time the origin took once.
    assert_eq!(first.header("server-timing"), "", "{first:?}");
    assert_eq!(second.header("server-timing"), "", "{second:?}");

    // A browser revalidating its copy: the edge answers from its cache.
    let revalidated = s.get("/users/42", &[("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.cache, "HIT");
    assert_eq!(revalidated.body, "");
    let changed = s.get("/users/42", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(
        (changed.status, changed.cache.as_str()),
        (StatusCode::OK, "HIT")
    );
    assert_eq!(changed.body, first.body);
    assert_eq!(s.handle.count(USERS), 1, "the 304 cost the origin nothing");
}

#[tokio::test]
async fn the_lock_collapses_a_cold_burst_into_one_origin_request() {
    if !can_spawn("the_lock_collapses_a_cold_burst_into_one_origin_request") {
        return;
    }
    // The first request holds the origin for 500 ms; the other 19 arrive
    // within milliseconds of it, and wait for its answer.
    let s = site(settings(Duration::from_millis(500)), |c| c.lock = true).await;
    let got = s.burst("/users/42", 20).await;
    let t = tally(&got);
    eprintln!(
        "lock on, 20 at once: {t:?}, origin {}",
        s.handle.count(USERS)
    );
    assert_eq!(s.handle.count(USERS), 1, "{t:?}");
    assert_eq!(t.get("MISS"), Some(&1), "one filled the entry: {t:?}");
    assert!(got.iter().all(|g| g.body == got[0].body));
}

#[tokio::test]
async fn without_the_lock_every_cold_request_reaches_the_origin() {
    if !can_spawn("without_the_lock_every_cold_request_reaches_the_origin") {
        return;
    }
    // 1.5 s at the origin: all 20 must arrive while the first is still
    // there (a request after the fill would be a HIT), even on a loaded
    // 2-core machine that starts 20 connections slowly.
    let s = site(settings(Duration::from_millis(1500)), |c| c.lock = false).await;
    let got = s.burst("/users/42", 20).await;
    let t = tally(&got);
    eprintln!(
        "lock off, 20 at once: {t:?}, origin {}",
        s.handle.count(USERS)
    );
    assert_eq!(s.handle.count(USERS), 20, "{t:?}");
    assert_eq!(t.get("MISS"), Some(&20), "{t:?}");
    // Once filled, the entry serves everyone.
    assert_eq!(s.get("/users/42", &[]).await.cache, "HIT");
    assert_eq!(s.handle.count(USERS), 20);
}

#[tokio::test]
async fn a_lock_timeout_shorter_than_the_origin_lets_the_burst_through() {
    if !can_spawn("a_lock_timeout_shorter_than_the_origin_lets_the_burst_through") {
        return;
    }
    // The measurement: a 300 ms lock timeout, a 1 s origin.
    let s = site(settings(Duration::from_secs(1)), |c| {
        c.lock = true;
        c.lock_timeout = Duration::from_millis(300);
    })
    .await;
    const N: usize = 10;
    let got = s.burst("/users/42", N).await;
    let t = tally(&got);
    let reached = s.handle.count(USERS);
    eprintln!("lock timeout 300 ms, 1 s origin, {N} at once: {t:?}, origin {reached}");
    // The first holds the lock for the whole second; the other nine give up
    // on it at 300 ms and go to the origin themselves: all of them reach it.
    assert_eq!(
        reached, N as u64,
        "every waiter gave up on the lock and went to the origin: {t:?}"
    );
}

/// Lifetimes nginx can see expire within a test: fresh 1 s at the edge,
/// then 3 s of stale-if-error; no stale-while-revalidate.
fn short_lived() -> OriginSettings {
    OriginSettings {
        lifetimes: Lifetimes {
            browser: Duration::ZERO,
            edge: Duration::from_secs(1),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::from_secs(3),
        },
        ..fast()
    }
}

/// nginx keeps time in whole seconds: an entry stored at second F with
/// `s-maxage=1` is fresh until F+1 and expired from F+2, which is at most
/// 2 s after it was stored; its `stale-if-error=3` holds up to F+4, which
/// is at least 4 s after. So: expired for sure 2.1 s after the fill,
/// within the window until 4 s after it, past the window 5.1 s after it.
const EXPIRED: Duration = Duration::from_millis(2100);
const PAST_THE_WINDOW: Duration = Duration::from_millis(5100);

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(t.into()).await;
}

#[tokio::test]
async fn with_the_directive_the_edge_serves_stale_while_the_origin_fails() {
    if !can_spawn("with_the_directive_the_edge_serves_stale_while_the_origin_fails") {
        return;
    }
    // No background update: with it (and `updating` in the directive) an
    // expired entry is served STALE whatever the origin does, and this test
    // could not tell a failing origin from a healthy one.
    let mut s = site(short_lived(), |c| {
        c.use_stale = UseStale::Directive;
        c.background_update = false;
    })
    .await;
    let healthy = s.get("/users/1", &[]).await;
    let filled = s.get("/users/2", &[]).await;
    let stored = Instant::now();
    assert_eq!(
        (filled.status, filled.cache.as_str()),
        (StatusCode::OK, "MISS")
    );
    sleep_until(stored + EXPIRED).await;

    // The control: an expired entry with a healthy origin is refreshed
    // (a conditional GET, answered 304), not served stale.
    let refreshed = s.get("/users/1", &[]).await;
    assert_eq!(
        (refreshed.status, refreshed.cache.as_str()),
        (StatusCode::OK, "REVALIDATED")
    );
    assert_eq!(refreshed.body, healthy.body);

    // (a) The origin answers 500.
    s.handle.set_fault(true);
    let before = s.handle.count(USERS);
    let a = s.get("/users/2", &[]).await;
    assert_eq!((a.status, a.cache.as_str()), (StatusCode::OK, "STALE"));
    assert_eq!(a.body, filled.body, "the old copy");
    assert_eq!(s.handle.count(USERS), before + 1, "the edge did ask");

    // (b) The origin is gone.
    s.stop_origin().await;
    let b = s.get("/users/2", &[]).await;
    assert_eq!((b.status, b.cache.as_str()), (StatusCode::OK, "STALE"));
    assert_eq!(b.body, filled.body);

    // The directive ignores the origin's stale-if-error window. Nothing
    // else bounds it: `inactive=10m` counts from the last request, so a
    // key that keeps being asked for is served stale for as long as the
    // origin is down.
    sleep_until(stored + PAST_THE_WINDOW).await;
    let later = s.get("/users/2", &[]).await;
    assert_eq!(
        (later.status, later.cache.as_str()),
        (StatusCode::OK, "STALE")
    );
}

#[tokio::test]
async fn with_the_origins_headers_stale_is_served_only_within_stale_if_error() {
    if !can_spawn("with_the_origins_headers_stale_is_served_only_within_stale_if_error") {
        return;
    }
    let mut s = site(short_lived(), |c| c.use_stale = UseStale::OriginHeaders).await;
    let one = s.get("/users/1", &[]).await;
    let two = s.get("/users/2", &[]).await;
    let stored = Instant::now();
    assert_eq!((one.cache.as_str(), two.cache.as_str()), ("MISS", "MISS"));
    sleep_until(stored + EXPIRED).await;

    // Within stale-if-error, an origin that answers 500 is NOT hidden:
    // since nginx 1.19.3 (commit 554916301, "Cache: ignore stale-if-error
    // for 4xx and 5xx codes") the origin's stale-if-error covers network
    // errors and timeouts only; a 5xx is served stale only by the
    // directive's http_500 … parameters. The old entry stays.
    s.handle.set_fault(true);
    let a = s.get("/users/1", &[]).await;
    assert_eq!(
        (a.status, a.cache.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "EXPIRED")
    );
    assert_eq!(a.header("cache-control"), "no-store");

    // A dead origin is a network error: within the window, the old copy.
    s.stop_origin().await;
    for (path, old) in [("/users/2", &two), ("/users/1", &one)] {
        let b = s.get(path, &[]).await;
        assert_eq!(
            (b.status, b.cache.as_str()),
            (StatusCode::OK, "STALE"),
            "{path}"
        );
        assert_eq!(b.body, old.body, "{path}");
    }

    // Past the window, the error passes: nginx's own 502 for a dead origin.
    sleep_until(stored + PAST_THE_WINDOW).await;
    let dead = s.get("/users/2", &[]).await;
    assert_eq!(dead.status, StatusCode::BAD_GATEWAY, "{dead:?}");
}

/// Users 7 and 8, interleaved, each get their own page, and every request
/// reaches the origin.
async fn each_user_gets_their_own_page(s: &Site, first: &str) {
    for id in [7, 8, 7, 8, 7, 8, 8, 7] {
        let got = s.get("/me", &[("x-user-id", &id.to_string())]).await;
        assert_eq!(got.status, StatusCode::OK, "after {first}: {got:?}");
        let json: serde_json::Value = serde_json::from_str(&got.body).expect("JSON");
        assert_eq!(json["id"], id, "after {first}: user {id} got {}", got.body);
        assert_eq!(
            got.cache, "",
            "after {first}: /me bypasses the cache: {got:?}"
        );
        assert_eq!(got.header("cache-control"), "private, no-store");
        assert_eq!(got.header("vary"), "x-user-id");
    }
}

#[tokio::test]
async fn one_users_private_page_is_never_served_to_another() {
    if !can_spawn("one_users_private_page_is_never_served_to_another") {
        return;
    }
    // Each time from an empty cache, an error first: an unknown user's 404
    // (once stored under `/me` for 5 s, and served to every user), then a
    // request with no X-User-Id (400).
    for (first, headers, status) in [
        (
            "an unknown user",
            &[("x-user-id", "999999")][..],
            StatusCode::NOT_FOUND,
        ),
        ("no X-User-Id", &[][..], StatusCode::BAD_REQUEST),
    ] {
        let s = site(fast(), |_| {}).await;
        let error = s.get("/me", headers).await;
        assert_eq!(error.status, status, "{first}: {error:?}");
        assert_eq!(
            error.header("cache-control"),
            "private, no-store",
            "{first}"
        );
        assert_eq!(error.header("vary"), "x-user-id", "{first}");
        each_user_gets_their_own_page(&s, first).await;
        assert_eq!(
            s.handle.count(ME),
            9,
            "{first}: every one reached the origin"
        );
    }
}

/// Defence in depth: the edge keeps `/me` out of its cache even when the
/// origin forgets to say `private` (here it says `public, max-age=60`).
#[tokio::test]
async fn the_edge_never_caches_me_whatever_the_origin_says() {
    if !can_spawn("the_edge_never_caches_me_whatever_the_origin_says") {
        return;
    }
    let reached = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = reached.clone();
    let careless = axum::Router::new().route(
        "/me",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let id = headers
                .get("x-user-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            async move { ([("cache-control", "public, max-age=60")], id) }
        }),
    );
    let origin = spawn_server(careless, 0).await.expect("the origin serves");
    let edge = EdgeConfig::new(origin.addr)
        .spawn(None)
        .await
        .expect("nginx");
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("a client");
    let url = format!("{}/me", edge.base_url());
    for id in ["7", "8", "7"] {
        let got = fetch(&client, &url, &[("x-user-id", id)]).await;
        assert_eq!(
            (got.status, got.body.as_str()),
            (StatusCode::OK, id),
            "{got:?}"
        );
        assert_eq!(got.cache, "", "not even looked up: {got:?}");
    }
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_new_version_in_the_url_is_a_new_entry() {
    if !can_spawn("a_new_version_in_the_url_is_a_new_entry") {
        return;
    }
    let s = site(fast(), |_| {}).await;
    assert_eq!(s.get("/users/42?v=1", &[]).await.cache, "MISS");
    assert_eq!(s.get("/users/42?v=1", &[]).await.cache, "HIT");
    assert_eq!(s.handle.count(USERS), 1);
    assert_eq!(s.get("/users/42?v=2", &[]).await.cache, "MISS");
    assert_eq!(s.handle.count(USERS), 2, "v=2 went to the origin");
    assert_eq!(s.get("/users/42?v=2", &[]).await.cache, "HIT");
    assert_eq!(s.handle.count(USERS), 2);
}

#[tokio::test]
async fn the_purge_module_drops_one_entry() {
    if !can_spawn("the_purge_module_drops_one_entry") {
        return;
    }
    if purge_module().is_none() {
        eprintln!("SKIPPED the_purge_module_drops_one_entry: the purge module is not installed");
        return;
    }
    let s = site(fast(), |c| c.purge = true).await;
    assert_eq!(s.get("/users/42", &[]).await.cache, "MISS");
    assert_eq!(s.get("/users/42", &[]).await.cache, "HIT");
    let purged = s.get("/purge/users/42", &[]).await;
    // The module's answer: a small HTML page naming the key it removed
    // (`<h1>Successful purge</h1> … Key : /users/42`), not from the cache.
    assert_eq!(purged.status, StatusCode::OK, "{purged:?}");
    assert!(purged.body.contains("Successful purge"), "{purged:?}");
    assert!(purged.body.contains("Key : /users/42"), "{purged:?}");
    assert_eq!(purged.header("content-type"), "text/html");
    assert_eq!(purged.cache, "", "{purged:?}");
    assert_eq!(s.get("/users/42", &[]).await.cache, "MISS", "purged");
    assert_eq!(s.handle.count(USERS), 2);
    // A key that is not cached: 404 (the same page, "Not Found").
    let nothing = s.get("/purge/users/43", &[]).await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND, "{nothing:?}");

    // The cache key is the URI as sent, still encoded: `/users/%34%32` is
    // user 42 to the origin but its own entry at the edge. The purge key is
    // cut from the raw URI too, so the purge finds that entry (a decoded
    // `/users/42` would not).
    let encoded = "/users/%34%32";
    assert_eq!(s.get(encoded, &[]).await.cache, "MISS");
    assert_eq!(s.get(encoded, &[]).await.cache, "HIT");
    let purged = s.get(&format!("/purge{encoded}"), &[]).await;
    assert_eq!(purged.status, StatusCode::OK, "{purged:?}");
    assert!(purged.body.contains("Key : /users/%34%32"), "{purged:?}");
    assert_eq!(s.get(encoded, &[]).await.cache, "MISS", "purged");
}

#[tokio::test]
async fn nginx_accepts_every_generated_variant() {
    if !can_spawn("nginx_accepts_every_generated_variant") {
        return;
    }
    let s = site(fast(), |_| {}).await;
    let origin = s.origin.as_ref().expect("running").addr;
    // A TempDir: deleted on drop, also when an assertion below panics.
    let www = tempfile::Builder::new()
        .prefix("lesson6-static-")
        .tempdir()
        .expect("a static dir");
    // TempDir makes it 0700; nginx's workers (`nobody`, when the tests run
    // as root) must read it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(www.path(), std::fs::Permissions::from_mode(0o755))
        .expect("a readable static dir");
    std::fs::write(www.path().join("hello.txt"), "hello\n").expect("a static file");

    let chapter = EdgeConfig::new(origin);
    let mut everything_off = EdgeConfig::new(origin);
    everything_off.lock = false;
    everything_off.use_stale = UseStale::OriginHeaders;
    everything_off.background_update = false;
    everything_off.revalidate = false;
    everything_off.access_log = true;
    let mut with_static = EdgeConfig::new(origin);
    with_static.static_root = Some(www.path().to_path_buf());
    let mut variants = vec![
        (
            chapter,
            vec![
                "proxy_cache_lock on;",
                "proxy_cache_use_stale error timeout updating",
            ],
        ),
        (
            everything_off,
            vec![
                "proxy_cache_lock off;",
                "proxy_cache_use_stale off;",
                "proxy_cache_background_update off;",
                "proxy_cache_revalidate off;",
                "access_log /",
            ],
        ),
        (with_static, vec!["location /static/"]),
    ];
    if purge_module().is_some() {
        let mut with_purge = EdgeConfig::new(origin);
        with_purge.purge = true;
        variants.push((with_purge, vec!["load_module", "proxy_cache_purge edge"]));
    }
    for (config, lines) in variants {
        // `spawn` runs `nginx -t` first and fails with nginx's words.
        let edge = config
            .spawn(None)
            .await
            .unwrap_or_else(|e| panic!("{config:?}: {e:#}"));
        let conf = edge.conf();
        for line in lines {
            assert!(conf.contains(line), "{line:?} missing from\n{conf}");
        }
        let got = fetch(&s.client, &format!("{}/users/1", edge.base_url()), &[]).await;
        assert_eq!((got.status, got.cache.as_str()), (StatusCode::OK, "MISS"));
        if config.static_root.is_some() {
            let file = fetch(
                &s.client,
                &format!("{}/static/hello.txt", edge.base_url()),
                &[],
            )
            .await;
            assert_eq!(
                (file.status, file.body.as_str()),
                (StatusCode::OK, "hello\n")
            );
        }
        if config.access_log {
            // nginx writes the line after the response has gone out: the
            // client may read the file first. Re-read it, for 2 s at most.
            let path = edge.dir().join("access.log");
            let deadline = Instant::now() + Duration::from_secs(2);
            let log = loop {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                if log.contains("/users/1 200 MISS") || Instant::now() > deadline {
                    break log;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(log.contains("/users/1 200 MISS"), "the access log: {log:?}");
        }
    }
}

/// nginx reads `Cache-Control`, not `CDN-Cache-Control` (RFC 9213): a
/// response that only the CDN header would let a shared cache store is not
/// stored. A CDN that implements RFC 9213 (Cloudflare, Fastly, Akamai)
/// would serve the second request from its cache.
#[tokio::test]
async fn nginx_ignores_cdn_cache_control() {
    if !can_spawn("nginx_ignores_cdn_cache_control") {
        return;
    }
    let reached = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = reached.clone();
    let origin = axum::Router::new().route(
        "/cdn-only",
        axum::routing::get(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                (
                    [
                        ("cache-control", "no-store"),
                        ("cdn-cache-control", "max-age=60"),
                    ],
                    "for CDNs only",
                )
            }
        }),
    );
    let origin = spawn_server(origin, 0).await.expect("the origin serves");
    let edge = EdgeConfig::new(origin.addr)
        .spawn(None)
        .await
        .expect("nginx");
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("a client");
    let url = format!("{}/cdn-only", edge.base_url());
    for _ in 0..2 {
        let got = fetch(&client, &url, &[]).await;
        assert_eq!((got.status, got.cache.as_str()), (StatusCode::OK, "MISS"));
    }
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 2);
}
