//! Finding a server: env URL, default port, Docker, then a private instance.
//!
//! The order matters for a workshop. Someone who points `DATABASE_URL` at a
//! server they run gets exactly that. An attendee with the usual local
//! servers (or `just services-up`) gets those, at no start-up cost. With
//! Docker and nothing running, a container. With only the server packages
//! installed, a private instance in a temp dir. Every step logs what it found,
//! and when all four fail the error lists each way to fix it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::kind::{Kind, ping};
use crate::spawn::{self, Instance, SpawnOptions};
use anyhow::Context;

/// Which discovery steps to try, from `LAB_BACKEND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// All four steps in order (the default).
    #[default]
    Auto,
    /// Only servers someone else runs: the env URL or the default port.
    External,
    /// Only Docker containers: discovery's step 3, and every private
    /// instance (`Instance::start_new`) a container too.
    Docker,
    /// Only a private instance from local binaries.
    Local,
}

pub const BACKEND_ENV: &str = "LAB_BACKEND";

impl FromStr for Backend {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Backend::Auto),
            "external" => Ok(Backend::External),
            "docker" => Ok(Backend::Docker),
            "local" => Ok(Backend::Local),
            other => {
                anyhow::bail!("{BACKEND_ENV}={other:?} is not one of auto, external, docker, local")
            }
        }
    }
}

/// Where a server came from. Logged, and shown by `just doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The env var named this URL.
    EnvUrl,
    /// A server answered on the default local port.
    DefaultPort,
    /// A Docker container the harness started.
    Docker,
    /// A private instance spawned by the harness.
    Private,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::EnvUrl => "env URL",
            Origin::DefaultPort => "default local port",
            Origin::Docker => "Docker container",
            Origin::Private => "private instance",
        })
    }
}

/// A server to talk to. Keep it alive as long as you use its URL: dropping
/// it stops a container or private instance it owns.
pub struct Server {
    kind: Kind,
    url: String,
    origin: Origin,
    keep: Keep,
}

// What keeps the server running; dropped with the `Server`.
enum Keep {
    Nothing,
    /// A private instance: a process, or a container (step 3).
    Private(Box<Instance>),
}

impl Server {
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
    /// The private instance behind this server, if the harness started it
    /// (a local process or a container).
    pub fn instance(&mut self) -> Option<&mut Instance> {
        match &mut self.keep {
            Keep::Private(i) => Some(i),
            _ => None,
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("origin", &self.origin)
            .finish()
    }
}

/// What discovery looks at. [`Probe::from_env`] is what every lesson uses;
/// tests build one by hand to force a path or to make every step fail.
#[derive(Clone, Debug)]
pub struct Probe {
    pub backend: Backend,
    /// The env URL, when set.
    pub env_url: Option<String>,
    /// The URL of a server on the default local port.
    pub default_url: String,
    /// Whether a Docker daemon looks reachable.
    pub docker: bool,
    /// Where to look for server binaries, before the usual places.
    pub bin_dir: Option<PathBuf>,
    /// Only look in `bin_dir` (tests use this to hide the real binaries).
    pub only_bin_dir: bool,
}

impl Probe {
    pub fn from_env(kind: Kind) -> anyhow::Result<Probe> {
        let backend = match std::env::var(BACKEND_ENV) {
            Ok(v) => v.parse()?,
            Err(_) => Backend::Auto,
        };
        Ok(Probe {
            backend,
            env_url: std::env::var(kind.env_var())
                .ok()
                .filter(|v| !v.trim().is_empty()),
            default_url: kind.default_url().to_string(),
            docker: docker_reachable(),
            bin_dir: std::env::var_os(spawn::BIN_DIR_ENV).map(PathBuf::from),
            only_bin_dir: false,
        })
    }

    fn spawn_options(&self) -> SpawnOptions {
        SpawnOptions {
            bin_dir: self.bin_dir.clone(),
            only_bin_dir: self.only_bin_dir,
            cpus: crate::pin::server_cpus().ok().flatten(),
            // Step 4 is the local binaries, whatever LAB_BACKEND says
            // (step 3 starts its container itself).
            backend: Some(Backend::Local),
            ..SpawnOptions::default()
        }
    }
}

/// Finds a server of `kind`, as `LAB_BACKEND` and the env URL say.
pub async fn discover(kind: Kind) -> anyhow::Result<Server> {
    discover_with(kind, &Probe::from_env(kind)?).await
}

// ANCHOR: discover
/// Finds a server of `kind` with an explicit probe.
pub async fn discover_with(kind: Kind, probe: &Probe) -> anyhow::Result<Server> {
    let mut tried: Vec<String> = Vec::new();
    let b = probe.backend;

    // 1. An env URL is an instruction, not a hint: if it is set and does not
    //    answer, say so rather than silently using some other server.
    if matches!(b, Backend::Auto | Backend::External) {
        match &probe.env_url {
            Some(url) => {
                ping(kind, url).await.with_context(|| {
                    format!(
                        "{} is set to {} but that server does not answer",
                        kind.env_var(),
                        redact(url)
                    )
                })?;
                return Ok(found(kind, url.clone(), Origin::EnvUrl, Keep::Nothing));
            }
            None => tried.push(format!("{}: not set", kind.env_var())),
        }
        // 2. The default local port.
        match ping(kind, &probe.default_url).await {
            Ok(()) => {
                return Ok(found(
                    kind,
                    probe.default_url.clone(),
                    Origin::DefaultPort,
                    Keep::Nothing,
                ));
            }
            Err(e) => tried.push(format!("{}: {e:#}", redact(&probe.default_url))),
        }
    }

    // 3. Docker.
    if matches!(b, Backend::Auto | Backend::Docker) {
        match start_container(kind, probe).await {
            Ok(server) => return Ok(server),
            Err(e) => tried.push(format!("Docker: {e:#}")),
        }
    }

    // 4. A private instance from local binaries.
    if matches!(b, Backend::Auto | Backend::Local) {
        match Instance::start_new(kind, probe.spawn_options()).await {
            Ok(instance) => {
                let url = instance.url();
                return Ok(found(
                    kind,
                    url,
                    Origin::Private,
                    Keep::Private(Box::new(instance)),
                ));
            }
            Err(e) => tried.push(format!("local binaries: {e:#}")),
        }
    }

    Err(NotFound {
        kind,
        backend: b,
        tried,
    }
    .into())
}
// ANCHOR_END: discover

fn found(kind: Kind, url: String, origin: Origin, keep: Keep) -> Server {
    tracing::info!(server = %kind, %origin, url = %redact(&url), "using {kind} from the {origin}");
    Server {
        kind,
        url,
        origin,
        keep,
    }
}

/// Step 3: a container of the image `LAB_*_IMAGE` names (default: the
/// official one `docker-compose.yml` pins), labelled, on a free loopback
/// port; the same as a private instance run by Docker.
async fn start_container(kind: Kind, probe: &Probe) -> anyhow::Result<Server> {
    if !probe.docker {
        anyhow::bail!(
            "no Docker daemon (DOCKER_HOST is unset and /var/run/docker.sock is missing)"
        );
    }
    let instance = Instance::start_container(kind, probe.spawn_options()).await?;
    Ok(found(
        kind,
        instance.url(),
        Origin::Docker,
        Keep::Private(Box::new(instance)),
    ))
}

/// The error when every step failed. Its text is the fix.
#[derive(Debug)]
pub struct NotFound {
    pub kind: Kind,
    pub backend: Backend,
    pub tried: Vec<String>,
}

impl std::error::Error for NotFound {}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.kind;
        writeln!(
            f,
            "no {k} server found ({BACKEND_ENV}={:?}). Tried:",
            self.backend
        )?;
        for (i, t) in self.tried.iter().enumerate() {
            writeln!(f, "  {}. {t}", i + 1)?;
        }
        writeln!(f, "Fix it in one of these ways:")?;
        writeln!(
            f,
            "  - set {}={} to a server you run",
            k.env_var(),
            example_url(k)
        )?;
        writeln!(
            f,
            "  - start the workshop's servers: `just services-up` (Docker Compose)"
        )?;
        writeln!(
            f,
            "  - install the server binaries so the harness can spawn a private one: {}",
            k.install_hint()
        )?;
        writeln!(
            f,
            "    (or point {} at the folder that holds them)",
            spawn::BIN_DIR_ENV
        )?;
        if self.backend != Backend::Auto {
            writeln!(
                f,
                "  - unset {BACKEND_ENV} to let the harness try every way"
            )?;
        }
        write!(f, "Run `just doctor` to see what each step finds.")
    }
}

fn example_url(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => "postgres://USER:PASSWORD@HOST:5432/DB",
        Kind::Redis => "redis://HOST:6379",
        Kind::MySql => "mysql://USER:PASSWORD@HOST:3306/DB",
    }
}

/// A Docker daemon looks reachable: `DOCKER_HOST` is set, or the default
/// socket exists. Starting a container still may fail; that is step 3's error.
pub fn docker_reachable() -> bool {
    crate::docker::reachable()
}

// ANCHOR: redact
/// Query parameters whose value is a secret: PostgreSQL's `password` and
/// `sslpassword`, and the names other drivers and proxies use.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|s| name.contains(s))
}

/// Hides every secret in a URL before it reaches a log line: the password
/// in `user:password@`, and the value of any query parameter that holds
/// one (`?password=`, `?sslpassword=`, `?token=` …).
///
/// The `url` crate parses it, not a `split_once('@')`: a password may hold
/// an unescaped `@` (`u:p@ss@host`), and the userinfo ends at the *last* `@`
/// before the host, which the URL standard's parser knows and a first-`@`
/// split does not (it logged `ss@host` as the host, with the rest of the
/// password in it). A URL that does not parse is not logged at all beyond
/// its scheme: better an unhelpful log line than a leaked password.
pub fn redact(raw: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut url) = url::Url::parse(raw) else {
        let scheme = raw.split_once("://").map_or("", |(scheme, _)| scheme);
        return format!("{scheme}://<unparsable URL hidden>");
    };
    if url.password().is_some() {
        // Only fails for URLs that cannot have credentials, which this has.
        let _ = url.set_password(Some(HIDDEN));
    }
    if url.query_pairs().any(|(k, _)| is_secret_param(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    HIDDEN.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}
// ANCHOR_END: redact

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_parses_and_rejects_typos() {
        assert_eq!("local".parse::<Backend>().ok(), Some(Backend::Local));
        assert_eq!("Docker".parse::<Backend>().ok(), Some(Backend::Docker));
        assert_eq!("".parse::<Backend>().ok(), Some(Backend::Auto));
        let err = "lcoal"
            .parse::<Backend>()
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("auto, external, docker, local"), "{err}");
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("mysql://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
    }

    /// Issue 18, defect 6: a password in the query string was logged whole,
    /// and one holding an `@` was cut at its first `@`.
    #[test]
    fn query_string_and_at_sign_passwords_are_hidden() {
        for (url, secret) in [
            ("postgres://u@h:5432/db?password=hunter2", "hunter2"),
            (
                "postgres://h/db?sslmode=require&PASSWORD=hunter2",
                "hunter2",
            ),
            (
                "postgres://h/db?sslpassword=hunter2&application_name=x",
                "hunter2",
            ),
            ("postgres://h/db?pwd=hunter2", "hunter2"),
            ("postgres://h/db?token=hunter2&secret=hunter3", "hunter"),
            ("postgres://u:p@ss@w0rd@h:5432/db", "ss"),
            ("postgres://u:p%40ss@h:5432/db", "ss"),
            ("redis://:hunter2@127.0.0.1:6379", "hunter2"),
            ("postgres://u:hunter2@h/db?password=hunter2", "hunter2"),
        ] {
            let shown = redact(url);
            assert!(!shown.contains(secret), "{url} was logged as {shown}");
            assert!(shown.contains("***"), "{url} was logged as {shown}");
        }
        assert_eq!(
            redact("postgres://u:p@ss@h:5432/db?sslmode=require&password=x"),
            "postgres://u:***@h:5432/db?sslmode=require&password=***"
        );
        let unparsable = redact("postgres://u:hunter2@[::1/db");
        assert!(!unparsable.contains("hunter2"), "{unparsable}");
    }
}
