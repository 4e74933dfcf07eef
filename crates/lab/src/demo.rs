//! What the lessons' scripted demos share: a client with a timeout, one
//! request timed end to end, and a table row that shows it.

use std::time::{Duration, Instant};

use anyhow::Context;

/// The answer to one demo request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The `X-Cache` header, or "-".
    pub cache: String,
    pub body: String,
    /// End to end, as the client saw it.
    pub took: Duration,
    /// Inside the service, from its `Server-Timing: app;dur=<ms>` header.
    pub server: Option<Duration>,
}

/// A client for the demo: every network call has a timeout.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("Failed to build the HTTP client")
}

/// Sends one request (a JSON body makes it a PUT) and times it.
pub async fn request(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    put: Option<&serde_json::Value>,
) -> anyhow::Result<Answer> {
    let url = format!("{base}{path}");
    let t0 = Instant::now();
    let req = match put {
        Some(body) => client.put(&url).json(body),
        None => client.get(&url),
    };
    let resp = req
        .send()
        .await
        .with_context(|| format!("request to {path}"))?;
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let server = resp
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_server_timing);
    let body = resp.text().await.unwrap_or_default();
    Ok(Answer {
        status,
        cache,
        body,
        took: t0.elapsed(),
        server,
    })
}

/// `app;dur=0.312` → 0.312 ms.
pub fn parse_server_timing(v: &str) -> Option<Duration> {
    let ms: f64 = v
        .split(';')
        .find_map(|p| p.trim().strip_prefix("dur="))?
        .parse()
        .ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
}

/// The header of the demo's table: `time` is the client's, `server` the
/// service's own (its Server-Timing header).
pub fn print_header() {
    println!(
        "{:<26} {:>6} {:>7} {:>10} {:>10}  {:<44} body",
        "request", "status", "x-cache", "time", "server", "why"
    );
}

/// One row of the demo's table.
pub fn print_row(request: &str, a: &Answer, why: &str) {
    println!(
        "{:<26} {:>6} {:>7} {:>10} {:>10}  {:<44} {}",
        request,
        a.status,
        a.cache,
        crate::units::round_trip(a.took),
        a.server
            .map(crate::units::round_trip)
            .unwrap_or_else(|| "-".into()),
        why,
        shorten(&a.body, 60)
    );
}

pub fn shorten(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (`kill`, a service manager, a
/// container's stop) and names it: both are a request to stop cleanly. A
/// demo races its work against this, so that its servers and temp dirs are
/// dropped (and gone) instead of the signal's default action ending the
/// process with no destructor run.
pub async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            r.context("Failed to listen for Ctrl-C")?;
            Ok("Ctrl-C")
        }
        _ = term.recv() => Ok("SIGTERM"),
    }
}

/// A lesson binary's two modes, written once. `--serve` logs at INFO and
/// serves until `serve` returns. Otherwise the demo runs with warnings only
/// (it prints its own progress and tables, which INFO lines would only
/// interleave with; not even sqlx's "slow statement" warnings, which the
/// lessons' slow databases are on purpose; `RUST_LOG` brings the rest
/// back), raced against [`stop_signal`]: on Ctrl-C or SIGTERM the demo
/// future is dropped, and with it every private server, nginx and temp dir
/// it owns, instead of the signal's default action ending the process with
/// no destructor run. `stopped` names what that stops, for the message.
pub async fn run_or_serve(
    serve_mode: bool,
    demo: impl Future<Output = anyhow::Result<()>>,
    serve: impl Future<Output = anyhow::Result<()>>,
    stopped: &str,
) -> anyhow::Result<()> {
    // Both futures are lazy: only the chosen one runs.
    if serve_mode {
        crate::init_tracing();
        return serve.await;
    }
    crate::init_tracing_with("warn,sqlx=error");
    tokio::select! {
        r = demo => r,
        signal = stop_signal() => {
            anyhow::bail!("interrupted ({}): {stopped}", signal?)
        }
    }
}

/// One experiment in a demo's output: its heading and what it shows when
/// it starts, its own duration when it ends (not an offset from the start:
/// a reader compares experiments by what each one took).
#[derive(Debug)]
pub struct Step(Instant);

impl Step {
    pub fn start(n: u8, title: &str, shows: &str) -> Step {
        println!("\nexperiment {n}: {title}\n  what this shows: {shows}");
        Step(Instant::now())
    }
    pub fn done(self) {
        println!("  took {:.1} s", self.0.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_parses() {
        assert_eq!(
            parse_server_timing("app;dur=0.5"),
            Some(Duration::from_micros(500))
        );
        assert_eq!(parse_server_timing("app"), None);
        assert_eq!(parse_server_timing("app;dur=-1"), None);
    }
}
