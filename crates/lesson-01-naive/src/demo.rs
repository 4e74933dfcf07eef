//! The scripted demo behind `just lesson-1`: a few requests, what each cost.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{Args, provision, router};

/// One request of the script, and why it is there.
struct Step {
    path: &'static str,
    why: &'static str,
}

const SCRIPT: &[Step] = &[
    Step {
        path: "/users/123",
        why: "first read of user 123: a miss, no cache",
    },
    Step {
        path: "/users/123",
        why: "the same user again: a miss again",
    },
    Step {
        path: "/users/424242424",
        why: "a user that does not exist: still a full query",
    },
    Step {
        path: "/users/abc",
        why: "a malformed id: rejected before the database",
    },
    Step {
        path: "/healthz",
        why: "liveness, no database",
    },
];

/// Provisions, serves on a free loopback port, runs the script, and stops.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    println!("Lesson 1: the naive endpoint. Every GET /users/{{id}} queries PostgreSQL,");
    println!(
        "which is made to take {} ms per query (LAB_DB_LATENCY_MS).\n",
        args.latency_ms
    );

    let (_server, state) = provision(args).await?;
    let running = lab::http::spawn_server(router(state), 0).await?;
    let base = running.base_url();
    println!("\nserving on {base}\n");

    // Every network call has a timeout; this one covers the slowest request
    // the server can make before its own database timeout answers 503.
    let client = reqwest::Client::builder()
        .timeout(args.db_timeout() + Duration::from_secs(5))
        .build()
        .context("Failed to build the HTTP client")?;

    println!(
        "{:<22} {:>6} {:>10}  {:<48} body",
        "request", "status", "time", "why"
    );
    let mut slow_reads = Vec::new();
    for step in SCRIPT {
        let t0 = Instant::now();
        let resp = client
            .get(format!("{base}{}", step.path))
            .send()
            .await
            .with_context(|| format!("GET {}", step.path))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let took = t0.elapsed();
        if step.path == "/users/123" {
            slow_reads.push(took);
        }
        println!(
            "GET {:<18} {:>6} {:>10}  {:<48} {}",
            step.path,
            status.as_u16(),
            fmt_ms(took),
            step.why,
            shorten(&body, 60)
        );
    }

    running.shutdown().await?;
    println!();
    if let [first, second] = slow_reads[..] {
        println!(
            "Both reads of user 123 paid the database's latency ({} and {}): the service keeps",
            fmt_ms(first),
            fmt_ms(second)
        );
        println!("nothing between requests. Lesson 2 puts Redis in front of it.");
    }
    Ok(())
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn shorten(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
