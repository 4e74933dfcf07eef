//! The edge: nginx's `http` block in front of the origin, generated from
//! [`EdgeConfig`], spawned privately by `lab::edge`.
//!
//! Every experiment is one switch here: the lock on or off, stale served by
//! nginx's directive (for as long as the entry lives) or only within the
//! origin's own `stale-if-error` / `stale-while-revalidate` windows.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lab::edge::{EdgeOptions, Nginx, Site};

/// When the edge may answer with an expired copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseStale {
    /// `proxy_cache_use_stale error timeout updating http_500 …`: whenever
    /// the origin fails, for as long as the entry is in the cache
    /// (`inactive`), whatever the origin's `stale-if-error` said.
    Directive,
    /// Only within the windows the origin's `Cache-Control` gives
    /// (`stale-while-revalidate`, `stale-if-error`); then the error passes.
    /// nginx applies `stale-if-error` to network errors and timeouts only
    /// (a dead origin), never to a 5xx the origin sends: that 500 passes
    /// even within the window (since nginx 1.19.3; `tests/edge.rs` shows it).
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
        let purge = if self.purge {
            // The key must be built exactly as proxy_cache_key builds it.
            "location ~ ^/purge(/.*)$ {\n\
             \x20           allow 127.0.0.1;\n\
             \x20           deny all;\n\
             \x20           proxy_cache_purge edge $1$is_args$args;\n\
             \x20       }"
                .to_string()
        } else {
            String::new()
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
            .replace("{purge}", &purge)
            .replace("{static}", &static_files)
    }
}

/// The template, with `{…}` filled in by [`EdgeConfig::http_block`].
const EDGE_TEMPLATE: &str = r#"
    # ANCHOR: edge_conf
    # The cache: files under {cache_dir}, two directory levels so no
    # folder holds millions of files; 10 MB of shared memory for keys
    # (about 80,000 of them); at most 1 GB on disk, least recently used
    # out first; an entry nobody asked for in 10 minutes is deleted,
    # fresh or not, which also bounds how long a stale copy can be served.
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

    server {
        listen 127.0.0.1:{port};
        {access_log}

        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # A dead origin is detected within a second, not a minute.
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;

            proxy_cache edge;
            # The path with its query string: /users/42?v=7 is its own
            # entry, which is how a versioned URL purges. Headers are not
            # in the key: a per-user response must say `private`.
            proxy_cache_key $request_uri;
            # Used only when the origin sends no Cache-Control or Expires:
            # the origin decides; this is the fallback for one that doesn't.
            proxy_cache_valid 200 10s;
            proxy_cache_valid 404 5s;

            # Request collapsing: the first miss for a key goes to the
            # origin, the others wait for its answer, up to the timeout;
            # then they go to the origin too, and are not cached.
            proxy_cache_lock {lock};
            proxy_cache_lock_timeout {lock_timeout_ms}ms;
            proxy_cache_lock_age {lock_timeout_ms}ms;

            # When an expired copy may be served: see UseStale.
            {use_stale}
            # The client gets the stale copy now; one subrequest refreshes it.
            proxy_cache_background_update {background_update};
            # An expired entry is refreshed with If-None-Match /
            # If-Modified-Since; a 304 costs headers, not the body.
            proxy_cache_revalidate {revalidate};

            # HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED or BYPASS:
            # what the edge did, on every response, errors included.
            add_header X-Cache-Status $upstream_cache_status always;
        }
        # ANCHOR_END: edge_conf

        {purge}
        {static}
    }
"#;
