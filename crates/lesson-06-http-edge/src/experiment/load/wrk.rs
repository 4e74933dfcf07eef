//! `wrk`, the load generator of experiment 1, driven from Rust.
//!
//! Why wrk rather than our own client: a loop of reqwest calls measures
//! reqwest and Tokio as much as the server, and on 2 cores it would share a
//! CPU with whatever it measures. wrk is a small C event loop that keeps N
//! keep-alive connections busy and records every latency in a histogram; it
//! is what people quote nginx's numbers with, so our figures compare.
//!
//! Its normal output is for humans. wrk runs a Lua `done()` hook at the end
//! with the summary, the latency histogram and the request stats; ours
//! ([`DONE_LUA`]) prints one JSON line, tagged [`MARKER`], that
//! [`parse_output`] reads back. Every run is bounded: `-d` seconds of load,
//! `--timeout` per request, and a deadline after which the process is
//! killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// A path to the wrk binary, looked at before `PATH`.
pub const WRK_BIN_ENV: &str = "WRK_BIN";
/// What tags our JSON line in wrk's output.
pub const MARKER: &str = "LAB_WRK ";
/// wrk's per-request timeout: a request slower than this is a timeout
/// error, not a latency sample. Loopback answers take microseconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after its `-d` a wrk may take to print and exit before it is
/// killed (it finishes in-flight requests, then prints).
const EXIT_GRACE: Duration = Duration::from_secs(15);

// ANCHOR: done_lua
/// The `done()` hook: one line of JSON with the requests, the time, the
/// errors by kind and the latency percentiles (wrk's unit: microseconds).
/// `errors.status` is wrk's count of responses with a status of 400 or
/// more; the experiment checks the status of a probe request itself.
/// `%.0f`, not `%d`: LuaJIT and Lua 5.3 disagree on `%d` with a float.
pub const DONE_LUA: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LAB_WRK {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,' ..
    '"status_errors":%.0f,"timeouts":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"#;
// ANCHOR_END: done_lua

/// What one wrk run reports (the line [`DONE_LUA`] prints).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WrkSummary {
    pub requests: u64,
    /// How long the load ran, as wrk measured it.
    pub duration_us: u64,
    /// Response bytes received, headers included.
    pub bytes: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    /// Responses with a status of 400 or more.
    pub status_errors: u64,
    /// Requests that took longer than [`REQUEST_TIMEOUT`].
    pub timeouts: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl WrkSummary {
    /// Requests per second over the run.
    pub fn rps(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }

    /// Every failed request, whatever the reason.
    pub fn errors(&self) -> u64 {
        self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
    }

    /// Bytes per response, headers included.
    pub fn bytes_per_response(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.bytes as f64 / self.requests as f64
    }
}

/// Reads the [`MARKER`] line out of wrk's stdout.
pub fn parse_output(stdout: &str) -> anyhow::Result<WrkSummary> {
    let line = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(MARKER))
        .with_context(|| {
            format!("wrk printed no {MARKER:?} line (did the Lua script run?):\n{stdout}")
        })?;
    serde_json::from_str(line)
        .with_context(|| format!("wrk's summary is not what we print: {line}"))
}

/// How hard to push: connections and wrk threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub connections: u32,
    pub threads: u32,
}

impl Shape {
    /// One connection, one request at a time: latency with no queueing.
    pub const LATENCY: Shape = Shape {
        connections: 1,
        threads: 1,
    };
    // ANCHOR: throughput_shape
    /// 32 connections from **one** wrk thread. One wrk thread drives 32
    /// keep-alive connections easily (it is an epoll loop, like nginx); on a
    /// 2-core machine the client has one core (`LAB_PIN_CLIENT=0`) and the
    /// server the other, so a second wrk thread would only take turns with
    /// the first on the same core, or, unpinned, steal the server's.
    pub const THROUGHPUT: Shape = Shape {
        connections: 32,
        threads: 1,
    };
    // ANCHOR_END: throughput_shape
}

/// One finished run: the summary and the CPUs wrk was allowed on (read
/// from `/proc/PID/status` while it ran, so the placement is observed, not
/// assumed).
#[derive(Clone, Debug)]
pub struct WrkRun {
    pub summary: WrkSummary,
    pub cpus_allowed: String,
}

/// The wrk binary, or why there is none (with the fix).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(WRK_BIN_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{WRK_BIN_ENV}={} is not a file", p.display());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"].map(PathBuf::from))
        .map(|d| d.join("wrk"))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "there is no wrk on this machine: {}",
                lab::edge::INSTALL_HINT
            )
        })
}

/// The Lua script in a file of its own, deleted on drop.
#[derive(Debug)]
pub struct Script(PathBuf);

impl Script {
    pub fn write() -> anyhow::Result<Script> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "lab-wrk-{}-{}.lua",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, DONE_LUA)
            .with_context(|| format!("Failed to write {}", path.display()))?;
        Ok(Script(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs wrk against `url` for `duration` with `shape`, on `cpus` if given.
///
/// Placement: wrk is started from a thread of its own that is pinned to
/// `cpus` first. A child inherits the CPU affinity of the thread that
/// starts it, so wrk runs there from its first instruction: the same as
/// `taskset -c`, without needing taskset or code between fork and exec.
pub async fn run(
    bin: &Path,
    script: &Script,
    url: &str,
    shape: Shape,
    duration: Duration,
    cpus: Option<&[usize]>,
) -> anyhow::Result<WrkRun> {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-t{}", shape.threads))
        .arg(format!("-c{}", shape.connections))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg(format!("{}s", REQUEST_TIMEOUT.as_secs()))
        .arg("-s")
        .arg(script.path())
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpus = cpus.map(<[usize]>::to_vec);
    let deadline = duration + EXIT_GRACE;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wrk-launcher".into())
        .spawn(move || {
            let _ = tx.send(run_blocking(cmd, cpus.as_deref(), deadline));
        })
        .context("Failed to start a thread for wrk")?;
    rx.await
        .context("the thread running wrk died")?
        .with_context(|| format!("wrk {shape:?} for {duration:?} against {url}"))
}

/// Runs `cmd` to completion (or kills it at `deadline`), on the caller's
/// own thread, pinned first.
fn run_blocking(
    mut cmd: Command,
    cpus: Option<&[usize]>,
    deadline: Duration,
) -> anyhow::Result<WrkRun> {
    if let Some(cpus) = cpus {
        lab::pin::pin_current_thread(cpus)?;
    }
    let started = Instant::now();
    let mut child = cmd.spawn().context("Failed to start wrk")?;
    let cpus_allowed = cpus_allowed(&format!("/proc/{}/status", child.id()));
    // wrk prints a dozen lines at the very end, far below a pipe's buffer,
    // so waiting before reading cannot block it on a full pipe.
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("wrk did not finish within {deadline:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child
        .wait_with_output()
        .context("Failed to read wrk's output")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk exited with {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(WrkRun {
        summary: parse_output(&stdout)?,
        cpus_allowed,
    })
}

/// `Cpus_allowed_list` from a `/proc/…/status` file: the CPUs a process or
/// thread may run on, as the kernel sees it ("?" when unreadable).
pub fn cpus_allowed(status_path: &str) -> String {
    std::fs::read_to_string(status_path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Debian's wrk 4.1 prints with our script, trimmed.
    const SAMPLE: &str = "Running 2s test @ http://127.0.0.1:40123/users/42\n\
  1 threads and 32 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
    Latency   812.33us  201.10us   5.12ms   90.12%\n\
    Req/Sec    39.50k     1.20k   41.00k    70.00%\n\
  78601 requests in 2.00s, 30.12MB read\n\
Requests/sec:  39291.52\n\
Transfer/sec:     15.06MB\n\
LAB_WRK {\"requests\":78601,\"duration_us\":2000456,\"bytes\":31583012,\"connect_errors\":0,\"read_errors\":0,\"write_errors\":0,\"status_errors\":3,\"timeouts\":1,\"p50_us\":790,\"p90_us\":1010,\"p99_us\":1530,\"max_us\":5120,\"mean_us\":812.3}\n";

    #[test]
    fn the_summary_line_is_found_and_read() {
        let s = parse_output(SAMPLE).expect("parsed");
        assert_eq!(s.requests, 78_601);
        assert_eq!(s.duration_us, 2_000_456);
        assert_eq!(s.errors(), 4, "status errors and timeouts both count");
        assert_eq!(s.p99_us, 1530.0);
        assert!((s.rps() - 39_291.1).abs() < 1.0, "{}", s.rps());
        assert!((s.bytes_per_response() - 401.8).abs() < 0.1);
    }

    #[test]
    fn output_without_the_line_or_with_a_broken_one_is_an_error() {
        let err = parse_output("Running 2s test @ x\n").expect_err("no line");
        assert!(format!("{err:#}").contains("LAB_WRK"), "{err:#}");
        assert!(parse_output("LAB_WRK {\"requests\":1").is_err());
        assert!(parse_output("LAB_WRK {\"requests\":-1}").is_err());
    }

    #[test]
    fn an_empty_run_has_no_rate() {
        let s = WrkSummary::default();
        assert_eq!(s.rps(), 0.0);
        assert_eq!(s.bytes_per_response(), 0.0);
    }

    #[test]
    fn the_script_prints_every_field_the_parser_needs() {
        // The Lua's format string and the struct must name the same fields.
        for field in [
            "requests",
            "duration_us",
            "bytes",
            "connect_errors",
            "read_errors",
            "write_errors",
            "status_errors",
            "timeouts",
            "p50_us",
            "p90_us",
            "p99_us",
            "max_us",
            "mean_us",
        ] {
            assert!(DONE_LUA.contains(&format!("\"{field}\":")), "{field}");
        }
        assert!(DONE_LUA.contains(MARKER.trim()));
    }
}
