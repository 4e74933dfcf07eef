//! Wrong: the ETag names the code's version (`CARGO_PKG_VERSION`), as an
//! API's "representation version" might, not the body. A deploy changes
//! it; a changed user does not. So a client (or the edge, revalidating)
//! that holds user 5's old page sends its tag, the tag still matches, and
//! the answer is 304: keep the old name, for as long as this build runs.

use axum::response::Response;
use axum_extra::headers::{ETag, IfNoneMatch};
use lesson_06_http_edge::policy::Lifetimes;

use super::{cache_control, respond};

pub fn cacheable(
    body: Vec<u8>,
    lifetimes: &Lifetimes,
    if_none_match: Option<&IfNoneMatch>,
) -> Response {
    let etag: ETag = format!("\"v{}\"", env!("CARGO_PKG_VERSION"))
        .parse()
        .unwrap_or_else(|_| unreachable!("a quoted version is a valid ETag"));
    respond(cache_control(lifetimes), etag, body, if_none_match)
}
