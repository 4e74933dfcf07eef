//! The origin alone, through its router (no socket, no edge): every header
//! it sends, the 304 paths, its errors' `Cache-Control`, and, computed by
//! `http-cache-semantics` as a shared cache and as a browser would, how
//! long each response may be reused. Headers, statuses and counts only.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use axum_extra::headers::{ETag, HeaderMapExt, IfModifiedSince, LastModified};
use http_cache_semantics::{CacheOptions, CachePolicy};
use lab::testing::{Reply, call_with_headers};
use lesson_06_http_edge::origin::{BIG, ME, NOT_MODIFIED, OriginSettings, USERS};
use lesson_06_http_edge::policy::Lifetimes;

mod common;
use common::{Db, settings};

async fn get(router: &Router, uri: &str, headers: &[(&str, &str)]) -> Reply {
    call_with_headers(router.clone(), "GET", uri, headers).await
}

/// The chapter's `Cache-Control` for the shared routes.
fn policy() -> String {
    Lifetimes::default()
        .cache_control()
        .to_str()
        .expect("ASCII")
        .to_string()
}

/// A date as an HTTP header writes it (`If-Modified-Since: <date>`).
fn http_date(t: SystemTime) -> String {
    let mut h = HeaderMap::new();
    h.typed_insert(IfModifiedSince::from(t));
    h["if-modified-since"].to_str().expect("ASCII").to_string()
}

/// The `Last-Modified` a reply carries, as a time.
fn last_modified(r: &Reply) -> SystemTime {
    let lm: LastModified = r.headers.typed_get().expect("a Last-Modified header");
    lm.into()
}

#[tokio::test]
async fn a_user_carries_every_caching_header() {
    let db = Db::new(5).await;
    let (router, origin) = db.origin(settings(Duration::ZERO));
    let first = get(&router, "/users/42", &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.json()["id"], 42);
    assert_eq!(first.header("content-type"), "application/json");
    assert_eq!(first.header("cache-control"), policy());
    assert_eq!(
        first.header("cache-control"),
        "public, max-age=10, s-maxage=60, stale-while-revalidate=30, stale-if-error=300",
        "the chapter quotes this header"
    );
    assert_eq!(
        first.header("cdn-cache-control"),
        "max-age=60, stale-while-revalidate=30, stale-if-error=300"
    );
    let etag = first.header("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "a strong ETag is a quoted string without W/: {etag:?}"
    );
    let _typed: ETag = first.headers.typed_get().expect("a valid ETag");
    // `users.created_at` of the seed: 2024-01-01 plus 17 s per id.
    assert_eq!(
        last_modified(&first),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200 + 42 * 17)
    );

    let second = get(&router, "/users/42", &[]).await;
    assert_eq!(second.header("etag"), etag, "the same body, the same ETag");
    assert_eq!(second.body, first.body);
    let other = get(&router, "/users/43", &[]).await;
    assert_ne!(other.header("etag"), etag, "another body, another ETag");
    assert_eq!(origin.count(USERS), 3);
}

/// A conditional request: its headers, the status it should get, and why.
type Case<'a> = (&'a [(&'a str, &'a str)], StatusCode, &'a str);

#[tokio::test]
async fn conditional_requests_get_304_only_when_the_copy_is_current() {
    let db = Db::new(5).await;
    let (router, origin) = db.origin(settings(Duration::ZERO));
    let full = get(&router, "/users/42", &[]).await;
    let etag = full.header("etag").to_string();
    let modified = last_modified(&full);
    let at = http_date(modified);
    let after = http_date(modified + Duration::from_secs(3600));
    let before = http_date(modified - Duration::from_secs(3600));

    let cases: [Case; 8] = [
        (
            &[("if-none-match", &etag)],
            StatusCode::NOT_MODIFIED,
            "its own ETag",
        ),
        (
            &[("if-none-match", "\"other\"")],
            StatusCode::OK,
            "another ETag",
        ),
        (&[("if-none-match", "*")], StatusCode::NOT_MODIFIED, "`*`"),
        (
            &[("if-modified-since", &at)],
            StatusCode::NOT_MODIFIED,
            "IMS at Last-Modified",
        ),
        (
            &[("if-modified-since", &after)],
            StatusCode::NOT_MODIFIED,
            "IMS after Last-Modified",
        ),
        (
            &[("if-modified-since", &before)],
            StatusCode::OK,
            "IMS before Last-Modified",
        ),
        (
            &[("if-none-match", "\"other\""), ("if-modified-since", &at)],
            StatusCode::OK,
            "If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)",
        ),
        (
            &[("if-modified-since", "yesterday")],
            StatusCode::OK,
            "a malformed date is ignored (RFC 9110 §13.1.3), not a 400",
        ),
    ];
    for (headers, want, why) in cases {
        let r = get(&router, "/users/42", headers).await;
        assert_eq!(r.status, want, "{why}: {headers:?}");
        // A 304 carries what a cache needs to refresh its copy, no body.
        assert_eq!(r.header("etag"), etag, "{why}");
        assert_eq!(r.header("cache-control"), policy(), "{why}");
        if want == StatusCode::NOT_MODIFIED {
            assert_eq!(r.body, "", "a 304 has no body ({why})");
        } else {
            assert_eq!(r.body, full.body, "{why}");
        }
    }
    assert_eq!(origin.count(USERS), 9);
    assert_eq!(origin.count(NOT_MODIFIED), 4);
}

#[tokio::test]
async fn errors_carry_their_own_cache_control() {
    let db = Db::new(5).await;
    let (router, _origin) = db.origin(settings(Duration::ZERO));
    let missing = get(&router, "/users/999999", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("cache-control"), "public, max-age=5");
    assert!(missing.json()["error"].is_string());

    let long = "9".repeat(60 * 1024);
    for bad in ["abc", "-1", "0", "1.5", long.as_str()] {
        let r = get(&router, &format!("/users/{bad}"), &[]).await;
        let shown = &bad[..bad.len().min(10)];
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "id {shown:?}");
        assert_eq!(r.header("cache-control"), "no-store", "id {shown:?}");
        assert!(r.json()["error"].is_string(), "id {shown:?}: {}", r.body);
        assert!(r.body.len() < 200, "the error echoes a bounded prefix");
    }
}

#[tokio::test]
async fn me_is_one_users_page_and_never_shared() {
    let db = Db::new(5).await;
    let (router, origin) = db.origin(settings(Duration::ZERO));
    // Its errors are per-user too: `private, no-store` and the Vary on
    // every answer, or a cache may store one and serve it to everyone.
    let anonymous = get(&router, "/me", &[]).await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);
    assert!(anonymous.json()["error"].is_string());
    let bad = get(&router, "/me", &[("x-user-id", "seven")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = get(&router, "/me", &[("x-user-id", "999999")]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    for r in [&anonymous, &bad, &unknown] {
        assert_eq!(r.header("cache-control"), "private, no-store", "{}", r.body);
        assert_eq!(r.header("vary"), "x-user-id", "{}", r.body);
    }

    for id in [7, 8] {
        let r = get(&router, "/me", &[("x-user-id", &id.to_string())]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["id"], id);
        assert_eq!(r.header("cache-control"), "private, no-store");
        assert_eq!(r.header("vary"), "x-user-id");
    }
    assert_eq!(origin.count(ME), 5);
}

#[tokio::test]
async fn big_has_its_size_and_revalidates_to_304() {
    let db = Db::new(5).await;
    let settings = OriginSettings {
        big_bytes: 100_000,
        ..settings(Duration::ZERO)
    };
    let (router, origin) = db.origin(settings);
    let full = get(&router, "/big", &[]).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.body.len(), 100_000);
    assert_eq!(full.header("content-length"), "100000");
    assert_eq!(
        full.header("cache-control"),
        "public, max-age=0, s-maxage=1"
    );
    let etag = full.header("etag").to_string();
    let again = get(&router, "/big", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.body, "");
    assert_eq!(again.header("etag"), etag);
    let stale = get(&router, "/big", &[("if-none-match", "\"old\"")]).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(origin.count(BIG), 3);
    assert_eq!(origin.count(NOT_MODIFIED), 1);
}

#[tokio::test]
async fn a_fault_answers_500_that_nobody_stores_and_counts() {
    let db = Db::new(5).await;
    let (router, origin) = db.origin(settings(Duration::ZERO));
    assert_eq!(get(&router, "/users/1", &[]).await.status, StatusCode::OK);
    origin.set_fault(true);
    for uri in ["/users/1", "/users/2"] {
        let r = get(&router, uri, &[]).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(r.header("cache-control"), "no-store", "{uri}");
        assert!(r.json()["error"].is_string());
    }
    let me = get(&router, "/me", &[("x-user-id", "7")]).await;
    assert_eq!(me.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(me.header("cache-control"), "private, no-store");
    // `/metrics` stays up: the experiments read the counts through it.
    assert_eq!(get(&router, "/metrics", &[]).await.status, StatusCode::OK);
    assert_eq!(origin.count(USERS), 3, "failed requests are counted too");
    origin.set_fault(false);
    assert_eq!(get(&router, "/users/1", &[]).await.status, StatusCode::OK);
    assert_eq!(origin.count(USERS), 4);
}

/// How long a cache may reuse `reply` without asking, as `http-cache-semantics`
/// computes it (RFC 9111), `None` when it may not store it at all.
fn lifetime(
    uri: &str,
    req_headers: &[(&str, &str)],
    reply: &Reply,
    shared: bool,
) -> Option<Duration> {
    let mut req = Request::get(uri);
    for (name, value) in req_headers {
        req = req.header(*name, *value);
    }
    let req = req.body(()).expect("a request");
    let mut res = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        res = res.header(name, value);
    }
    let res = res.body(()).expect("a response");
    let now = SystemTime::now();
    let options = CacheOptions {
        shared,
        ..CacheOptions::default()
    };
    let policy = CachePolicy::new_options(&req, &res, now, options);
    // Asked at the instant of the response: no time has passed, so the
    // time to live is the whole freshness lifetime.
    policy.is_storable().then(|| policy.time_to_live(now))
}

#[tokio::test]
async fn each_response_is_reusable_for_exactly_as_long_as_intended() {
    let db = Db::new(5).await;
    let (router, origin) = db.origin(settings(Duration::ZERO));
    let lifetimes = Lifetimes::default();
    let secs = Duration::from_secs;

    let user = get(&router, "/users/42", &[]).await;
    // The edge keeps it s-maxage (60 s); a browser max-age (10 s).
    assert_eq!(
        lifetime("/users/42", &[], &user, true),
        Some(lifetimes.edge)
    );
    assert_eq!(lifetime("/users/42", &[], &user, true), Some(secs(60)));
    assert_eq!(
        lifetime("/users/42", &[], &user, false),
        Some(lifetimes.browser)
    );
    assert_eq!(lifetime("/users/42", &[], &user, false), Some(secs(10)));

    let missing = get(&router, "/users/999999", &[]).await;
    assert_eq!(
        lifetime("/users/999999", &[], &missing, true),
        Some(secs(5))
    );
    assert_eq!(
        lifetime("/users/999999", &[], &missing, false),
        Some(secs(5))
    );

    // Stored, and fresh for 1 s at the edge (0 in a browser): nearly every
    // reuse is a revalidation.
    let big = get(&router, "/big", &[]).await;
    assert_eq!(lifetime("/big", &[], &big, true), Some(secs(1)));
    assert_eq!(lifetime("/big", &[], &big, false), Some(Duration::ZERO));

    let me = [("x-user-id", "7")];
    let mine = get(&router, "/me", &me).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(
        lifetime("/me", &me, &mine, true),
        None,
        "private: no shared cache"
    );
    assert_eq!(
        lifetime("/me", &me, &mine, false),
        None,
        "no-store: not even a browser"
    );

    let bad = get(&router, "/users/abc", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(lifetime("/users/abc", &[], &bad, true), None);
    assert_eq!(lifetime("/users/abc", &[], &bad, false), None);

    origin.set_fault(true);
    let failed = get(&router, "/users/42", &[]).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(lifetime("/users/42", &[], &failed, true), None);
    assert_eq!(lifetime("/users/42", &[], &failed, false), None);

    // A check that the computation can say "no": the same 200 without its
    // Cache-Control is only heuristically fresh (10% of its age since
    // Last-Modified), which is not the 60 s the origin means.
    let mut bare = user;
    bare.headers.remove("cache-control");
    assert_ne!(lifetime("/users/42", &[], &bare, true), Some(secs(60)));
}
