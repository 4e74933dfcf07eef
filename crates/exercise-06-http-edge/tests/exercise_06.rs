//! Exercise 6's checks. Each failure message says what to look at.
//!
//! The first tests read your headers through the router (no socket), on a
//! schema of the test's own on the shared PostgreSQL. The last two put a
//! real nginx, the lesson's edge spawned privately, in front of your origin
//! on loopback, count the requests that reach the origin, and read the
//! edge's verdict in `X-Cache-Status`. No test asserts on a duration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use exercise_06_http_edge::{AppState, Lifetimes, router};
use lab::Kind;
use lab::edge::Nginx;
use lab::http::Running;
use lab::isolate::PgSchema;
use lab::testing::Reply;
use lesson_06_http_edge::edge::{EdgeConfig, UseStale};
use tower::ServiceExt;

/// Lifetimes unlike the chapter's (and unlike each other), so a header
/// with the chapter's numbers typed in, or two fields swapped, is caught.
fn odd_lifetimes() -> Lifetimes {
    Lifetimes {
        browser: Duration::from_secs(11),
        edge: Duration::from_secs(61),
        stale_while_revalidate: Duration::from_secs(31),
        stale_if_error: Duration::from_secs(301),
    }
}

/// A schema of the test's own on the shared PostgreSQL, users 1 to 100.
struct Db {
    schema: PgSchema,
    // Last: fields drop in order, and when the harness spawned this
    // PostgreSQL, the schema must be dropped while the server still runs.
    _pg: lab::Server,
}

async fn db() -> Db {
    let pg = lab::discover(Kind::Postgres)
        .await
        .expect("the tests need a PostgreSQL server; `just doctor` shows what was found");
    let schema = PgSchema::create(pg.url())
        .await
        .expect("the tests could not create their schema (not your code)");
    lab::seed::ensure_users_pg(schema.pool(), 100)
        .await
        .expect("the tests could not seed their users (not your code)");
    Db { schema, _pg: pg }
}

impl Db {
    fn state(&self, lifetimes: Lifetimes) -> AppState {
        AppState {
            lifetimes,
            ..AppState::new(self.schema.pool().clone())
        }
    }
}

/// `GET uri` through the router, with `If-None-Match` when given.
async fn get(state: &AppState, uri: &str, if_none_match: Option<&str>) -> Reply {
    let mut req = Request::builder().uri(uri);
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    let req = req.body(Body::empty()).expect("a valid request");
    let resp = match router(state.clone()).oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("the body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `Cache-Control`'s directives: `public` → `None`, `max-age=10` → `Some("10")`.
fn directives(cache_control: &str) -> BTreeMap<String, Option<String>> {
    cache_control
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (d.to_ascii_lowercase(), None),
        })
        .collect()
}

#[tokio::test]
async fn a_user_says_how_long_browsers_and_the_edge_may_keep_it() {
    let db = db().await;
    let state = db.state(odd_lifetimes());
    let r = get(&state, "/users/5", None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "GET /users/5 should answer 200 with user 5: {}",
        r.body
    );
    assert_eq!(
        r.json()["email"],
        lab::seed::email_for(5),
        "the body should be user 5's JSON, unchanged: send the `body` you are given"
    );
    let cc = r.header("cache-control");
    assert!(
        !cc.is_empty(),
        "the answer has no `Cache-Control` header, so no cache knows how long it may keep it: \
         insert one (`headers.insert(header::CACHE_CONTROL, value)`)"
    );
    let d = directives(cc);
    for forbidden in ["private", "no-store", "no-cache"] {
        assert!(
            !d.contains_key(forbidden),
            "`Cache-Control: {cc}` says `{forbidden}`, so the edge may not serve it from its cache. \
             User 5's page is the same for whoever asks: it is `public` (keep `private` for a page \
             that differs per user, like the lesson's /me)"
        );
    }
    assert!(
        d.contains_key("public"),
        "`Cache-Control: {cc}` lacks `public`: say that shared caches (the edge, a CDN) may keep it"
    );
    let l = &state.lifetimes;
    for (name, want, field) in [
        ("max-age", l.browser, "lifetimes.browser"),
        ("s-maxage", l.edge, "lifetimes.edge"),
        (
            "stale-while-revalidate",
            l.stale_while_revalidate,
            "lifetimes.stale_while_revalidate",
        ),
        (
            "stale-if-error",
            l.stale_if_error,
            "lifetimes.stale_if_error",
        ),
    ] {
        let want = want.as_secs().to_string();
        match d.get(name) {
            Some(Some(got)) if *got == want => {}
            Some(got) => panic!(
                "`Cache-Control: {cc}` has `{name}={}`; this test's lifetimes want `{name}={want}` \
                 (`{field}.as_secs()`): write the numbers from the `lifetimes` you are given",
                got.as_deref().unwrap_or("")
            ),
            None => panic!(
                "`Cache-Control: {cc}` lacks `{name}={want}` (from `{field}`). {}",
                match name {
                    "max-age" => "It is how long a browser keeps the page without asking.",
                    "s-maxage" =>
                        "It is how long the edge keeps it (shared caches read it instead of max-age).",
                    "stale-while-revalidate" => {
                        "It lets the edge answer an expired copy at once while it refreshes it."
                    }
                    _ => "It lets the edge answer its expired copy while your origin fails.",
                }
            ),
        }
    }
}

#[tokio::test]
async fn the_etag_is_strong_stable_and_follows_the_body() {
    let db = db().await;
    let state = db.state(Lifetimes::default());
    let first = get(&state, "/users/5", None).await;
    let tag = first.header("etag").to_string();
    assert!(
        !tag.is_empty(),
        "the 200 has no `ETag`, so a cache cannot ask \"has it changed?\": \
         `headers.typed_insert(etag_of(&body))`"
    );
    assert!(
        !tag.starts_with("W/"),
        "`ETag: {tag}` is weak (`W/`); a tag computed from the exact bytes is a strong one: \
         `etag_of(&body)` as it is"
    );
    let again = get(&state, "/users/5", None).await;
    assert_eq!(
        again.header("etag"),
        tag,
        "two reads of the same user 5 gave two ETags: the tag must follow the body, and \
         the body did not change"
    );
    let other = get(&state, "/users/6", None).await;
    assert_ne!(
        other.header("etag"),
        tag,
        "user 5 and user 6 have different bodies but the same `ETag: {tag}`: compute it \
         from the body you send (`etag_of(&body)`), not from something they share"
    );
}

#[tokio::test]
async fn a_matching_if_none_match_is_a_304_without_a_body() {
    let db = db().await;
    let state = db.state(odd_lifetimes());
    let first = get(&state, "/users/5", None).await;
    let tag = first.header("etag").to_string();
    assert!(
        !tag.is_empty(),
        "the 200 has no `ETag`: `headers.typed_insert(etag_of(&body))`"
    );

    let same = get(&state, "/users/5", Some(&tag)).await;
    assert_eq!(
        same.status,
        StatusCode::NOT_MODIFIED,
        "a GET with `If-None-Match: {tag}`, the tag of the body it would get, should be answered \
         `304 Not Modified`, not {}: the client already has these bytes (read what \
         `precondition_passes` returns when the tag matches)",
        same.status
    );
    assert!(
        same.body.is_empty(),
        "a 304 has no body (the point is not to send it again); it sent {} bytes",
        same.body.len()
    );
    assert_eq!(
        same.header("etag"),
        tag,
        "the 304 should carry the same `ETag` as the 200: the cache that asked keeps its copy \
         under that tag"
    );
    assert_eq!(
        same.header("cache-control"),
        first.header("cache-control"),
        "the 304 should carry the same `Cache-Control` as the 200: the cache that asked takes \
         its copy's new lifetime from it"
    );

    let stale_tag = "\"not-this-body\"";
    let other = get(&state, "/users/5", Some(stale_tag)).await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "a GET with `If-None-Match: {stale_tag}`, a tag of some other body, must get the full \
         200 (the client's copy is not this one), not {}",
        other.status
    );
    assert_eq!(other.json()["id"], 5, "that 200 should carry user 5's JSON");
}

#[tokio::test]
async fn a_changed_user_gets_a_new_etag_and_the_new_body() {
    let db = db().await;
    let state = db.state(Lifetimes::default());
    let before = get(&state, "/users/7", None).await;
    let old_tag = before.header("etag").to_string();
    assert!(
        !old_tag.is_empty(),
        "the 200 has no `ETag`: `headers.typed_insert(etag_of(&body))`"
    );
    // Another service renames user 7: same length, different bytes.
    sqlx::query("UPDATE users SET name = upper(name) WHERE id = 7")
        .execute(db.schema.pool())
        .await
        .expect("the tests could not update user 7 (not your code)");
    let new_name = lab::seed::name_for(7).to_uppercase();

    let after = get(&state, "/users/7", Some(&old_tag)).await;
    let why = if after.header("etag") == old_tag {
        "the ETag must change whenever the body does: compute it from the body"
    } else {
        "your 304 carries a new tag, so you knew the body changed: answer 304 only when \
         `If-None-Match` names the body's tag (read what `precondition_passes` returns then)"
    };
    assert_eq!(
        after.status,
        StatusCode::OK,
        "user 7 was renamed, and a client holding the old page (`If-None-Match: {old_tag}`) got \
         {} instead of the new 200: {why}",
        after.status
    );
    assert_eq!(
        after.json()["name"],
        new_name,
        "the 200 after the rename should carry the new name"
    );
    let new_tag = after.header("etag").to_string();
    assert_ne!(
        new_tag, old_tag,
        "user 7 was renamed but its `ETag` stayed {old_tag}: a cache revalidating with it would \
         be told its old copy is still good"
    );
    let again = get(&state, "/users/7", Some(&new_tag)).await;
    assert_eq!(
        again.status,
        StatusCode::NOT_MODIFIED,
        "with the new tag (`If-None-Match: {new_tag}`) the answer should be 304 again, not {}",
        again.status
    );
}

#[tokio::test]
async fn bad_ids_are_400_and_unknown_ids_404_never_cached_long() {
    let db = db().await;
    let state = db.state(Lifetimes::default());
    let bad = get(&state, "/users/abc", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.header("cache-control"), "no-store");
    let missing = get(&state, "/users/100000", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert_eq!(missing.header("cache-control"), "public, max-age=5");
}

// ---- Through a real edge -------------------------------------------------

/// The requests that reached the origin (the edge's misses and
/// revalidations), and how many of them your origin answered 304.
#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    not_modified: AtomicU64,
}

async fn count(State(counts): State<Arc<Counts>>, req: Request, next: Next) -> Response {
    counts.calls.fetch_add(1, Ordering::SeqCst);
    let resp = next.run(req).await;
    if resp.status() == StatusCode::NOT_MODIFIED {
        counts.not_modified.fetch_add(1, Ordering::SeqCst);
    }
    resp
}

/// Your origin on a loopback port, a private nginx in front of it.
struct Edge {
    nginx: Nginx,
    origin: Option<Running>,
    counts: Arc<Counts>,
    client: reqwest::Client,
    _db: Db,
}

struct EdgeReply {
    status: u16,
    cache: String,
    etag: String,
    cache_control: String,
    body: String,
}

async fn edge(test: &str, lifetimes: Lifetimes, use_stale: UseStale) -> Edge {
    lab::edge::require_spawn(test);
    let db = db().await;
    let counts = Arc::new(Counts::default());
    let app = router(db.state(lifetimes))
        .layer(axum::middleware::from_fn_with_state(counts.clone(), count));
    let origin = lab::http::spawn_server(app, 0)
        .await
        .expect("the tests could not start your origin (not your code)");
    let mut config = EdgeConfig::new(origin.addr);
    config.use_stale = use_stale;
    let nginx = config
        .spawn(None)
        .await
        .expect("the tests could not start nginx (not your code)");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    Edge {
        nginx,
        origin: Some(origin),
        counts,
        client,
        _db: db,
    }
}

impl Edge {
    async fn get(&self, path: &str, if_none_match: Option<&str>) -> EdgeReply {
        let mut req = self.client.get(format!("{}{path}", self.nginx.base_url()));
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} through the edge failed (not your code): {e}"));
        let h = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (status, cache, etag) = (resp.status().as_u16(), h("x-cache-status"), h("etag"));
        let cache_control = h("cache-control");
        let body = resp.text().await.unwrap_or_default();
        EdgeReply {
            status,
            cache,
            etag,
            cache_control,
            body,
        }
    }

    fn origin_calls(&self) -> u64 {
        self.counts.calls.load(Ordering::SeqCst)
    }

    fn origin_304s(&self) -> u64 {
        self.counts.not_modified.load(Ordering::SeqCst)
    }

    /// Asks until the edge's copy is past its `s-maxage` (waiting, not
    /// asserting: a busy machine only makes it take longer).
    async fn get_after_expiry(&self, path: &str) -> EdgeReply {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.get(path, None).await;
            assert_ne!(
                r.cache,
                "MISS",
                "the edge had no copy of {path} left to serve or revalidate (`X-Cache-Status: \
                 MISS`) after {} request(s) reached the origin: your response is not cacheable \
                 by a shared cache. Is `s-maxage` or `public` missing, or does it say `private`?",
                self.origin_calls()
            );
            if r.cache != "HIT" {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "15 s after your response's s-maxage=1, the edge still calls its copy fresh"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn the_edge_answers_the_second_request_without_the_origin() {
    let test = "the_edge_answers_the_second_request_without_the_origin";
    let e = edge(test, Lifetimes::default(), UseStale::Directive).await;
    let first = e.get("/users/5", None).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "MISS"),
        "the first GET /users/5 through the edge should be a 200 the edge had to fetch (MISS): {}",
        first.body
    );
    let second = e.get("/users/5", None).await;
    assert_eq!(
        (e.origin_calls(), second.cache.as_str()),
        (1, "HIT"),
        "the edge asked the origin {} times for two GETs of user 5, and said `X-Cache-Status: {}` \
         the second time: your response is not cacheable by a shared cache. Is `s-maxage` or \
         `public` missing, or does it say `private`?",
        e.origin_calls(),
        second.cache
    );
    assert!(
        directives(&first.cache_control).contains_key("s-maxage"),
        "the edge kept user 5, but only by its own fallback for responses that say nothing \
         (`proxy_cache_valid 200 10s`): your `Cache-Control` is {:?}. Say how long the edge may \
         keep it with `s-maxage` (from `lifetimes.edge`)",
        first.cache_control
    );
    assert!(
        !first.etag.is_empty(),
        "the edge passed on no `ETag` from your origin: without one it cannot answer a \
         revalidation with a 304 (`headers.typed_insert(etag_of(&body))`)"
    );
    let revalidated = e.get("/users/5", Some(&first.etag)).await;
    assert_eq!(
        (revalidated.status, e.origin_calls()),
        (304, 1),
        "a client revalidating with your `ETag: {}` should get a 304 from the edge's copy, \
         without the origin",
        first.etag
    );
}

#[tokio::test]
async fn with_the_origin_down_the_edge_serves_stale_because_your_header_says_so() {
    let test = "with_the_origin_down_the_edge_serves_stale_because_your_header_says_so";
    // Fresh for 1 s at the edge; no stale-while-revalidate (nginx would
    // also serve stale on errors within that window), so only
    // stale-if-error can keep the copy alive. And the edge's own
    // `proxy_cache_use_stale` is off: only your header decides.
    let lifetimes = Lifetimes {
        browser: Duration::from_secs(1),
        edge: Duration::from_secs(1),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::from_secs(120),
    };
    let mut e = edge(test, lifetimes, UseStale::OriginHeaders).await;
    let first = e.get("/users/5", None).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "MISS"),
        "GET /users/5 through the edge: {}",
        first.body
    );
    assert!(
        directives(&first.cache_control).get("s-maxage") == Some(&Some("1".into())),
        "this test gives your origin lifetimes with `s-maxage=1`, so that the edge's copy expires \
         in a second; your `Cache-Control` is {:?} (write `s-maxage` from `lifetimes.edge`)",
        first.cache_control
    );
    // No "then a HIT" check here: with s-maxage=1 a slow machine could
    // let the copy expire before the second request. The test above
    // proves the HIT; this one only needs a copy, which `MISS` below
    // would say is missing.

    // The origin goes away: a crash, a bad deploy.
    if let Some(origin) = e.origin.take() {
        origin.shutdown().await.expect("stop the origin");
    }
    let after = e.get_after_expiry("/users/5").await;
    assert_eq!(
        (after.status, after.cache.as_str()),
        (200, "STALE"),
        "with the origin down and the copy expired, the edge answered {} (`X-Cache-Status: {}`). \
         It holds a copy a second old, and the edge here follows your headers only: \
         `stale-if-error=120` in `Cache-Control` lets it serve that copy while the origin fails",
        after.status,
        after.cache
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&after.body)
            .ok()
            .map(|u| u["id"].clone()),
        Some(5.into()),
        "the stale answer should be user 5's page: {}",
        after.body
    );
}

#[tokio::test]
async fn the_edge_revalidates_an_expired_copy_with_your_etag() {
    let test = "the_edge_revalidates_an_expired_copy_with_your_etag";
    // Fresh for 1 s, no stale windows, and the edge follows your headers
    // only: an expired copy makes the edge ask your origin at once, with
    // `If-None-Match` (its `proxy_cache_revalidate` is on).
    let lifetimes = Lifetimes {
        browser: Duration::from_secs(1),
        edge: Duration::from_secs(1),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
    };
    let e = edge(test, lifetimes, UseStale::OriginHeaders).await;
    let first = e.get("/users/5", None).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "MISS"),
        "GET /users/5 through the edge: {}",
        first.body
    );
    assert!(
        !first.etag.is_empty(),
        "the edge passed on no `ETag` from your origin, so it has nothing to revalidate with: \
         `headers.typed_insert(etag_of(&body))`"
    );
    // No "then a HIT" check here: with s-maxage=1 a slow machine could
    // let the copy expire before the second request. The test above
    // proves the HIT; this one only needs a copy, which `MISS` below
    // would say is missing.

    let after = e.get_after_expiry("/users/5").await;
    assert_eq!(
        (after.status, after.cache.as_str(), e.origin_304s()),
        (200, "REVALIDATED", 1),
        "the edge's copy of user 5 expired, and the edge asked your origin again with \
         `If-None-Match: {}`. User 5 has not changed, so the answer should be your 304, which \
         costs no body, and the edge serves its copy (`X-Cache-Status: REVALIDATED`); it said {} \
         ({} answered 304)",
        first.etag,
        after.cache,
        e.origin_304s()
    );
    assert_eq!(
        after.body, first.body,
        "after a 304 the edge serves the copy it had"
    );
}
