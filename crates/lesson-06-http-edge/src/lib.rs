//! # Lesson 6: HTTP caching and a real edge cache
//!
//! A CDN is a shared HTTP cache near the users, and it does what the
//! origin's headers and its own configuration say. This lesson puts a real
//! edge, a private nginx, in front of an axum origin on loopback, and
//! measures what each header and directive does:
//!
//! - the **origin** ([`origin`]) says how to cache each response
//!   ([`policy`]): `Cache-Control` with `s-maxage`,
//!   `stale-while-revalidate` and `stale-if-error`, `CDN-Cache-Control`, a
//!   strong `ETag` from the body with `304 Not Modified`, `Last-Modified`,
//!   and `private, no-store` on the per-user `GET /me`;
//! - the **edge** ([`edge`]) is nginx's `proxy_cache` with request
//!   collapsing (`proxy_cache_lock`), stale serving
//!   (`proxy_cache_use_stale`), background refresh and revalidation, and a
//!   `X-Cache-Status` header that says which it did.
//!
//! ```text
//! just lesson-6            # every experiment, short (under a minute)
//! just lesson-6 --serve    # the edge on 127.0.0.1:3000, the origin behind it
//! curl -i http://127.0.0.1:3000/users/42     # X-Cache-Status: MISS, then HIT
//! curl -i -H 'If-None-Match: "<its ETag>"' http://127.0.0.1:3000/users/42   # 304
//! curl -i 'http://127.0.0.1:3000/users/42?v=2'   # a new version: MISS (quoted for zsh)
//! curl -i -H 'X-User-Id: 7' http://127.0.0.1:3000/me    # never cached
//! just lesson-6 --serve --purge    # and: curl http://127.0.0.1:3000/purge/users/42
//! ```
//!
//! It needs nginx (`.ci/install-nginx` as root on Debian, `brew install
//! nginx` on macOS); the harness spawns its own and never touches a system
//! nginx. Knobs for `--serve`: `LAB_DB_LATENCY_MS` (the origin's query
//! latency, 2000 as in every lesson, so a MISS is plainly slower than a
//! HIT), `PORT`, `DATABASE_URL`, `EDGE_PURGE`, and the `--help` flags; the
//! experiments set their own latencies.
//!
//! # Layout
//!
//! - [`policy`]: the lifetimes and the headers that carry them; the ETag.
//! - [`origin`]: the axum origin, its routes and the counts the
//!   experiments read; a switch that makes it answer 500.
//! - [`edge`]: the nginx config, each directive's why beside it.
//! - [`cli`]: the command line.
//! - [`experiment`]: the experiments `just lesson-6` and `just report` run.

pub mod cli;
pub mod edge;
pub mod experiment;
pub mod origin;
pub mod policy;
