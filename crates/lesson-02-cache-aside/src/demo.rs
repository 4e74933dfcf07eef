//! The scripted demo behind `just lesson-2`: miss, hit, TTL, write, outage.
//!
//! It runs against a private Redis spawned for the demo, because step 5
//! stops Redis, and a demo must never stop a server someone else uses.

use std::time::Duration;

use anyhow::Context;
use lab::Kind;
use lab::demo::{client, print_header, print_row, request};
use lab::spawn::{Instance, SpawnOptions};
use redis::AsyncCommands;

use crate::cli::Args;
use crate::metrics::REDIS_ERRORS;
use crate::{router, state};

/// Provisions, serves on a free loopback port, runs the script, and stops.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let latency_ms = args.common.latency_ms;
    println!(
        "Lesson 2: cache-aside. Redis in front of a PostgreSQL that takes {latency_ms} ms per query."
    );
    println!(
        "Keys live {} s (CACHE_TTL_SECS); every Redis call gives up after {} ms (REDIS_TIMEOUT_MS).\n",
        args.ttl_secs, args.redis_timeout_ms
    );

    let (_pg, pool) = args.common.provision_postgres().await?;
    let mut redis = Instance::start_new(Kind::Redis, SpawnOptions::plain())
        .await
        .context("the demo needs a private Redis (redis-server on PATH)")?;
    let state = state(pool, &redis.url(), args.settings())?;
    let metrics = state.metrics.clone();
    let mut cache = state.redis.clone();
    let running = lab::http::spawn_server(router(state), 0).await?;
    let base = running.base_url();
    println!(
        "\nserving on {base}, caching in a private Redis at {}\n",
        redis.url()
    );

    let client = client(args.common.db_timeout() + Duration::from_secs(5))?;
    print_header();
    let get = |path: &'static str, why: &'static str| {
        let (client, base) = (&client, &base);
        async move {
            let a = request(client, base, path, None).await?;
            print_row(&format!("GET {path}"), &a, why);
            anyhow::Ok(a)
        }
    };

    get("/users/123", "1. first read: a miss, then the key is set").await?;
    get("/users/123", "2. again: a hit, no database").await?;
    let ttl: i64 = cache.ttl("user:123").await.unwrap_or(-2);
    println!("{:<26} key user:123 expires in {ttl} s", "TTL user:123");

    // A new email on every run, so the read after the PUT visibly changes.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let email = format!("ada+{stamp}@example.com");
    let body = serde_json::json!({ "name": "Ada Lovelace", "email": email });
    let a = request(&client, &base, "/users/123", Some(&body)).await?;
    print_row("PUT /users/123", &a, "3. update the row, delete the key");
    get("/users/123", "   the next read misses, sees the new data").await?;

    redis.stop().await?;
    println!("{:<26} Redis is down", "(stop Redis)");
    get("/users/124", "4. Redis down: served from the database").await?;
    println!(
        "{:<26} redis_errors_total {}",
        "GET /metrics",
        metrics.counter(REDIS_ERRORS)
    );

    redis.start().await?;
    println!("{:<26} Redis is back, same port, empty", "(start Redis)");
    // The connection manager notices and reconnects by itself; the first
    // request after the restart may still find the old connection broken.
    for _ in 0..3 {
        let a = get("/users/124", "5. caching resumes, no restart").await?;
        if a.cache == "HIT" {
            break;
        }
    }
    running.shutdown().await?;
    println!(
        "\nThe hit skipped the database entirely; the outage cost only the database's own latency."
    );
    println!("Lesson 3 makes the cache useful when the database is the one that is down.");
    Ok(())
}
