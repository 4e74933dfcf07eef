//! The origin: an axum service whose responses say how to cache them.
//!
//! - `GET /users/{id}`: public and shared. `Cache-Control` and
//!   `CDN-Cache-Control` from [`Lifetimes`], a strong `ETag` from the body,
//!   `Last-Modified` from the row, and a `304 Not Modified` with no body for
//!   a matching `If-None-Match` (or, without one, `If-Modified-Since`).
//!   A query string (`?v=7`) is ignored here and is part of the edge's
//!   cache key: a versioned URL, the portable purge.
//! - `GET /me`: the user named by `X-User-Id` (a stand-in for a session
//!   cookie). `private, no-store` and `Vary: X-User-Id` on every answer,
//!   errors included: no shared cache may give one user's page to another.
//! - `GET /big`: a large body (`ORIGIN_BIG_BYTES`, 1 MiB) that the edge
//!   must revalidate about every second (`s-maxage=1`), to measure what a
//!   304 saves.
//! - `GET /metrics`: how many requests reached the origin, per route: the
//!   count every experiment reads.
//!
//! [`OriginHandle::set_fault`] makes every route answer 500 (an origin that
//! is up but broken); stopping the server is the other outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::headers::{HeaderMapExt, IfModifiedSince, IfNoneMatch, LastModified};
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::metrics::Registry;
use serde::Serialize;
use sqlx::PgPool;

use crate::policy::{self, Lifetimes, etag_of};

/// Requests that reached the origin, per route.
pub const USERS: &str = "origin_users_requests_total";
pub const ME: &str = "origin_me_requests_total";
pub const BIG: &str = "origin_big_requests_total";
/// Of those, answered 304 Not Modified.
pub const NOT_MODIFIED: &str = "origin_not_modified_total";

/// What the origin is configured with.
#[derive(Clone, Debug)]
pub struct OriginSettings {
    pub lifetimes: Lifetimes,
    /// Simulated database latency per query (spent in PostgreSQL).
    pub latency: Duration,
    /// The longest a query may take before the origin answers 503.
    pub db_timeout: Duration,
    /// The size of `GET /big`.
    pub big_bytes: usize,
}

impl Default for OriginSettings {
    fn default() -> Self {
        OriginSettings {
            lifetimes: Lifetimes::default(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(5),
            big_bytes: 1 << 20,
        }
    }
}

/// The shared state of the origin's handlers.
#[derive(Clone, Debug)]
pub struct OriginState {
    pool: PgPool,
    settings: Arc<OriginSettings>,
    metrics: Registry,
    failing: Arc<AtomicBool>,
    big: Arc<(Vec<u8>, axum_extra::headers::ETag)>,
}

/// What a test or an experiment holds to count and to break the origin.
#[derive(Clone, Debug)]
pub struct OriginHandle {
    metrics: Registry,
    failing: Arc<AtomicBool>,
}

impl OriginHandle {
    /// Requests that reached the origin on one route ([`USERS`], [`ME`], …).
    pub fn count(&self, route: &str) -> u64 {
        self.metrics.value(route)
    }

    /// `true`: every route answers 500, as an origin with a bad deploy does.
    pub fn set_fault(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

/// The origin's router and the handle that counts and breaks it.
pub fn origin(pool: PgPool, settings: OriginSettings) -> anyhow::Result<(Router, OriginHandle)> {
    let metrics = Registry::new(&[USERS, ME, BIG, NOT_MODIFIED], &[])?;
    let failing = Arc::new(AtomicBool::new(false));
    let big = big_body(settings.big_bytes);
    let big_tag = etag_of(&big);
    let state = OriginState {
        pool,
        settings: Arc::new(settings),
        metrics: metrics.clone(),
        failing: failing.clone(),
        big: Arc::new((big, big_tag)),
    };
    let router = Router::new()
        .route("/users/{id}", get(get_user))
        .route(ME_PATH, get(get_me))
        .route("/big", get(get_big))
        .route("/metrics", get(get_metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            fail_when_asked,
        ))
        // Outermost, so it has the last word over the error mapping and
        // the fault switch above: see `keep_me_private`.
        .layer(axum::middleware::from_fn(keep_me_private))
        .with_state(state);
    Ok((lab::http::finish(router), OriginHandle { metrics, failing }))
}

/// A user as the origin serves it, with the row's timestamp for `Last-Modified`.
#[derive(Debug, Serialize)]
struct UserDoc {
    id: i64,
    name: String,
    email: String,
}

// ANCHOR: get_user
#[tracing::instrument(skip_all, fields(id))]
async fn get_user(
    State(s): State<OriginState>,
    id: Result<Path<String>, PathRejection>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    s.metrics.bump(USERS);
    let id = user_id_from_path(id)?;
    tracing::Span::current().record("id", id);
    let row = db_call(
        s.settings.db_timeout,
        fetch_dated_user(&s.pool, id, s.settings.latency),
    )
    .await?;
    let Some((user, created_at)) = row else {
        let mut resp = ApiError::NotFound(format!("user {id} not found")).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, policy::NOT_FOUND);
        return Ok(resp);
    };
    let body = serde_json::to_vec(&user).context("Failed to serialise a user")?;
    let etag = etag_of(&body);
    // The rows of `users` are written once (`created_at`); a table whose
    // rows change would carry an `updated_at`, and that goes here.
    let last_modified = LastModified::from(created_at);
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, s.settings.lifetimes.cache_control());
    headers.insert(
        "cdn-cache-control",
        s.settings.lifetimes.cdn_cache_control(),
    );
    headers.typed_insert(etag.clone());
    headers.typed_insert(last_modified);
    // RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since counts only
    // when there is none (a second's resolution cannot tell two writes apart).
    let unchanged = match validators(&request) {
        (Some(inm), _) => !inm.precondition_passes(&etag),
        (None, Some(ims)) => !ims.is_modified(created_at),
        (None, None) => false,
    };
    if unchanged {
        s.metrics.bump(NOT_MODIFIED);
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((headers, body).into_response())
}
// ANCHOR_END: get_user

/// The validators the client holds: `If-None-Match` and `If-Modified-Since`,
/// `None` when absent or malformed (RFC 9110 §13.1.3: an invalid date is
/// ignored). Read with `typed_get`, not with `Option<TypedHeader<…>>`
/// extractors: axum-extra decodes a *missing* `If-None-Match` as an empty
/// list, which is `Some` (hyperium/headers#145), so `If-Modified-Since`
/// would never be looked at; and a malformed one would be a plain-text 400.
fn validators(request: &HeaderMap) -> (Option<IfNoneMatch>, Option<IfModifiedSince>) {
    (request.typed_get(), request.typed_get())
}

/// The per-user route.
const ME_PATH: &str = "/me";

// ANCHOR: get_me
/// The page of the user named by `X-User-Id`: one user's data, never shared.
/// Its headers are set by [`keep_me_private`], on every answer, not here.
async fn get_me(State(s): State<OriginState>, headers: HeaderMap) -> Result<Response, ApiError> {
    s.metrics.bump(ME);
    let raw = headers
        .get("x-user-id")
        .ok_or_else(|| ApiError::BadRequest("send X-User-Id: <your user id>".into()))?;
    let id = lab::http::parse_user_id(raw.to_str().unwrap_or("?"))?;
    let row = db_call(
        s.settings.db_timeout,
        fetch_dated_user(&s.pool, id, s.settings.latency),
    )
    .await?;
    let (user, _) = row.ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    Ok(axum::Json(user).into_response())
}

/// Every answer on `/me`, errors included (400, 404, 500, 503), says
/// `private, no-store` and `Vary: x-user-id`. Not only the 200: a 404 for an
/// unknown user without them was stored by the edge under the key `/me`
/// (its `proxy_cache_valid 404`) and served to every user; and while it
/// stayed stale, a user's `private` 200 could not replace it. An error on a
/// per-user route is per-user too.
async fn keep_me_private(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let per_user = req.uri().path() == ME_PATH;
    let mut resp = next.run(req).await;
    if per_user {
        let h = resp.headers_mut();
        // `private`: no shared cache may store it; `no-store`: nobody may.
        h.insert(header::CACHE_CONTROL, policy::PRIVATE);
        // Belt and braces for a cache that ignores `private`: the response
        // differs per X-User-Id, so a key without it would be wrong anyway.
        h.insert(header::VARY, HeaderValue::from_static("x-user-id"));
    }
    resp
}
// ANCHOR_END: get_me

/// A large body the edge must revalidate about every second: what a 304
/// saves, measured. `s-maxage=1`, not 0: nginx does not store a response
/// with `s-maxage=0` at all, so there would be nothing to revalidate; and
/// not `no-cache`, which nginx does not store either.
async fn get_big(State(s): State<OriginState>, request: HeaderMap) -> Response {
    s.metrics.bump(BIG);
    let (body, etag) = &*s.big;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, s-maxage=1"),
    );
    headers.typed_insert(etag.clone());
    if let (Some(inm), _) = validators(&request)
        && !inm.precondition_passes(etag)
    {
        s.metrics.bump(NOT_MODIFIED);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    (headers, body.clone()).into_response()
}

async fn get_metrics(State(s): State<OriginState>) -> Response {
    let mut resp = s.metrics.response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, policy::NO_STORE);
    resp
}

/// When the fault is on, every route but `/metrics` answers 500.
async fn fail_when_asked(
    State(s): State<OriginState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if s.failing.load(Ordering::SeqCst) && req.uri().path() != "/metrics" {
        if req.uri().path().starts_with("/users/") {
            s.metrics.bump(USERS);
        }
        let mut resp = (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({ "error": "the origin is failing (fault injected)" })),
        )
            .into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, policy::NO_STORE);
        return resp;
    }
    let mut resp = next.run(req).await;
    // An error the handler returned (400, 503) must not be cached.
    let status = resp.status();
    if (status.is_client_error() && status != StatusCode::NOT_FOUND) || status.is_server_error() {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, policy::NO_STORE);
    }
    resp
}

/// A user and the row's `created_at`, spending `latency` inside the
/// database first (as `lab::users::fetch_user` does).
#[tracing::instrument(skip(pool, latency))]
async fn fetch_dated_user(
    pool: &PgPool,
    id: i64,
    latency: Duration,
) -> anyhow::Result<Option<(UserDoc, SystemTime)>> {
    type Row = (Option<i64>, Option<String>, Option<String>, Option<f64>);
    // The sleep is the outer side of a LEFT JOIN, so a 404 is as slow as a 200.
    let row: Option<Row> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, extract(epoch FROM u.created_at)::float8 \
         FROM (SELECT pg_sleep($2)) AS slow LEFT JOIN users u ON u.id = $1",
    )
    .bind(id)
    .bind(latency.as_secs_f64())
    .fetch_optional(pool)
    .await
    .with_context(|| format!("Failed to fetch user {id}"))?;
    Ok(match row {
        Some((Some(id), Some(name), Some(email), Some(epoch))) => Some((
            UserDoc { id, name, email },
            SystemTime::UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0)),
        )),
        _ => None,
    })
}

/// Deterministic bytes: the same body, so the same ETag, on every start.
fn big_body(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"edge-cache "[i % 11]).collect()
}
