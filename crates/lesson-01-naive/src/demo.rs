//! The scripted demo behind `just lesson-1`: a few requests, what each cost.

use std::time::Duration;

use lab::demo::{client, print_header, print_row, request};

use crate::cli::{Args, provision};
use crate::router;

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
        why: "a user that does not exist: a full query",
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
    let latency_ms = args.common.latency_ms;
    println!("Lesson 1: the naive endpoint. Every GET /users/{{id}} queries PostgreSQL,");
    println!("which is made to take {latency_ms} ms per query (LAB_DB_LATENCY_MS).\n");

    let (_server, state) = provision(args).await?;
    let running = lab::http::spawn_server(router(state), 0).await?;
    let base = running.base_url();
    println!("\nserving on {base}\n");

    // The slowest request the server can make, before its own database
    // timeout answers 503, plus a margin.
    let client = client(args.common.db_timeout() + Duration::from_secs(5))?;
    print_header();
    let mut reads = Vec::new();
    for step in SCRIPT {
        let a = request(&client, &base, step.path, None).await?;
        print_row(&format!("GET {}", step.path), &a, step.why);
        if step.path == "/users/123" {
            reads.push(a.took);
        }
    }
    running.shutdown().await?;

    if let [first, second] = reads[..] {
        println!(
            "\nBoth reads of user 123 paid the database's latency ({} and {}): the service keeps",
            lab::units::round_trip(first),
            lab::units::round_trip(second)
        );
        println!("nothing between requests. Lesson 2 puts Redis in front of it: `just lesson-2`.");
    }
    Ok(())
}
