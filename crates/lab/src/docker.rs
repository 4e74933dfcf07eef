//! Servers as Docker containers: discovery's step 3, and private instances
//! on a machine that has Docker but not the server packages.
//!
//! The harness drives the `docker` command line, not a Docker client crate:
//! a private instance needs things a container library does not offer in
//! one place (recreate a container on the same volume and port with new
//! settings, `docker kill`, the server's host PID for lesson 7's pauses,
//! CPU pinning), and every `docker` call here is bounded by a timeout, so a
//! stuck daemon is an error, never a hang.
//!
//! # The image contract
//!
//! The harness asks of an image only what the official `postgres`, `redis`
//! and `mariadb` images do ([`spec`]):
//!
//! - **PostgreSQL**: `POSTGRES_HOST_AUTH_METHOD=trust` and `POSTGRES_DB=test`
//!   (and `POSTGRES_INITDB_ARGS`), port 5432, data under
//!   `/var/lib/postgresql`, user `postgres`; arguments starting with `-` go
//!   to `postgres` (`-c shared_buffers=16MB`).
//! - **Redis**: port 6379, arguments go to `redis-server` (`--maxmemory 10mb`).
//! - **MariaDB**: `MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1` and
//!   `MARIADB_DATABASE=test`, port 3306, data in `/var/lib/mysql`, `root`
//!   with an empty password from any host; arguments go to `mariadbd`.
//!
//! Readiness is the harness's own: it polls the port with a real login.
//!
//! # Environment
//!
//! - `LAB_POSTGRES_IMAGE`, `LAB_REDIS_IMAGE`, `LAB_MARIADB_IMAGE`: the image
//!   to run. The defaults are the official images pinned in
//!   `docker-compose.yml`, read from that file at compile time, so the two
//!   cannot drift. `eval "$(just images)"` selects images built locally from
//!   Debian's packages, for a machine that cannot pull.
//!
//! # Clean-up
//!
//! Every container and volume the harness creates carries the label
//! `workshop.lab.owner=PID:START` (its process and that process's start
//! time). Dropping an [`Container`] removes both. A run killed before it
//! could (`kill -9`, a test timeout) leaves them behind; the next run's
//! first container start sweeps every labelled container and volume whose
//! owner process is gone. Nothing without the label is ever touched.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::kind::Kind;

/// The label every container and volume of the harness carries.
pub const OWNER_LABEL: &str = "workshop.lab.owner";

/// How long one `docker` call may take (a `run`, `stop` or `inspect`).
/// Generous: a loaded 2-core machine creates a container in about a second.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long pulling an image may take, the first time (an official image is
/// 50 to 150 MB).
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// What the harness asks Docker for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `name:tag`.
    pub image: String,
    /// The env var that overrides it.
    pub image_env: &'static str,
    pub env: Vec<(&'static str, &'static str)>,
    /// The port inside the container.
    pub port: u16,
    /// Where the server keeps its data inside the container: the harness
    /// mounts a volume of its own there, so a stopped or recreated container
    /// starts on the same data.
    pub data_dir: &'static str,
}

/// The image's env var for each kind of server.
pub fn image_env(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => "LAB_POSTGRES_IMAGE",
        Kind::Redis => "LAB_REDIS_IMAGE",
        Kind::MySql => "LAB_MARIADB_IMAGE",
    }
}

/// The compose file, read at compile time: its `image:` lines are the
/// harness's default images.
const COMPOSE: &str = include_str!("../../../docker-compose.yml");

/// The image `docker-compose.yml` pins for this server's service.
pub fn default_image(kind: Kind) -> &'static str {
    let service = match kind {
        Kind::Postgres => "postgres",
        Kind::Redis => "redis",
        Kind::MySql => "mariadb",
    };
    compose_image(COMPOSE, service)
        .unwrap_or_else(|| panic!("docker-compose.yml has no `image:` for service {service}"))
}

/// The `image:` of `service` in a compose file (two-space indented services,
/// as ours is).
fn compose_image<'a>(compose: &'a str, service: &str) -> Option<&'a str> {
    let header = format!("  {service}:");
    let mut lines = compose.lines().skip_while(|l| l.trim_end() != header);
    lines.next()?;
    lines
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .find_map(|l| l.trim().strip_prefix("image:").map(str::trim))
}

pub fn spec(kind: Kind) -> ContainerSpec {
    let image_env = image_env(kind);
    let image = std::env::var(image_env)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default_image(kind).to_string());
    match kind {
        Kind::Postgres => ContainerSpec {
            image,
            image_env,
            // Trust auth and a database named `test`, as on the workshop's machines.
            env: vec![
                ("POSTGRES_HOST_AUTH_METHOD", "trust"),
                ("POSTGRES_DB", "test"),
            ],
            port: 5432,
            data_dir: "/var/lib/postgresql",
        },
        Kind::Redis => ContainerSpec {
            image,
            image_env,
            env: vec![],
            port: 6379,
            data_dir: "/data",
        },
        Kind::MySql => ContainerSpec {
            image,
            image_env,
            env: vec![
                ("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1"),
                ("MARIADB_DATABASE", "test"),
            ],
            port: 3306,
            data_dir: "/var/lib/mysql",
        },
    }
}

/// The server's arguments in a container: the settings, passed as each
/// official image's entrypoint passes them on. Unlike a local instance, no
/// port, bind address or data dir: the image owns those.
pub fn server_args(
    kind: Kind,
    settings: &[(String, String)],
    host_port: Option<u16>,
) -> Vec<String> {
    let mut args = Vec::new();
    match kind {
        Kind::Postgres => {
            if let Some(p) = host_port {
                args.extend(["-c".into(), format!("port={p}")]);
                args.extend(["-c".into(), "listen_addresses=127.0.0.1".into()]);
            }
            for (k, v) in settings {
                args.push("-c".into());
                args.push(format!("{k}={v}"));
            }
        }
        Kind::Redis => {
            // Nothing on disk, as the local instances and the shared server.
            args.extend([
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ]);
            if let Some(p) = host_port {
                args.extend([
                    "--port".into(),
                    p.to_string(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                ]);
            }
            for (k, v) in settings {
                args.push(format!("--{k}"));
                args.push(v.clone());
            }
        }
        Kind::MySql => {
            if let Some(p) = host_port {
                args.push(format!("--port={p}"));
                args.push("--bind-address=127.0.0.1".into());
            }
            // As for a local instance: a cold pool on every start, no binlog.
            args.extend([
                "--innodb-buffer-pool-load-at-startup=0".into(),
                "--innodb-buffer-pool-dump-at-shutdown=0".into(),
                "--skip-log-bin".into(),
            ]);
            for (k, v) in settings {
                args.push(format!("--{k}={v}"));
            }
        }
    }
    args
}

/// A Docker daemon looks reachable: `DOCKER_HOST` is set, or the default
/// socket exists. Starting a container still may fail, with a named error.
pub fn reachable() -> bool {
    std::env::var_os("DOCKER_HOST").is_some_and(|v| !v.is_empty())
        || Path::new("/var/run/docker.sock").exists()
}

/// The daemon's version, or why there is none, with the fix.
pub fn daemon_version() -> anyhow::Result<String> {
    let out = docker_sync(
        &["version", "--format", "{{.Server.Version}}"],
        Duration::from_secs(10),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the Docker daemon does not answer ({e:#}). Start Docker (on the workshop's machines \
             `just images` installs and starts it), or point DOCKER_HOST at a daemon"
        )
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `image` is on this machine (no pull).
pub fn image_present(image: &str) -> anyhow::Result<bool> {
    let out = docker_raw(
        &["image", "inspect", "--format", "{{.Id}}", image],
        CALL_TIMEOUT,
    )?;
    Ok(out.status.success())
}

/// Makes sure `image` is here: pulls it the first time (bounded), or names
/// the fix when it cannot.
fn ensure_image(spec: &ContainerSpec) -> anyhow::Result<()> {
    if image_present(&spec.image)? {
        return Ok(());
    }
    tracing::info!(image = %spec.image, "pulling {} (first time only; 50–150 MB)", spec.image);
    let t0 = Instant::now();
    docker_sync(&["pull", "--quiet", &spec.image], PULL_TIMEOUT).map_err(|e| {
        anyhow::anyhow!(
            "image {} is not on this machine and could not be pulled ({e:#}). Pull it where a \
             registry is reachable, set {} to an image you have, or build local ones from \
             Debian's packages: eval \"$(just images)\"",
            spec.image,
            spec.image_env
        )
    })?;
    tracing::info!(image = %spec.image, "pulled in {:.1?}", t0.elapsed());
    Ok(())
}

/// This process's owner label value: its PID and its start time (in clock
/// ticks since boot), so a reused PID does not pass for the owner.
fn owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}:{}", start_time(pid).unwrap_or(0))
    })
}

/// Field 22 of `/proc/PID/stat`: when the process started. None when the
/// process is gone, or is a zombie (exited, not yet reaped by its parent):
/// a zombie's stat still reads, but its containers are as orphaned as a
/// dead process's.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
    // Field 3, the state: `Z` for a zombie, `X` for a dying process.
    if matches!(fields.next()?, "Z" | "X") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether this machine has `/proc` (Linux). Without it (macOS, where
/// Docker Desktop runs the daemon in a VM) an owner is checked by its PID
/// alone.
fn have_procfs() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

/// Whether the process named by an owner label still runs.
fn owner_alive(label: &str) -> bool {
    let Some((pid, start)) = label.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if have_procfs() {
        return start_time(pid) == Some(start);
    }
    // No /proc: `kill(pid, 0)` says whether the PID exists (EPERM: it does,
    // as another user's). A reused PID passes for the owner, so a sweep may
    // leave a dead run's containers for a later one; it never removes a
    // live run's, which treating every owner as dead would.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    #[allow(unsafe_code)]
    // SAFETY: signal 0 sends nothing; kill(2) only checks the PID.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes every labelled container and volume whose owner is gone: what a
/// killed run left behind. Returns how many containers it removed. Only
/// the harness's label is looked at.
pub fn sweep() -> anyhow::Result<usize> {
    let dead = sweep_objects(&["ps", "-a"], "{{.ID}}", &["rm", "-f", "-v"])?;
    if dead > 0 {
        tracing::info!("removed {dead} container(s) a killed run left behind");
    }
    sweep_objects(&["volume", "ls"], "{{.Name}}", &["volume", "rm", "-f"])?;
    Ok(dead)
}

/// Lists the labelled objects (`list` + `--filter`, each row `name_format`
/// and its owner label) and removes (`remove` + names) those whose owner is
/// gone. Returns how many it removed.
fn sweep_objects(list: &[&str], name_format: &str, remove: &[&str]) -> anyhow::Result<usize> {
    let filter = format!("label={OWNER_LABEL}");
    let format = format!("{name_format}\t{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let mut args = list.to_vec();
    args.extend(["--filter", &filter, "--format", &format]);
    let out = docker_sync(&args, CALL_TIMEOUT)?;
    let dead: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, owner)| !owner_alive(owner))
        .map(|(name, _)| name.to_string())
        .collect();
    if !dead.is_empty() {
        let mut args = remove.to_vec();
        args.extend(dead.iter().map(String::as_str));
        docker_sync(&args, CALL_TIMEOUT)?;
    }
    Ok(dead.len())
}

fn sweep_once() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        if let Err(e) = sweep() {
            tracing::warn!("could not sweep containers left by killed runs: {e:#}");
        }
    });
}

/// A container the harness created, with its own volume. Dropping it
/// removes both.
#[derive(Debug)]
pub struct Container {
    kind: Kind,
    spec: ContainerSpec,
    /// The container's (and its volume's) name: `lab-<kind>-<pid>-<n>`.
    name: String,
    host_port: u16,
    /// Host networking (lesson 9's cluster, whose nodes must reach each
    /// other at the addresses they announce): the server listens on
    /// `host_port` on the host's loopback itself. Linux only.
    host_network: bool,
    cpus: Option<String>,
    extra_env: Vec<(String, String)>,
    /// The arguments the current container was created with; another
    /// setting needs a new container on the same volume.
    created_with: Option<Vec<String>>,
    /// The server's host PID since the last start, cleared by a stop.
    pid: Option<u32>,
}

impl Container {
    /// Names a container; nothing runs until [`run`](Self::run).
    pub fn new(
        kind: Kind,
        host_port: u16,
        host_network: bool,
        cpus: Option<&[usize]>,
        extra_env: Vec<(String, String)>,
    ) -> anyhow::Result<Container> {
        daemon_version()?;
        sweep_once();
        let spec = spec(kind);
        ensure_image(&spec)?;
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "lab-{}-{}-{n}",
            kind.name().to_lowercase(),
            std::process::id()
        );
        // The volume first, labelled, so a run killed between the two
        // leaves nothing the sweep cannot find.
        docker_sync(
            &[
                "volume",
                "create",
                "--label",
                &format!("{OWNER_LABEL}={}", owner()),
                &name,
            ],
            CALL_TIMEOUT,
        )?;
        Ok(Container {
            kind,
            spec,
            name,
            host_port,
            host_network,
            cpus: cpus.map(|c| c.iter().map(usize::to_string).collect::<Vec<_>>().join(",")),
            extra_env,
            created_with: None,
            pid: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn image(&self) -> &str {
        &self.spec.image
    }

    /// Starts the server with these settings: `docker start` when the
    /// container exists with the same ones, else a new container on the same
    /// volume and port. Returns at once; the caller waits for readiness.
    pub fn run(&mut self, settings: &[(String, String)]) -> anyhow::Result<()> {
        let args = server_args(
            self.kind,
            settings,
            self.host_network.then_some(self.host_port),
        );
        if self.created_with.as_ref() == Some(&args) {
            docker_sync(&["start", &self.name], CALL_TIMEOUT).map_err(|e| self.port_error(e))?;
            self.pid = self.inspect_pid();
            return Ok(());
        }
        if self.created_with.is_some() {
            self.remove_container();
        }
        let mut cmd: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            self.name.clone(),
            "--label".into(),
            format!("{OWNER_LABEL}={}", owner()),
            "-v".into(),
            format!("{}:{}", self.name, self.spec.data_dir),
        ];
        if self.host_network {
            cmd.extend(["--network".into(), "host".into()]);
        } else {
            // Published on loopback only, as every server here.
            cmd.extend([
                "-p".into(),
                format!("127.0.0.1:{}:{}", self.host_port, self.spec.port),
            ]);
        }
        if let Some(cpus) = &self.cpus {
            cmd.push(format!("--cpuset-cpus={cpus}"));
        }
        for (k, v) in &self.spec.env {
            cmd.extend(["-e".into(), format!("{k}={v}")]);
        }
        for (k, v) in &self.extra_env {
            cmd.extend(["-e".into(), format!("{k}={v}")]);
        }
        cmd.push(self.spec.image.clone());
        cmd.extend(args.iter().cloned());
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        match docker_sync(&refs, CALL_TIMEOUT) {
            Ok(_) => {
                self.created_with = Some(args);
                self.pid = self.inspect_pid();
                Ok(())
            }
            Err(e) => {
                // `docker run` may have created the container before failing
                // (a port taken at start): remove it, keep the volume.
                self.created_with = Some(args);
                self.remove_container();
                Err(self.port_error(e))
            }
        }
    }

    /// A failed `docker run` or `docker start`: a taken port named as
    /// such, anything else with the image named.
    fn port_error(&self, e: anyhow::Error) -> anyhow::Error {
        let text = format!("{e:#}");
        if text.contains("address already in use") || text.contains("port is already allocated") {
            return anyhow::anyhow!(
                "port {} on 127.0.0.1 is taken by another program, so the {} container cannot \
                 publish it: stop that program, or run again for another free port ({text})",
                self.host_port,
                self.kind
            );
        }
        e.context(format!(
            "Failed to start a {} container from {}",
            self.kind, self.spec.image
        ))
    }

    /// The container's state: running, and its exit code when not.
    pub fn state(&self) -> anyhow::Result<(bool, i64)> {
        let out = docker_sync(
            &[
                "inspect",
                "--format",
                "{{.State.Running}} {{.State.ExitCode}}",
                &self.name,
            ],
            CALL_TIMEOUT,
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut f = text.split_whitespace();
        let running = f.next() == Some("true");
        let code = f.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
        Ok((running, code))
    }

    /// The server's PID on the host, while it runs: the official
    /// entrypoints `exec` the server, so it is the container's first process.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn inspect_pid(&self) -> Option<u32> {
        let out = docker_sync(
            &["inspect", "--format", "{{.State.Pid}}", &self.name],
            CALL_TIMEOUT,
        )
        .ok()?;
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        (pid != 0).then_some(pid)
    }

    pub fn is_running(&self) -> bool {
        self.created_with.is_some() && self.state().is_ok_and(|(r, _)| r)
    }

    /// `docker stop`: the image's clean stop (SIGTERM), killed past `within`.
    pub fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        if self.created_with.is_none() {
            return Ok(());
        }
        let secs = within.as_secs().max(1).to_string();
        docker_sync(&["stop", "-t", &secs, &self.name], within + CALL_TIMEOUT)?;
        self.pid = None;
        Ok(())
    }

    /// `docker kill`: SIGKILL, a crash. The volume stays.
    pub fn kill(&mut self) {
        if self.created_with.is_some() {
            let _ = docker_sync(&["kill", &self.name], CALL_TIMEOUT);
        }
        self.pid = None;
    }

    /// The last `lines` lines of the server's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let n = lines.to_string();
        match docker_raw(&["logs", "--tail", &n, &self.name], CALL_TIMEOUT) {
            Ok(out) => format!(
                "--- last lines of `docker logs {}` ---\n{}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("(no log: {e:#})"),
        }
    }

    /// Writes the whole server output into `path` (a local instance's log
    /// file, for code that reads it).
    pub fn dump_log(&self, path: &Path) {
        if let Ok(out) = docker_raw(&["logs", &self.name], CALL_TIMEOUT) {
            let mut all = out.stdout;
            all.extend_from_slice(&out.stderr);
            let _ = std::fs::write(path, all);
        }
    }

    /// A command run inside the container (`docker exec NAME program`).
    pub fn exec(&self, program: &str) -> Command {
        let mut cmd = Command::new(docker_bin());
        cmd.args(["exec", &self.name, program]);
        cmd
    }

    /// The container's address on Docker's bridge network, where another
    /// container reaches it (a standby streaming from its primary).
    pub fn bridge_ip(&self) -> anyhow::Result<String> {
        let out = docker_sync(
            &[
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &self.name,
            ],
            CALL_TIMEOUT,
        )?;
        let ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
        anyhow::ensure!(
            !ip.is_empty(),
            "container {} has no bridge address",
            self.name
        );
        Ok(ip)
    }

    /// Runs a one-off command in this image with this container's volume
    /// mounted (the container itself stopped or not yet created): how a
    /// standby's data dir is filled by `pg_basebackup`.
    pub fn run_once_on_volume(&self, script: &str, within: Duration) -> anyhow::Result<Output> {
        let volume = format!("{}:{}", self.name, self.spec.data_dir);
        let label = format!("{OWNER_LABEL}={}", owner());
        docker_sync(
            &[
                "run",
                "--rm",
                "--label",
                &label,
                "-v",
                &volume,
                "--entrypoint",
                "sh",
                &self.spec.image,
                "-c",
                script,
            ],
            within,
        )
    }

    /// Removes the container at once (the volume stays): a container that
    /// never became ready.
    pub fn kill_and_remove(&mut self) {
        self.remove_container();
    }

    fn remove_container(&mut self) {
        if self.created_with.take().is_some() {
            let _ = docker_sync(&["rm", "-f", &self.name], CALL_TIMEOUT);
        }
        self.pid = None;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove_container();
        let _ = docker_sync(&["volume", "rm", "-f", &self.name], CALL_TIMEOUT);
    }
}

fn docker_bin() -> &'static str {
    "docker"
}

/// Runs `docker ARGS`, killed past `within`; the output whatever the status.
fn docker_raw(args: &[&str], within: Duration) -> anyhow::Result<Output> {
    let mut cmd = Command::new(docker_bin());
    cmd.args(args);
    run_sync(
        cmd,
        within,
        &format!("docker {}", args.first().unwrap_or(&"")),
    )
}

/// Runs `docker ARGS`, killed past `within`; a failure carries its stderr.
fn docker_sync(args: &[&str], within: Duration) -> anyhow::Result<Output> {
    let out = docker_raw(args, within)?;
    if !out.status.success() {
        bail!(
            "`docker {}` failed ({}): {}",
            args.iter().take(3).copied().collect::<Vec<_>>().join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs a command to completion, killed past `within`. Blocking: call it
/// from `spawn_blocking`, `Drop`, or code that already blocks.
pub(crate) fn run_sync(mut cmd: Command, within: Duration, what: &str) -> anyhow::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| {
        format!("Failed to run {what} (is the docker command installed? `just doctor` checks)")
    })?;
    // Read both pipes on threads, so a chatty command cannot fill one and
    // block before it exits.
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
        b
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_compose_file_and_are_pinned() {
        for kind in Kind::ALL {
            let image = default_image(kind);
            let (name, tag) = image.split_once(':').expect("name:tag");
            assert!(
                tag.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{kind}: pin a version, not {tag:?}"
            );
            assert!(COMPOSE.contains(&format!("image: {name}:{tag}")));
            assert_eq!(spec(kind).port, kind.default_port());
        }
        assert_eq!(
            default_image(Kind::Postgres).split(':').next(),
            Some("postgres")
        );
        assert_eq!(
            default_image(Kind::MySql).split(':').next(),
            Some("mariadb")
        );
        assert!(
            spec(Kind::Postgres)
                .env
                .contains(&("POSTGRES_HOST_AUTH_METHOD", "trust"))
        );
        assert!(
            spec(Kind::MySql)
                .env
                .contains(&("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1"))
        );
    }

    #[test]
    fn compose_images_are_found_per_service() {
        let compose = "services:\n  postgres:\n    image: postgres:18.1\n\n  redis:\n    command: [x]\n    image: redis:8.2\n";
        assert_eq!(compose_image(compose, "postgres"), Some("postgres:18.1"));
        assert_eq!(compose_image(compose, "redis"), Some("redis:8.2"));
        assert_eq!(compose_image(compose, "mariadb"), None);
    }

    #[test]
    fn settings_reach_the_server_as_each_image_takes_them() {
        let s = vec![("shared_buffers".to_string(), "16MB".to_string())];
        assert_eq!(
            server_args(Kind::Postgres, &s, None),
            ["-c", "shared_buffers=16MB"]
        );
        let r = vec![("maxmemory".to_string(), "10mb".to_string())];
        let args = server_args(Kind::Redis, &r, Some(7001));
        assert!(
            args.windows(2).any(|w| w == ["--maxmemory", "10mb"]),
            "{args:?}"
        );
        assert!(args.windows(2).any(|w| w == ["--port", "7001"]), "{args:?}");
        let m = vec![("innodb_buffer_pool_size".to_string(), "64M".to_string())];
        assert!(
            server_args(Kind::MySql, &m, None)
                .contains(&"--innodb_buffer_pool_size=64M".to_string())
        );
    }

    #[test]
    fn owners_are_alive_only_while_their_process_runs() {
        assert!(owner_alive(owner()), "this process owns {}", owner());
        assert!(
            !owner_alive("1:18446744073709551615"),
            "pid 1 started at another time"
        );
        assert!(!owner_alive("4194304:1"), "no such pid");
        assert!(!owner_alive("garbage"));
    }

    #[test]
    fn a_zombie_owner_is_dead() {
        // A child that exits and is not reaped yet: its /proc stat still
        // reads (state Z), but its containers are orphans.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(start_time(pid), None, "a zombie has no start time here");
        child.wait().expect("reap");
    }
}
