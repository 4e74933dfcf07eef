//! What the origin tells caches: how long a response is fresh, for whom,
//! and how long it may be served stale, in `Cache-Control` (RFC 9111, RFC
//! 5861) and `CDN-Cache-Control` (RFC 9213); and the validator (`ETag`) that
//! lets a cache ask "has it changed?" for the price of a 304.
//!
//! The header values are written here, not with `headers::CacheControl`:
//! that type has no `stale-while-revalidate` or `stale-if-error`, and those
//! two are this lesson's point.

use std::time::Duration;

use axum::http::HeaderValue;
use axum_extra::headers::ETag;

/// Lifetimes for the public, shared routes. The defaults are the chapter's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// `max-age`: how long a browser keeps it without asking, counted from
    /// when it got it (the edge sends no `Age`).
    pub browser: Duration,
    /// `s-maxage`: how long a shared cache (the edge) keeps it.
    pub edge: Duration,
    /// `stale-while-revalidate`: past freshness, served at once while one
    /// background request refreshes it.
    pub stale_while_revalidate: Duration,
    /// `stale-if-error`: past freshness, served when the origin fails.
    pub stale_if_error: Duration,
}

// ANCHOR: lifetimes
impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            // A browser keeps it 10 s before it asks again (the edge
            // answers that). It is not how soon an edit shows: the edge
            // keeps its copy 60 s, serves it up to 30 s more while it
            // refreshes, and nginx sends no `Age`, so the browser's 10 s
            // start on receipt however old the edge's copy was. An edit
            // shows within about 100 s (60 + 30 + 10); within 10 s after
            // a purge; at once only at a new URL (`?v=2`).
            browser: Duration::from_secs(10),
            // The edge keeps it 60 s: at 1,000 reads a second of one user,
            // the origin sees one in 60,000 of them.
            edge: Duration::from_secs(60),
            // Refresh in the background for 30 s past that: a hot key never
            // makes a reader wait for the origin.
            stale_while_revalidate: Duration::from_secs(30),
            // And serve the old copy for 5 minutes of origin trouble: stale
            // data beats an error page (the workshop's thesis, at the edge).
            stale_if_error: Duration::from_secs(300),
        }
    }
}
// ANCHOR_END: lifetimes

impl Lifetimes {
    // ANCHOR: cache_control
    /// `Cache-Control` for a response everyone may share.
    pub fn cache_control(&self) -> HeaderValue {
        header(format!(
            "public, max-age={}, s-maxage={}, stale-while-revalidate={}, stale-if-error={}",
            self.browser.as_secs(),
            self.edge.as_secs(),
            self.stale_while_revalidate.as_secs(),
            self.stale_if_error.as_secs()
        ))
    }

    /// `CDN-Cache-Control` (RFC 9213): the same for CDNs only. A CDN that
    /// reads it (Cloudflare documents that it does) ignores `Cache-Control`,
    /// which stays for browsers and other caches; nginx ignores it (a test
    /// shows it). Why send both: the chapter's "s-maxage implies
    /// proxy-revalidate".
    pub fn cdn_cache_control(&self) -> HeaderValue {
        header(format!(
            "max-age={}, stale-while-revalidate={}, stale-if-error={}",
            self.edge.as_secs(),
            self.stale_while_revalidate.as_secs(),
            self.stale_if_error.as_secs()
        ))
    }
    // ANCHOR_END: cache_control
}

/// `private, no-store`: for one user's eyes only. No shared cache may keep
/// it (`private`), and nothing may write it to disk (`no-store`).
pub const PRIVATE: HeaderValue = HeaderValue::from_static("private, no-store");

/// For a 404: an unknown id is cached briefly at the edge too, so a scraper
/// walking ids cannot make every miss an origin request; briefly, so a user
/// created a moment later is found soon.
pub const NOT_FOUND: HeaderValue = HeaderValue::from_static("public, max-age=5");

/// For errors: never cached. A 400 is the client's own mistake, and a 503
/// must not outlive the outage that caused it.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

fn header(s: String) -> HeaderValue {
    // Digits, letters, commas and spaces only: always a valid header value.
    HeaderValue::from_str(&s).unwrap_or(NO_STORE)
}

// ANCHOR: etag
/// A strong `ETag` computed from the body: equal bodies, equal tags; any
/// byte changed, another tag. It needs no version column and cannot drift
/// from what is sent. FNV-1a (64 bits) is enough: the tag is compared with
/// the one this same resource had before, not defended against forgery.
pub fn etag_of(body: &[u8]) -> ETag {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // A quoted hex string is always a valid entity-tag.
    format!("\"{hash:016x}-{:x}\"", body.len())
        .parse()
        .unwrap_or_else(|_| unreachable!("a quoted hex string is a valid ETag"))
}
// ANCHOR_END: etag

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_header_is_the_chapters() {
        assert_eq!(
            Lifetimes::default().cache_control(),
            "public, max-age=10, s-maxage=60, stale-while-revalidate=30, stale-if-error=300"
        );
        assert_eq!(
            Lifetimes::default().cdn_cache_control(),
            "max-age=60, stale-while-revalidate=30, stale-if-error=300"
        );
    }

    #[test]
    fn etags_follow_the_body() {
        assert_eq!(etag_of(b"{\"id\":1}"), etag_of(b"{\"id\":1}"));
        assert_ne!(etag_of(b"{\"id\":1}"), etag_of(b"{\"id\":2}"));
        let empty: ETag = "\"cbf29ce484222325-0\"".parse().expect("a valid tag");
        assert_eq!(etag_of(b""), empty);
    }
}
