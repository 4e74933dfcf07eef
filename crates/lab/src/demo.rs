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
    pub took: Duration,
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
    let body = resp.text().await.unwrap_or_default();
    Ok(Answer {
        status,
        cache,
        body,
        took: t0.elapsed(),
    })
}

/// The header of the demo's table.
pub fn print_header() {
    println!(
        "{:<26} {:>6} {:>7} {:>10}  {:<44} body",
        "request", "status", "x-cache", "time", "why"
    );
}

/// One row of the demo's table.
pub fn print_row(request: &str, a: &Answer, why: &str) {
    println!(
        "{:<26} {:>6} {:>7} {:>10}  {:<44} {}",
        request,
        a.status,
        a.cache,
        fmt_ms(a.took),
        why,
        shorten(&a.body, 60)
    );
}

pub fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn shorten(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
