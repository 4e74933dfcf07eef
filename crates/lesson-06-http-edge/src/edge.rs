//! The edge: nginx's `http` block in front of the origin, generated from
//! [`EdgeConfig`], spawned privately by `lab::edge`.
//!
//! Every experiment is one switch here: the lock on or off, stale served by
//! nginx's directive (with no time limit while the key is asked for) or
//! only within the origin's own `stale-if-error` /
//! `stale-while-revalidate` windows.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lab::edge::{EdgeOptions, Nginx, Site};

/// When the edge may answer with an expired copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseStale {
    /// `proxy_cache_use_stale error timeout updating http_500 …`: whenever
    /// the origin fails, whatever the origin's `stale-if-error` said, and
    /// with no time limit. `inactive` does not bound it: it counts from the
    /// last *request* for the key, so a key that keeps being asked for
    /// stays in the cache, and is served stale, for as long as the origin
    /// is down. Only a key nobody asks for goes.
    Directive,
    /// Only within the windows the origin's `Cache-Control` gives
    /// (`stale-while-revalidate`, `stale-if-error`); then the error passes.
    /// This is the mode where staleness has a bound: the origin's
    /// `stale-if-error`. nginx (since 1.19.3) applies `stale-if-error` to
    /// connection errors and timeouts only (a dead origin), not to a
    /// 500/502/503/504 the origin sends, although RFC 5861 §4 counts those
    /// as errors: nginx departs from the RFC, and that 500 passes even
    /// within the window (`tests/edge.rs` shows it).
    OriginHeaders,
}

/// One edge's configuration. [`EdgeConfig::new`] is the chapter's.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub origin: SocketAddr,
    /// `proxy_cache_lock`: one request fills a new entry, the rest wait.
    pub lock: bool,
    /// `proxy_cache_lock_timeout`: how long they wait before going to the
    /// origin themselves (uncached).
    pub lock_timeout: Duration,
    pub use_stale: UseStale,
    /// `proxy_cache_background_update`: an expired entry is refreshed by a
    /// subrequest while the client gets the stale copy.
    pub background_update: bool,
    /// `proxy_cache_revalidate`: refresh an expired entry with a
    /// conditional GET, so an unchanged one costs a 304, not its body.
    pub revalidate: bool,
    /// A `location /purge/…` with Debian's third-party purge module.
    pub purge: bool,
    /// Serve this folder at `/static/` (experiment 1's floor).
    pub static_root: Option<PathBuf>,
    /// An access log with the cache status of every request (off under load).
    pub access_log: bool,
}

impl EdgeConfig {
    /// Everything on, as the chapter recommends.
    pub fn new(origin: SocketAddr) -> EdgeConfig {
        EdgeConfig {
            origin,
            lock: true,
            lock_timeout: Duration::from_secs(5),
            use_stale: UseStale::Directive,
            background_update: true,
            revalidate: true,
            purge: false,
            static_root: None,
            access_log: false,
        }
    }

    /// Spawns a private nginx with this config (checked by `nginx -t`).
    pub async fn spawn(&self, port: Option<u16>) -> anyhow::Result<Nginx> {
        let opts = EdgeOptions {
            purge_module: self.purge,
            port,
            ..EdgeOptions::plain()
        };
        Nginx::start_new(|site| self.http_block(site), opts).await
    }

    /// The `http { … }` block's contents.
    pub fn http_block(&self, site: &Site) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        let use_stale = match self.use_stale {
            UseStale::Directive => {
                "proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;"
            }
            UseStale::OriginHeaders => "proxy_cache_use_stale off;",
        };
        let access_log = if self.access_log {
            format!("access_log {} edge;", site.path("access.log").display())
        } else {
            "access_log off;".into()
        };
        let (purge_map, purge) = if self.purge {
            (PURGE_MAP, PURGE_LOCATION)
        } else {
            ("", "")
        };
        let static_files = self
            .static_root
            .as_ref()
            .map(|root| format!("location /static/ {{ alias {}/; }}", root.display()))
            .unwrap_or_default();
        let template = EDGE_TEMPLATE;
        template
            .replace("{cache_dir}", &site.path("cache").display().to_string())
            .replace("{port}", &site.port.to_string())
            .replace("{origin}", &self.origin.to_string())
            .replace("{lock}", on(self.lock))
            .replace(
                "{lock_timeout_ms}",
                &self.lock_timeout.as_millis().to_string(),
            )
            .replace("{use_stale}", use_stale)
            .replace("{background_update}", on(self.background_update))
            .replace("{revalidate}", on(self.revalidate))
            .replace("{access_log}", &access_log)
            .replace("{purge_map}", purge_map)
            .replace("{purge}", purge)
            .replace("{static}", &static_files)
    }
}

/// With `purge`, in the `http` block: the key to purge, cut from the raw
/// request line. The cache key is `$request_uri` as the client sent it
/// (`/users/%34%32` stays encoded), so the purge key must be cut from
/// `$request_uri` too; a `location` capture (`$1`) is the *decoded* path
/// (`/users/42`), another key, and the purge would miss the entry.
const PURGE_MAP: &str = r#"map $request_uri $purge_key {
        ~^/purge(?<purge_path>/.*)$ $purge_path;
    }"#;

/// With `purge`, in the `server` block: `GET /purge/<path>` deletes the
/// entry `<path>` (Debian's third-party module). `allow`/`deny` matter once
/// the listener is not loopback-only: here only local processes reach it
/// anyway, but on a public address anyone could empty the cache and send
/// every request to the origin.
const PURGE_LOCATION: &str = r#"location /purge/ {
            allow 127.0.0.1;
            deny all;
            proxy_cache_purge edge $purge_key;
        }"#;

/// The template, with `{…}` filled in by [`EdgeConfig::http_block`].
const EDGE_TEMPLATE: &str = r#"
    # ANCHOR: edge_conf
    # The cache: files under {cache_dir}, two directory levels so no
    # folder holds millions of files; 10 MB of shared memory for keys
    # (about 80,000 of them); at most 1 GB on disk, least recently used
    # out first. `inactive=10m`: an entry nobody has asked for in 10
    # minutes is deleted, fresh or not. It counts from the last request,
    # not from the fill, so it does not bound how long a stale copy is
    # served: a key that keeps being asked for stays (see UseStale).
    proxy_cache_path {cache_dir} levels=1:2 keys_zone=edge:10m
                     max_size=1g inactive=10m use_temp_path=off;

    log_format edge '$request_uri $status $upstream_cache_status '
                    'upstream=$upstream_status ${request_time}s';

    upstream origin {
        server {origin};
        # Reused connections to the origin: a miss does not pay a TCP
        # handshake, and a burst does not exhaust ephemeral ports.
        keepalive 16;
    }
    {purge_map}

    server {
        listen 127.0.0.1:{port};
        {access_log}

        # For every location that proxies (/ and /me): HTTP/1.1 with no
        # `Connection: close`, so the upstream keepalive works; and a dead
        # origin is detected within a second, not a minute.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_connect_timeout 1s;
        proxy_read_timeout 10s;

        location / {
            proxy_pass http://origin;

            proxy_cache edge;
            # The path with its query string, as the client sent it:
            # /users/42?v=7 is its own entry, which is how a versioned URL
            # purges. Headers are not in the key: a per-user response must
            # say `private` (and /me below does not rely on it).
            proxy_cache_key $request_uri;
            # The lifetime when the origin gives none: no Expires, and no
            # max-age or s-maxage in Cache-Control (a bare `public` gives
            # none either). The origin decides; this is the fallback for one
            # that doesn't. `private`, `no-store` and `no-cache` are still
            # never stored.
            proxy_cache_valid 200 10s;
            proxy_cache_valid 404 5s;

            # Request collapsing: the first miss for a key goes to the
            # origin, the others wait for its answer, up to the timeout;
            # then they go to the origin too, and are not cached.
            proxy_cache_lock {lock};
            proxy_cache_lock_timeout {lock_timeout_ms}ms;
            # Once the request that holds the lock has been at the origin
            # this long, one more request may go (and fill the entry);
            # nginx's default is 5 s. Equal to the timeout, so one number
            # says how long a slow fill is waited for: at that moment the
            # waiters leave (the timeout) and the lock passes on (lock_age),
            # rather than a 300 ms timeout under a lock held for 5 s.
            proxy_cache_lock_age {lock_timeout_ms}ms;

            # When an expired copy may be served: see UseStale.
            {use_stale}
            # The client gets the stale copy now; one subrequest refreshes it.
            proxy_cache_background_update {background_update};
            # An expired entry is refreshed with If-None-Match /
            # If-Modified-Since; a 304 costs headers, not the body.
            proxy_cache_revalidate {revalidate};

            # A HIT replays the stored headers: the origin's Server-Timing
            # would claim, on every hit, the time the fill took.
            proxy_hide_header Server-Timing;

            # HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED or BYPASS:
            # what the edge did, on every response this location proxies,
            # its errors included (the origin's, and nginx's 502/504 when
            # the origin is gone). Not on what nginx answers itself before
            # proxying (a 400 for a malformed request, a 414 for a URI too
            # long), nor on /purge or /static.
            add_header X-Cache-Status $upstream_cache_status always;
        }

        # The per-user route never touches the cache, whatever its headers
        # say: a per-user route must not depend on one header being right
        # (an origin's 404 without `private` was once stored under `/me`
        # and served to everyone). `proxy_cache off` rather than
        # `proxy_no_cache $http_x_user_id`: that one would still cache a
        # request without the header, and needs the header's name right.
        location = /me {
            proxy_pass http://origin;
            proxy_cache off;
        }
        # ANCHOR_END: edge_conf

        {purge}
        {static}
    }
"#;
