//! Private server instances, spawned from the local binaries in a temp dir.
//!
//! A lesson that needs special settings (`shared_buffers=16MB`) or a server it
//! may stop mid-run (an outage) spawns its own instance, so it never touches a
//! shared server. Spawning is cheap: on the workshop's 2-core machines a
//! PostgreSQL `initdb` takes about half a second and Redis answers PING in
//! milliseconds.
//!
//! An [`Instance`] owns its process and its temp dir. [`Instance::stop`] and
//! [`Instance::start`] stop and restart it on the same port and data dir;
//! dropping it stops the server and deletes the dir.
//!
//! # Environment
//!
//! - `LAB_BIN_DIR`: a folder of server binaries, searched first.
//! - `LAB_HIDE_LOCAL_BINARIES=1`: search only `LAB_BIN_DIR`, as on a machine
//!   without the server packages ([`HIDE_LOCAL_ENV`]).
//! - `LAB_REQUIRE_LOCAL=1`: a lesson's test that needs a private instance
//!   fails instead of skipping when there are no binaries ([`can_spawn`]).
//!   An exercise's test always fails then ([`require_spawn`]).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use tempfile::TempDir;

use crate::kind::{Kind, ping};

/// A folder that holds the server binaries, looked at before the usual places.
pub const BIN_DIR_ENV: &str = "LAB_BIN_DIR";

/// How long a fresh server may take to answer. Generous: the first start on a
/// cold disk is slower than the half second it usually takes.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The same for a container: the official images initialise the data dir
/// and restart the server once before it answers (MariaDB's takes ~10 s).
const CONTAINER_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take before the harness kills the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What to spawn with.
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// Server settings: `("shared_buffers", "16MB")` for PostgreSQL (`-c`),
    /// `("innodb_buffer_pool_size", "64M")` for MariaDB, `("maxmemory", "10mb")`
    /// for Redis.
    pub settings: Vec<(String, String)>,
    /// Extra `initdb` arguments, such as `--locale-provider=icu`.
    pub initdb_args: Vec<String>,
    /// Where to look for binaries first.
    pub bin_dir: Option<PathBuf>,
    /// Look nowhere but `bin_dir`.
    pub only_bin_dir: bool,
    /// CPUs to pin the server to (`LAB_PIN_SERVERS`); `None` leaves it free.
    pub cpus: Option<Vec<usize>>,
    /// Local binaries or Docker; `None` reads `LAB_BACKEND` (see [`Runner`]).
    pub backend: Option<crate::Backend>,
    /// For a container: share the host's network, the server listening on
    /// its port on the host's loopback (lesson 9's cluster nodes, which must
    /// reach each other at the address they announce). Linux only.
    pub host_network: bool,
}

impl SpawnOptions {
    /// No special settings, binaries from the usual places.
    pub fn plain() -> Self {
        Self::with_settings(Vec::<(String, String)>::new())
    }

    /// Options with these settings, binaries from the usual places.
    pub fn with_settings<K: Into<String>, V: Into<String>>(
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        SpawnOptions {
            settings: settings
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            bin_dir: std::env::var_os(BIN_DIR_ENV).map(PathBuf::from),
            cpus: crate::pin::server_cpus().ok().flatten(),
            ..SpawnOptions::default()
        }
    }
}

/// What runs a private server.
#[derive(Debug)]
enum Runner {
    /// A process of the local binaries, with its data dir in the temp dir.
    Process {
        server_bin: PathBuf,
        run_as: Option<(u32, u32)>,
        child: Option<Child>,
    },
    /// A Docker container with a volume of its own. Shared with the
    /// blocking threads that run its bounded `docker` calls (a std Mutex:
    /// it is only ever locked on those threads, or briefly).
    Container(Arc<Mutex<crate::docker::Container>>),
}

/// Runs `f` on a container off the runtime's threads: every `docker` call
/// blocks for up to its bound, and a test's or a demo's other tasks (the
/// load during an outage) must keep running meanwhile.
async fn on_container<T: Send + 'static>(
    c: &Arc<Mutex<crate::docker::Container>>,
    f: impl FnOnce(&mut crate::docker::Container) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let c = Arc::clone(c);
    tokio::task::spawn_blocking(move || {
        let mut guard = c.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    })
    .await
    .context("the Docker thread failed")
}

fn locked(
    c: &Arc<Mutex<crate::docker::Container>>,
) -> std::sync::MutexGuard<'_, crate::docker::Container> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which runner a private instance gets: `LAB_BACKEND=local` the local
/// binaries, `docker` a container; otherwise the local binaries when they
/// are installed, else a container when Docker answers (the same order as
/// discovery's steps 3 and 4 read from the other end: local binaries first
/// here, because they start faster and measure without Docker's proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnerKind {
    Local,
    Docker,
}

impl RunnerKind {
    /// The runner for `kind` with these options, or why there is none.
    pub fn choose(kind: Kind, opts: &SpawnOptions) -> anyhow::Result<RunnerKind> {
        let backend = match opts.backend {
            Some(b) => b,
            None => match std::env::var(crate::discover::BACKEND_ENV) {
                Ok(v) => v.parse()?,
                Err(_) => crate::Backend::Auto,
            },
        };
        match backend {
            crate::Backend::Local => {
                Binaries::find(kind, opts)?;
                Ok(RunnerKind::Local)
            }
            crate::Backend::Docker => Ok(RunnerKind::Docker),
            crate::Backend::Auto | crate::Backend::External => match Binaries::find(kind, opts) {
                Ok(_) => Ok(RunnerKind::Local),
                Err(_) if crate::docker::reachable() => Ok(RunnerKind::Docker),
                Err(e) => Err(e.context(
                    "no Docker daemon to run a container instead (DOCKER_HOST is unset and \
                     /var/run/docker.sock is missing)",
                )),
            },
        }
    }
}

/// A running (or stopped) private server.
#[derive(Debug)]
pub struct Instance {
    kind: Kind,
    port: u16,
    dir: TempDir,
    settings: Vec<(String, String)>,
    cpus: Option<Vec<usize>>,
    runner: Runner,
}

impl Instance {
    /// Initialises a data dir on a free port and starts the server: from
    /// the local binaries, or as a container ([`RunnerKind::choose`]).
    pub async fn start_new(kind: Kind, opts: SpawnOptions) -> anyhow::Result<Instance> {
        match RunnerKind::choose(kind, &opts)? {
            RunnerKind::Local => Self::start_process(kind, opts).await,
            RunnerKind::Docker => Self::start_container(kind, opts).await,
        }
    }

    /// The same as a Docker container with a volume of its own, published on
    /// a free loopback port.
    pub async fn start_container(kind: Kind, opts: SpawnOptions) -> anyhow::Result<Instance> {
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(&format!("lab-{}-", kind.name().to_lowercase()))
            .tempdir()
            .context("Failed to create a temp dir for a private server")?;
        let port = free_port()?;
        let mut env = Vec::new();
        if kind == Kind::Postgres && !opts.initdb_args.is_empty() {
            env.push((
                "POSTGRES_INITDB_ARGS".to_string(),
                opts.initdb_args.join(" "),
            ));
        }
        let (cpus, host_network) = (opts.cpus.clone(), opts.host_network);
        let container = tokio::task::spawn_blocking(move || {
            crate::docker::Container::new(kind, port, host_network, cpus.as_deref(), env)
        })
        .await
        .context("the Docker thread failed")??;
        let mut instance = Instance {
            kind,
            port,
            dir,
            settings: opts.settings,
            cpus: opts.cpus,
            runner: Runner::Container(Arc::new(Mutex::new(container))),
        };
        instance.start().await?;
        instance.create_test_database().await?;
        tracing::info!(
            server = %kind,
            port = instance.port,
            image = %instance.image().unwrap_or_default(),
            "started a {kind} container in {:.1?}",
            t0.elapsed()
        );
        Ok(instance)
    }

    /// The image, for a container.
    pub fn image(&self) -> Option<String> {
        match &self.runner {
            Runner::Container(c) => Some(locked(c).image().to_string()),
            Runner::Process { .. } => None,
        }
    }

    /// Whether this instance is a Docker container.
    pub fn is_container(&self) -> bool {
        matches!(self.runner, Runner::Container(_))
    }

    /// A command that runs `program` (a client tool such as `redis-cli`)
    /// where the server runs: the binary next to the local server, or
    /// `docker exec` in the container.
    pub fn tool(&self, program: &str) -> anyhow::Result<Command> {
        match &self.runner {
            Runner::Container(c) => Ok(locked(c).exec(program)),
            Runner::Process { server_bin, .. } => {
                let bin = server_bin.with_file_name(program);
                anyhow::ensure!(
                    is_executable(&bin),
                    "`{program}` not found next to {} ({})",
                    server_bin.display(),
                    self.kind.install_hint()
                );
                Ok(Command::new(bin))
            }
        }
    }

    /// `sh -c SCRIPT` where the server runs: on this machine for a local
    /// instance, in the container for a container. For what must see the
    /// server's own view, such as a PID from `pg_backend_pid()` (inside a
    /// container, not the host's PID of that process).
    pub fn shell(&self, script: &str) -> anyhow::Result<Command> {
        let mut cmd = match &self.runner {
            Runner::Container(c) => locked(c).exec("sh"),
            Runner::Process { .. } => Command::new("sh"),
        };
        cmd.arg("-c").arg(script);
        Ok(cmd)
    }

    async fn start_process(kind: Kind, opts: SpawnOptions) -> anyhow::Result<Instance> {
        let bins = Binaries::find(kind, &opts)?;
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(&format!("lab-{}-", kind.name().to_lowercase()))
            .tempdir()
            .context("Failed to create a temp dir for a private server")?;
        // PostgreSQL refuses to run as root, and CI runs as root: run it as
        // the unprivileged `postgres` user, which owns the temp dir.
        let run_as = match kind {
            Kind::Postgres if is_root() => {
                let ids = lookup_user("postgres").context(
                    "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as \
                     (create one: useradd --system postgres)",
                )?;
                std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                    .context("Failed to hand the temp dir to the postgres user")?;
                Some(ids)
            }
            _ => None,
        };
        let mut instance = Instance {
            kind,
            port: free_port()?,
            dir,
            settings: opts.settings,
            cpus: opts.cpus,
            runner: Runner::Process {
                server_bin: bins.server,
                run_as,
                child: None,
            },
        };
        if let Some(init) = &bins.init {
            instance.init(init, &opts.initdb_args)?;
        }
        instance.start().await?;
        instance.create_test_database().await?;
        tracing::info!(
            server = %kind,
            port = instance.port,
            dir = %instance.dir.path().display(),
            "spawned a private {kind} in {:.1?}",
            t0.elapsed()
        );
        Ok(instance)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The server's log, for error messages and curious readers. For a
    /// container, the file is rewritten from `docker logs` on each call.
    pub fn log_path(&self) -> PathBuf {
        let path = self.dir.path().join("server.log");
        if let Runner::Container(c) = &self.runner {
            locked(c).dump_log(&path);
        }
        path
    }

    fn run_as(&self) -> Option<(u32, u32)> {
        match &self.runner {
            Runner::Process { run_as, .. } => *run_as,
            Runner::Container(_) => None,
        }
    }

    /// The URL of database `test` (PostgreSQL, MariaDB) or of Redis.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{}/test", self.port),
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
            Kind::MySql => format!("mysql://root@127.0.0.1:{}/test", self.port),
        }
    }

    // The URL of a database that exists from the start.
    fn admin_url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            Kind::MySql => format!("mysql://root@127.0.0.1:{}/mysql", self.port),
            Kind::Redis => self.url(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// MariaDB's tmpdir, inside the instance's dir (see `command`), created
    /// before the first use.
    fn tmp_dir(&self) -> anyhow::Result<PathBuf> {
        let tmp = self.dir.path().join("tmp");
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("Failed to create {}", tmp.display()))?;
        Ok(tmp)
    }

    fn init(&mut self, init: &Path, extra: &[String]) -> anyhow::Result<()> {
        let data = self.data_dir();
        let mut cmd = Command::new(init);
        match self.kind {
            Kind::Postgres => {
                cmd.arg("-D").arg(&data).args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]);
                cmd.args(extra);
                if let Some((uid, gid)) = self.run_as() {
                    cmd.uid(uid).gid(gid);
                }
            }
            Kind::MySql => {
                // --no-defaults keeps /etc/mysql's settings out of a private
                // instance; root with a normal (empty) password, over TCP.
                cmd.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--tmpdir={}", self.tmp_dir()?.display()))
                    .arg(format!("--user={}", current_user()))
                    .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
                cmd.args(extra);
            }
            Kind::Redis => return Ok(()),
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("Failed to run {}", init.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed ({}):\n{}{}",
                init.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn command(&self, server_bin: &Path) -> Command {
        let mut cmd = Command::new(server_bin);
        let port = self.port.to_string();
        let dir = self.dir.path();
        match self.kind {
            Kind::Postgres => {
                cmd.arg("-D")
                    .arg(self.data_dir())
                    .args(["-p", &port, "-h", "127.0.0.1", "-k"])
                    .arg(dir);
                for (k, v) in &self.settings {
                    cmd.arg("-c").arg(format!("{k}={v}"));
                }
                if let Some((uid, gid)) = self.run_as() {
                    cmd.uid(uid).gid(gid);
                }
            }
            Kind::MySql => {
                cmd.arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data_dir().display()))
                    // A tmpdir of its own: at start-up mariadbd deletes every
                    // `#sql*` file in its tmpdir, which in a shared /tmp are
                    // the temporary tables of any other MariaDB there,
                    // including a concurrent mariadb-install-db's bootstrap
                    // (it failed with "Unknown table 'mysql.tmp_user_…'").
                    .arg(format!("--tmpdir={}", dir.join("tmp").display()))
                    .arg(format!("--port={port}"))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                    .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
                    .arg(format!("--user={}", current_user()))
                    // A cold pool on every start: measurements after a restart
                    // must not inherit the last run's warm pages.
                    .arg("--innodb-buffer-pool-load-at-startup=0")
                    .arg("--innodb-buffer-pool-dump-at-shutdown=0")
                    .arg("--skip-log-bin");
                for (k, v) in &self.settings {
                    cmd.arg(format!("--{k}={v}"));
                }
            }
            Kind::Redis => {
                cmd.args([
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(dir);
                for (k, v) in &self.settings {
                    cmd.arg(format!("--{k}")).arg(v);
                }
            }
        }
        cmd
    }

    /// Changes a server setting for the next [`start`](Self::start): how an
    /// experiment restarts one seeded data dir with another
    /// `shared_buffers` instead of seeding a new server per setting.
    pub fn set_setting(&mut self, key: &str, value: &str) {
        match self.settings.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => self.settings.push((key.to_string(), value.to_string())),
        }
    }

    /// Starts the server (again) and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        if let Runner::Container(c) = &self.runner {
            let settings = self.settings.clone();
            on_container(c, move |c| c.run(&settings)).await??;
            return self.wait_ready().await;
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("Failed to open the server log")?;
        let Runner::Process { server_bin, .. } = &self.runner else {
            unreachable!("containers returned above")
        };
        let mut cmd = self.command(server_bin);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        prepare_child(&mut cmd, self.cpus.as_deref().map(crate::pin::cpu_set));
        let child = cmd
            .spawn()
            .with_context(|| format!("Failed to start {}", server_bin.display()))?;
        if let Runner::Process { child: slot, .. } = &mut self.runner {
            *slot = Some(child);
        }
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let bound = if self.is_container() {
            CONTAINER_READY_TIMEOUT
        } else {
            READY_TIMEOUT
        };
        let deadline = Instant::now() + bound;
        let url = self.admin_url();
        let mut next_state_check = Instant::now();
        loop {
            match &mut self.runner {
                Runner::Process { child: slot, .. } => {
                    if let Some(child) = slot.as_mut()
                        && let Some(status) = child.try_wait()?
                    {
                        *slot = None;
                        bail!(
                            "the private {} exited ({status}) before it answered.\n{}",
                            self.kind,
                            self.log_tail()
                        );
                    }
                }
                // `docker inspect` is a process of its own: twice a second.
                Runner::Container(c) if Instant::now() >= next_state_check => {
                    next_state_check = Instant::now() + Duration::from_millis(500);
                    let (running, code) = on_container(c, |c| c.state()).await??;
                    if !running {
                        let name = locked(c).name().to_string();
                        let tail = self.log_tail();
                        self.remove_container().await;
                        bail!(
                            "the {} container {name} exited (code {code}) before it answered; \
                             it was removed.\n{tail}",
                            self.kind,
                        );
                    }
                }
                Runner::Container(_) => {}
            }
            match ping(self.kind, &url).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    let tail = self.log_tail();
                    self.remove_container().await;
                    bail!(
                        "the private {} did not answer within {bound:?}: {e:#}\n{tail}",
                        self.kind,
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    /// Removes a container that failed to become ready (its volume stays
    /// until the instance is dropped). Nothing for a process.
    async fn remove_container(&mut self) {
        if let Runner::Container(c) = &self.runner {
            let _ = on_container(c, |c| c.kill_and_remove()).await;
        }
    }

    async fn create_test_database(&self) -> anyhow::Result<()> {
        match self.kind {
            // The image created it (`POSTGRES_DB=test`).
            Kind::Postgres if self.is_container() => {}
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.admin_url()).await?;
                sqlx::query("CREATE DATABASE test").execute(&mut c).await?;
            }
            Kind::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&self.admin_url()).await?;
                sqlx::query("CREATE DATABASE IF NOT EXISTS test")
                    .execute(&mut c)
                    .await?;
            }
            Kind::Redis => {}
        }
        Ok(())
    }

    /// A PostgreSQL streaming standby of `primary`: `pg_basebackup -R` into
    /// a new temp dir (the `-R` writes `standby.signal` and the
    /// `primary_conninfo` that streams from the primary), started on its
    /// own free port. initdb's `-A trust` already lets `replication`
    /// connections in from 127.0.0.1, so the primary needs no change.
    pub async fn start_standby(primary: &Instance, opts: SpawnOptions) -> anyhow::Result<Instance> {
        anyhow::ensure!(
            primary.kind == Kind::Postgres,
            "only PostgreSQL has streaming standbys here"
        );
        let t0 = Instant::now();
        let primary_bin = match &primary.runner {
            Runner::Container(c) => return Self::start_container_standby(primary, c, opts).await,
            Runner::Process { server_bin, .. } => server_bin.clone(),
        };
        let basebackup = primary_bin.with_file_name("pg_basebackup");
        anyhow::ensure!(
            is_executable(&basebackup),
            "`pg_basebackup` not found next to {} (Debian's postgresql package ships it)",
            primary_bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("lab-postgresql-standby-")
            .tempdir()
            .context("Failed to create a temp dir for a standby")?;
        if let Some((uid, gid)) = primary.run_as() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("Failed to hand the standby's temp dir to the postgres user")?;
        }
        let mut instance = Instance {
            kind: Kind::Postgres,
            port: free_port()?,
            dir,
            settings: opts.settings,
            cpus: opts.cpus,
            runner: Runner::Process {
                server_bin: primary_bin,
                run_as: primary.run_as(),
                child: None,
            },
        };
        let mut cmd = Command::new(&basebackup);
        cmd.arg("-D")
            .arg(instance.data_dir())
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            // `--checkpoint=fast`: the default spread checkpoint made an idle
            // primary take 90 s to hand over its first backup.
            .args([
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
            ]);
        if let Some((uid, gid)) = instance.run_as() {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("Failed to run {}", basebackup.display()))?;
        if !out.status.success() {
            bail!(
                "pg_basebackup from port {} failed ({}):\n{}{}",
                primary.port,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        instance.start().await?;
        tracing::info!(
            port = instance.port,
            primary = primary.port,
            "spawned a streaming standby in {:.1?}",
            t0.elapsed()
        );
        Ok(instance)
    }

    /// The standby as a container: `pg_basebackup` runs in a one-off
    /// container of the same image onto the standby's new volume, streaming
    /// from the primary's address on Docker's bridge network (where the
    /// standby will reach it too), then the standby starts on that volume.
    async fn start_container_standby(
        primary: &Instance,
        primary_container: &Arc<Mutex<crate::docker::Container>>,
        opts: SpawnOptions,
    ) -> anyhow::Result<Instance> {
        let t0 = Instant::now();
        // The official image lets every host in for every *database*, but a
        // replication connection matches only lines that name `replication`.
        let hba = "echo 'host replication all all trust' >> \"$PGDATA/pg_hba.conf\"";
        let mut cmd = locked(primary_container).exec("sh");
        cmd.args(["-c", hba]);
        crate::docker::run_sync(cmd, Duration::from_secs(30), "the primary's pg_hba.conf")?;
        let mut c = sqlx::PgConnection::connect(&primary.admin_url()).await?;
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut c)
            .await?;
        let ip = on_container(primary_container, |c| c.bridge_ip()).await??;

        let dir = tempfile::Builder::new()
            .prefix("lab-postgresql-standby-")
            .tempdir()
            .context("Failed to create a temp dir for a standby")?;
        let port = free_port()?;
        let cpus = opts.cpus.clone();
        let container = tokio::task::spawn_blocking(move || {
            crate::docker::Container::new(Kind::Postgres, port, false, cpus.as_deref(), vec![])
        })
        .await
        .context("the Docker thread failed")??;
        // As for a local standby: `-R` writes standby.signal and the
        // conninfo; `--checkpoint=fast` so an idle primary answers at once.
        // Run as root in the one-off container, so the files are handed to
        // `postgres` after.
        let script = format!(
            "set -e; mkdir -p \"$PGDATA\"; \
             pg_basebackup -D \"$PGDATA\" -h {ip} -p 5432 -U postgres -R -X stream --no-sync --checkpoint=fast; \
             chown -R postgres:postgres \"$PGDATA\"; chmod 700 \"$PGDATA\""
        );
        let container = tokio::task::spawn_blocking(move || {
            container
                .run_once_on_volume(&script, Duration::from_secs(120))
                .map(|_| container)
        })
        .await
        .context("the Docker thread failed")?
        .context("pg_basebackup in a container failed")?;
        let mut instance = Instance {
            kind: Kind::Postgres,
            port,
            dir,
            settings: opts.settings,
            cpus: opts.cpus,
            runner: Runner::Container(Arc::new(Mutex::new(container))),
        };
        instance.start().await?;
        tracing::info!(
            port = instance.port,
            primary = primary.port,
            "started a streaming standby container in {:.1?}",
            t0.elapsed()
        );
        Ok(instance)
    }

    /// The server's process id on this machine, while it runs (for a
    /// container, its first process: the images `exec` the server).
    pub fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Process { child, .. } => child.as_ref().map(Child::id),
            Runner::Container(c) => locked(c).pid(),
        }
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.runner {
            Runner::Process { child, .. } => match child.as_mut() {
                Some(c) => matches!(c.try_wait(), Ok(None)),
                None => false,
            },
            Runner::Container(c) => locked(c).is_running(),
        }
    }

    /// Kills the server with SIGKILL: a crash, not a shutdown. Nothing is
    /// flushed and no peer is told; a Redis Cluster notices only when the
    /// node stops answering its pings (lesson 9's failover). The data dir
    /// stays, and [`start`](Self::start) brings the server back on it.
    pub fn kill(&mut self) {
        match &mut self.runner {
            Runner::Process { child, .. } => {
                if let Some(mut child) = child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Runner::Container(c) => locked(c).kill(),
        }
    }

    /// Stops the server cleanly, as an outage would: clients see their
    /// connections closed and new ones refused. The data dir stays.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let child = match &mut self.runner {
            Runner::Process { child, .. } => child.take(),
            Runner::Container(c) => {
                return on_container(c, |c| c.stop(STOP_TIMEOUT)).await?;
            }
        };
        let Some(mut child) = child else {
            return Ok(());
        };
        let deadline = self.begin_stop(&child);
        while !reap(self.kind, &mut child, deadline) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Sends the clean-stop signal and returns when to stop waiting for it.
    /// SIGINT is PostgreSQL's "fast" shutdown (it disconnects clients instead
    /// of waiting for them); SIGTERM is the clean stop for the others.
    fn begin_stop(&self, child: &Child) -> Instant {
        let sig = if self.kind == Kind::Postgres {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        signal(child, sig);
        Instant::now() + STOP_TIMEOUT
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        if let Runner::Container(c) = &self.runner {
            return locked(c).log_tail(20);
        }
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!(
            "--- last lines of {} ---\n{tail}",
            self.log_path().display()
        )
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Drop cannot await, so this is the blocking twin of `stop`. A
        // container is removed, with its volume, by its own Drop.
        let Runner::Process { child, .. } = &mut self.runner else {
            return;
        };
        if let Some(mut child) = child.take() {
            let deadline = self.begin_stop(&child);
            while !reap(self.kind, &mut child, deadline) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Whether the child has exited; past `deadline` it is killed, and has.
fn reap(kind: Kind, child: &mut Child, deadline: Instant) -> bool {
    if !matches!(child.try_wait(), Ok(None)) {
        return true;
    }
    if Instant::now() > deadline {
        tracing::warn!(server = %kind, "did not stop within {STOP_TIMEOUT:?}; killing it");
        let _ = child.kill();
        let _ = child.wait();
        return true;
    }
    false
}

#[allow(unsafe_code)]
fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped, so
    // the pid cannot have been reused by another process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Runs in the child between fork and exec:
///
/// - asks the kernel to stop the server if the process that spawned it dies
///   without dropping its `Instance` (a test killed by a timeout, a Ctrl-C),
///   so no private server outlives its owner. The signal follows the *thread*
///   that spawned the child: spawn from a thread that lives as long as the
///   instance (a test's thread, `main`, a runtime worker), not from
///   `spawn_blocking`;
/// - pins the server to `cpus` (`LAB_PIN_SERVERS`), for measurements.
#[allow(unsafe_code)]
pub(crate) fn prepare_child(cmd: &mut Command, cpus: Option<libc::cpu_set_t>) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl and sched_setaffinity are async-signal-safe syscalls, and
    // the closure only reads a set it owns. std runs it after setuid, which
    // would otherwise clear the death signal.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if let Some(set) = &cpus
                && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (cmd, cpus);
}

/// `LAB_REQUIRE_LOCAL=1`: a test that needs a private instance fails when
/// the server binaries are missing, instead of skipping. CI sets it.
pub const REQUIRE_LOCAL_ENV: &str = "LAB_REQUIRE_LOCAL";

/// `LAB_HIDE_LOCAL_BINARIES=1`: [`Binaries::find`] ignores the binaries the
/// system has installed (PATH, `/usr/lib/postgresql/*/bin`, `/usr/sbin`, …),
/// as on a machine without the server packages; only a folder named
/// explicitly (`LAB_BIN_DIR`, [`SpawnOptions::bin_dir`]) is still searched.
/// It lets a machine that has the packages check what an attendee without
/// them sees: a lesson's test skips (or fails, with `LAB_REQUIRE_LOCAL=1`),
/// an exercise's test fails naming what to install.
pub const HIDE_LOCAL_ENV: &str = "LAB_HIDE_LOCAL_BINARIES";

fn env_is_1(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// Why `test` cannot start a private `kind`, with the fix; `None` when it
/// can (local binaries, or Docker: [`RunnerKind::choose`]).
fn missing_binaries(kind: Kind, test: &str) -> Option<String> {
    let e = RunnerKind::choose(kind, &SpawnOptions::plain()).err()?;
    Some(format!(
        "{test} needs a private {kind}, from the local server binaries or as a Docker container, \
         but neither is available: {e:#}. Install them: {} (or point {BIN_DIR_ENV} at a folder that holds them), or start \
         Docker (`just images` builds images for a machine that cannot pull)",
        kind.install_hint()
    ))
}

/// Whether this machine can start a private `kind`, for a *lesson's* test
/// that needs one (special settings, or a server it stops). On a machine
/// with neither the server packages nor Docker it cannot: the test skips,
/// and says so in the test output; `LAB_REQUIRE_LOCAL=1` makes that a
/// failure.
///
/// The SKIPPED line is written to stderr directly, not with `eprintln!`:
/// libtest captures the print macros of a passing test and shows nothing,
/// which made a skip look exactly like a pass. A direct write to the
/// process's stderr is not captured.
pub fn can_spawn(kind: Kind, test: &str) -> bool {
    let Some(why) = missing_binaries(kind, test) else {
        return true;
    };
    if env_is_1(REQUIRE_LOCAL_ENV) {
        panic!("{why} ({REQUIRE_LOCAL_ENV}=1 makes this a failure, not a skip)");
    }
    // libtest names each test's thread after the test.
    let name = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("\nSKIPPED {name}: {why}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

/// The same for a test that is about the *local binaries* themselves
/// (`LAB_BACKEND=local`'s spawn path): a container does not stand in.
pub fn can_spawn_local(kind: Kind, test: &str) -> bool {
    let opts = SpawnOptions {
        backend: Some(crate::Backend::Local),
        ..SpawnOptions::plain()
    };
    let Err(e) = RunnerKind::choose(kind, &opts) else {
        return true;
    };
    let why = format!(
        "{test} is about a private {kind} from the local binaries, and {e:#}. Install them: {}",
        kind.install_hint()
    );
    if env_is_1(REQUIRE_LOCAL_ENV) {
        panic!("{why} ({REQUIRE_LOCAL_ENV}=1 makes this a failure, not a skip)");
    }
    let name = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("\nSKIPPED {name}: {why}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

/// For an *exercise's* test: panics, naming what to install, when this
/// machine cannot spawn a private `kind`. An exercise must never pass
/// without running: a skipped test would report an untouched `todo!()`
/// starter as "ok".
pub fn require_spawn(kind: Kind, test: &str) {
    if let Some(why) = missing_binaries(kind, test) {
        panic!("{why}");
    }
}

/// The binaries a kind of server needs.
#[derive(Debug)]
pub struct Binaries {
    pub server: PathBuf,
    /// initdb or mariadb-install-db.
    pub init: Option<PathBuf>,
}

impl Binaries {
    /// Looks in `bin_dir`, then the usual places: Debian's
    /// `/usr/lib/postgresql/N/bin` (newest first), `/usr/sbin`, and `PATH`;
    /// with `LAB_HIDE_LOCAL_BINARIES=1`, in `bin_dir` only.
    pub fn find(kind: Kind, opts: &SpawnOptions) -> anyhow::Result<Binaries> {
        let mut dirs: Vec<PathBuf> = opts.bin_dir.iter().cloned().collect();
        let hidden = env_is_1(HIDE_LOCAL_ENV);
        if !opts.only_bin_dir && !hidden {
            if kind == Kind::Postgres {
                dirs.extend(debian_postgres_bin_dirs());
            }
            dirs.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            dirs.extend(
                [
                    "/usr/sbin",
                    "/usr/local/sbin",
                    "/usr/bin",
                    "/opt/homebrew/bin",
                ]
                .map(PathBuf::from),
            );
        }
        let (servers, inits): (&[&str], &[&str]) = match kind {
            Kind::Postgres => (&["postgres"], &["initdb"]),
            Kind::Redis => (&["redis-server"], &[]),
            Kind::MySql => (
                &["mariadbd", "mysqld"],
                &["mariadb-install-db", "mysql_install_db"],
            ),
        };
        // For PostgreSQL, both binaries must come from one folder (one version).
        let find_in = |dir: &Path, names: &[&str]| {
            names.iter().map(|n| dir.join(n)).find(|p| is_executable(p))
        };
        if kind == Kind::Postgres {
            for d in &dirs {
                if let (Some(server), Some(init)) = (find_in(d, servers), find_in(d, inits)) {
                    return Ok(Binaries {
                        server,
                        init: Some(init),
                    });
                }
            }
        } else {
            let server = dirs.iter().find_map(|d| find_in(d, servers));
            let init = if inits.is_empty() {
                None
            } else {
                dirs.iter().find_map(|d| find_in(d, inits))
            };
            if let Some(server) = server
                && (inits.is_empty() || init.is_some())
            {
                return Ok(Binaries { server, init });
            }
        }
        let wanted = servers
            .iter()
            .chain(inits)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        let looked = if opts.only_bin_dir || hidden {
            let dir = opts
                .bin_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "no folder".into());
            if hidden {
                format!("{dir}; {HIDE_LOCAL_ENV}=1 hides the system's binaries")
            } else {
                dir
            }
        } else {
            "LAB_BIN_DIR, /usr/lib/postgresql/*/bin, PATH and /usr/sbin".to_string()
        };
        bail!("{wanted} not found (looked in {looked})")
    }
}

fn debian_postgres_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, p)| p).collect()
}

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A port nobody listens on right now. Another process could take it before
/// the server binds it; the window is tiny and a failed start says so.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("Failed to find a free port")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn is_root() -> bool {
    // SAFETY-free: geteuid has no preconditions, but libc marks it unsafe.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

fn current_user() -> String {
    if is_root() {
        return "root".into();
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// (uid, gid) of a user, from /etc/passwd.
fn lookup_user(name: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("Failed to read /etc/passwd")?;
    parse_passwd(&passwd, name).with_context(|| format!("no user {name:?} in /etc/passwd"))
}

fn parse_passwd(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        let _pw = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        let p = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(parse_passwd(p, "postgres"), Some((101, 104)));
        assert_eq!(parse_passwd(p, "nobody"), None);
    }

    #[test]
    fn missing_binaries_are_named() {
        let opts = SpawnOptions {
            bin_dir: Some("/nonexistent".into()),
            only_bin_dir: true,
            ..Default::default()
        };
        let err = Binaries::find(Kind::Postgres, &opts)
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("`postgres` and `initdb` not found"), "{err}");
        assert!(err.contains("/nonexistent"), "{err}");
    }
}
