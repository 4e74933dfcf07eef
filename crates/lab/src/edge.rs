//! A private nginx: lesson 6's edge cache, spawned like the other servers.
//!
//! An edge cache is a server the harness starts, not a library: a real nginx
//! on a free loopback port, with its config, cache, logs and pid file in a
//! temp dir. [`Nginx::start_new`] takes the `http { … }` block from the
//! lesson (the part worth teaching: `proxy_cache_path`, `proxy_cache_lock`,
//! `proxy_cache_use_stale`, …) and wraps it in the chores of running nginx
//! privately (daemon off, a pid file and temp paths in the dir, one worker,
//! the purge module when asked). It checks the result with `nginx -t`
//! first, so a bad config is an error that quotes nginx, not a server that
//! never answers. Dropping the [`Nginx`] stops it and deletes the dir.
//!
//! # Where nginx comes from
//!
//! `NGINX_BIN` (a path), then `nginx` on `PATH`, then `/usr/sbin/nginx`,
//! `/usr/local/bin/nginx` and `/opt/homebrew/bin/nginx`. Missing, the error
//! names the fix: `.ci/install-nginx` as root on Debian (it also installs
//! `libnginx-mod-http-cache-purge` and `wrk`), `brew install nginx` on macOS.
//! `LAB_HIDE_LOCAL_BINARIES=1` hides it too, as it hides the other servers.
//!
//! A lesson's test that needs nginx calls [`can_spawn`]: without nginx it
//! skips and says so, unless `LAB_REQUIRE_LOCAL=1` (CI) makes that a
//! failure. An exercise's test calls [`require_spawn`] and always fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::spawn::{HIDE_LOCAL_ENV, REQUIRE_LOCAL_ENV, free_port, is_executable, prepare_child};

/// A path to the nginx binary, looked at before `PATH`.
pub const NGINX_BIN_ENV: &str = "NGINX_BIN";
/// What to install, per system.
pub const INSTALL_HINT: &str = "run `.ci/install-nginx` as root on Debian/Ubuntu \
     (apt-get install nginx libnginx-mod-http-cache-purge wrk), or `brew install nginx wrk` on macOS, \
     or point NGINX_BIN at an nginx binary";
/// Debian's third-party purge module (`libnginx-mod-http-cache-purge`).
pub const PURGE_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_cache_purge_module.so";

/// How long a fresh nginx may take to listen; it usually takes milliseconds.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// One readiness probe's connect; on loopback it takes microseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a stop may take before the harness kills nginx.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The nginx binary, or why there is none (with the fix).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(NGINX_BIN_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        bail!("{NGINX_BIN_ENV}={} is not an executable file", p.display());
    }
    if std::env::var(HIDE_LOCAL_ENV).is_ok_and(|v| v == "1") {
        bail!("nginx is hidden ({HIDE_LOCAL_ENV}=1): {INSTALL_HINT}");
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin"].map(PathBuf::from))
        .map(|d| d.join("nginx"))
        .find(|p| is_executable(p))
        .with_context(|| format!("there is no nginx on this machine: {INSTALL_HINT}"))
}

/// Debian's purge module, when it is installed.
pub fn purge_module() -> Option<PathBuf> {
    Some(PathBuf::from(PURGE_MODULE)).filter(|p| p.is_file())
}

/// Whether a lesson's test can spawn nginx. Without it the test skips and
/// says why; with `LAB_REQUIRE_LOCAL=1` it panics with the fix instead.
pub fn can_spawn(test: &str) -> bool {
    match binary() {
        Ok(_) => true,
        Err(e) if std::env::var(REQUIRE_LOCAL_ENV).is_ok_and(|v| v == "1") => {
            panic!("{test} needs nginx ({REQUIRE_LOCAL_ENV}=1), and {e:#}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: it needs nginx, and {e:#}");
            false
        }
    }
}

/// For an exercise's test: nginx or a failure that names the fix.
pub fn require_spawn(test: &str) {
    if let Err(e) = binary() {
        panic!("{test} needs nginx, and {e:#}");
    }
}

/// What to spawn with.
#[derive(Clone, Debug, Default)]
pub struct EdgeOptions {
    /// Worker processes; 0 means 1. One worker on a 2-core machine leaves
    /// the other core to the load generator, and makes a run repeatable.
    pub workers: usize,
    /// Load Debian's third-party purge module ([`purge_module`]); an error
    /// when it is not installed.
    pub purge_module: bool,
    /// CPUs to pin nginx to (`LAB_PIN_SERVERS`); `None` leaves it free.
    pub cpus: Option<Vec<usize>>,
    /// The port to listen on (`--serve`'s 3000); `None` picks a free one.
    pub port: Option<u16>,
}

impl EdgeOptions {
    /// One worker, no purge module, pinned like the other private servers.
    pub fn plain() -> Self {
        EdgeOptions {
            cpus: crate::pin::server_cpus().ok().flatten(),
            ..EdgeOptions::default()
        }
    }
}

/// Where the lesson's `http { … }` block may put things: its port and its
/// own folder (for the cache, logs and static files).
#[derive(Clone, Debug)]
pub struct Site {
    pub port: u16,
    pub dir: PathBuf,
}

impl Site {
    /// A path inside the instance's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A running (or stopped) private nginx.
#[derive(Debug)]
pub struct Nginx {
    bin: PathBuf,
    site: Site,
    cpus: Option<Vec<usize>>,
    child: Option<Child>,
    // Last: the dir is deleted after the process has stopped (Drop below).
    dir: TempDir,
}

impl Nginx {
    /// Writes `nginx.conf` around the `http` block that `http` returns,
    /// checks it with `nginx -t`, starts nginx and waits until it listens.
    pub async fn start_new(
        http: impl FnOnce(&Site) -> String,
        opts: EdgeOptions,
    ) -> anyhow::Result<Nginx> {
        let bin = binary()?;
        let dir = tempfile::Builder::new()
            .prefix("lab-nginx-")
            .tempdir()
            .context("Failed to create a temp dir for a private nginx")?;
        let site = Site {
            port: match opts.port {
                Some(p) => {
                    // A port someone else listens on would fail nginx's own
                    // bind only after its retries (about 2.5 s), in its
                    // log; say it at once, with the fix.
                    port_is_free(p)?;
                    p
                }
                None => free_port()?,
            },
            dir: dir.path().to_path_buf(),
        };
        let purge = if opts.purge_module {
            Some(purge_module().with_context(|| {
                format!("the purge module is not installed ({PURGE_MODULE}): {INSTALL_HINT}")
            })?)
        } else {
            None
        };
        std::fs::create_dir(dir.path().join("tmp")).context("Failed to create nginx's tmp dir")?;
        let worker_user = worker_user()?;
        if worker_user.is_some() {
            // The workers run as `nobody` and must reach the cache inside.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .context("Failed to open the temp dir to nginx's workers")?;
        }
        let conf = main_conf(
            &site,
            &http(&site),
            opts.workers.max(1),
            purge.as_deref(),
            worker_user.as_deref(),
        );
        std::fs::write(dir.path().join("nginx.conf"), conf)
            .context("Failed to write nginx.conf")?;
        let mut nginx = Nginx {
            bin,
            site,
            cpus: opts.cpus,
            child: None,
            dir,
        };
        nginx.check().await?;
        nginx.start().await?;
        Ok(nginx)
    }

    /// `nginx -t`: nginx's own verdict on the generated config.
    pub async fn check(&self) -> anyhow::Result<()> {
        let mut cmd = self.command();
        cmd.arg("-t").stdin(Stdio::null());
        // `.output()` blocks until nginx exits: on a blocking thread, so
        // the runtime's workers (maybe only one, in a test) keep serving.
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .context("nginx -t's thread panicked")?
            .with_context(|| format!("Failed to run {} -t", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "nginx rejected the generated config ({}):\n{}",
                self.conf_path().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        // -p: relative paths resolve in the dir; -e: the error log from the
        // first line on (before the config is read, nginx would otherwise
        // try its compiled-in /var/log/nginx/error.log).
        cmd.arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.conf_path())
            .arg("-e")
            .arg(self.error_log_path());
        cmd
    }

    /// Starts nginx (again) on the same port and cache, and waits until it
    /// accepts connections (its own: see `is_listening`).
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stderr.log"))
            .context("Failed to open nginx's stderr log")?;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        prepare_child(&mut cmd, self.cpus.as_deref().map(crate::pin::cpu_set));
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("Failed to start {}", self.bin.display()))?,
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "nginx exited ({status}) before it listened.\n{}",
                    self.log_tail()
                );
            }
            if self.is_listening().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not listen on 127.0.0.1:{} within {READY_TIMEOUT:?}.\n{}",
                    self.site.port,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ready means *this* nginx listens, not just anyone on the port: the
    /// pid file holds our child's pid (nginx writes it after it has bound
    /// its listeners, and a file left by an earlier run holds another pid),
    /// and a connection succeeds. The connect is bounded: a port whose
    /// backlog is full would otherwise hold the loop past its deadline.
    async fn is_listening(&self) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        let written = std::fs::read_to_string(self.dir.path().join("nginx.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if written != Some(pid) {
            return false;
        }
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", self.site.port));
        matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, connect).await,
            Ok(Ok(_))
        )
    }

    /// Stops nginx (SIGTERM, its fast shutdown). The cache on disk stays,
    /// and [`Nginx::start`] serves it again.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let deadline = begin_stop(&child);
        while !reap(&mut child, deadline) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Whether the master process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The master process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.site.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.site.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// The config nginx runs with, for printing.
    pub fn conf(&self) -> String {
        std::fs::read_to_string(self.conf_path()).unwrap_or_default()
    }

    /// The last lines of the error log and of stderr.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["error.log", "stderr.log"] {
            let path = self.dir.path().join(name);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- last lines of {} ---\n{}\n",
                path.display(),
                lines[lines.len().saturating_sub(20)..].join("\n")
            ));
        }
        out
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let deadline = begin_stop(&child);
            while !reap(&mut child, deadline) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

// ANCHOR: main_conf
/// The whole `nginx.conf`: the chores of a private instance around the
/// lesson's `http` block.
pub fn main_conf(
    site: &Site,
    http: &str,
    workers: usize,
    purge_module: Option<&Path>,
    user: Option<&str>,
) -> String {
    let dir = site.dir.display();
    let load = purge_module
        .map(|m| format!("load_module {};\n", m.display()))
        .unwrap_or_default();
    // As root, nginx's workers would run as its compiled-in user; name one
    // that exists (as a normal user the directive would only be warned about).
    let user = user.map(|u| format!("user {u};\n")).unwrap_or_default();
    format!(
        "# Written by lab::edge for a private nginx in {dir}.\n\
         {load}{user}\
         # In the foreground, so the harness owns the process and its exit.\n\
         daemon off;\n\
         worker_processes {workers};\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   # Every temp path inside the dir: the compiled-in ones (/var/lib/nginx)\n\
         \x20   # belong to the system's nginx, or do not exist.\n\
         \x20   client_body_temp_path {dir}/tmp/body;\n\
         \x20   proxy_temp_path {dir}/tmp/proxy;\n\
         \x20   fastcgi_temp_path {dir}/tmp/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/tmp/uwsgi;\n\
         \x20   scgi_temp_path {dir}/tmp/scgi;\n\
         {http}\n\
         }}\n"
    )
}
// ANCHOR_END: main_conf

/// Fails, naming the fix, when something already listens on 127.0.0.1:`port`.
/// The probe listener closes at once; nginx binds the port next.
fn port_is_free(port: u16) -> anyhow::Result<()> {
    const FIX: &str = "set PORT=… (e.g. PORT=3001 just lesson-6 --serve)";
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("127.0.0.1:{port} is in use: stop what uses it or {FIX}")
        }
        Err(e) => bail!("cannot listen on 127.0.0.1:{port} ({e}): {FIX}"),
    }
}

/// `nobody nogroup` (or `nobody`) when running as root, else nothing.
fn worker_user() -> anyhow::Result<Option<String>> {
    if !crate::spawn::is_root() {
        return Ok(None);
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let has = |g: &str| groups.lines().any(|l| l.split(':').next() == Some(g));
    Ok(Some(if has("nogroup") {
        "nobody nogroup".into()
    } else {
        "nobody".into()
    }))
}

/// SIGTERM is nginx's fast shutdown: the master stops its workers and exits.
fn begin_stop(child: &Child) -> Instant {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    Instant::now() + STOP_TIMEOUT
}

fn reap(child: &mut Child, deadline: Instant) -> bool {
    if !matches!(child.try_wait(), Ok(None)) {
        return true;
    }
    if Instant::now() > deadline {
        tracing::warn!("nginx did not stop within {STOP_TIMEOUT:?}; killing it");
        let _ = child.kill();
        let _ = child.wait();
        return true;
    }
    false
}
