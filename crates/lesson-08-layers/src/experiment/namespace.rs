//! Experiment 4: versioned keys. Every user key carries a namespace
//! version (`users:v7:42`); bumping the version (`INCR`) invalidates every
//! key at once, because readers stop asking for the old names. The old
//! keys are not deleted: they are orphans, holding memory until their TTL.
//! Against it: finding and deleting the same keys (`SCAN` + `DEL`).

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::Fixture;

pub const SHOWS: &str =
    "one INCR invalidates every key of a namespace; the old keys stay until their TTL";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NamespaceResults {
    pub keys: usize,
    pub ttl_s: u64,
    /// One `INCR` of a namespace version (µs, the median of 21).
    pub bump_us: f64,
    /// `SCAN MATCH` for the namespace's keys and `DEL` of them (ms).
    pub scan_delete_ms: f64,
    /// Keys under the prefix after the bump and a refill: old and new.
    pub keys_after_bump: usize,
    pub orphans: usize,
    /// `MEMORY USAGE` of the orphans, summed (bytes).
    pub orphan_bytes: u64,
}

/// The key of user `id` in namespace version `v`.
pub fn versioned_key(prefix: &str, v: i64, id: usize) -> String {
    format!("{prefix}users:v{v}:{id}")
}

pub async fn run(fx: &Fixture, plan: &Plan) -> anyhow::Result<NamespaceResults> {
    let mut redis = lab::testing::redis_conn(&fx.redis_url).await?;
    let prefix = fx.prefix.key("ns:");
    let ns = format!("{prefix}version");
    let ttl = Duration::from_secs(300);
    let body =
        serde_json::json!({"id": 0, "name": "User 0", "email": "user0@example.com"}).to_string();

    let fill = |v: i64| {
        let mut p = redis::pipe();
        for id in 0..plan.ns_keys {
            p.set_ex(versioned_key(&prefix, v, id), &body, ttl.as_secs())
                .ignore();
        }
        p
    };
    let v1: i64 = redis.incr(&ns, 1).await?;
    let _: () = redis.expire(&ns, ttl.as_secs() as i64).await?;
    let _: () = fill(v1).query_async(&mut redis).await?;

    // The bump itself, timed over 21 bumps of a scratch counter (one
    // INCR is a few tens of µs: one sample would be noise).
    let scratch = format!("{prefix}scratch");
    let mut took = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let _: i64 = redis.incr(&scratch, 1).await?;
        took.push(t.elapsed());
    }
    let _: () = redis.expire(&scratch, ttl.as_secs() as i64).await?;
    let v2: i64 = redis.incr(&ns, 1).await?;
    let _: () = fill(v2).query_async(&mut redis).await?;

    let all = scan(&mut redis, &format!("{prefix}users:v*")).await?;
    let orphans: Vec<&String> = all
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}users:v{v1}:")))
        .collect();
    let mut p = redis::pipe();
    for k in &orphans {
        p.cmd("MEMORY").arg("USAGE").arg(k.as_str());
    }
    let sizes: Vec<Option<u64>> = p.query_async(&mut redis).await?;

    // The alternative: find the old keys and delete them.
    let t = Instant::now();
    let old = scan(&mut redis, &format!("{prefix}users:v{v1}:*")).await?;
    for chunk in old.chunks(500) {
        let _: () = redis.del(chunk).await?;
    }
    let scan_delete = t.elapsed();

    let results = NamespaceResults {
        keys: plan.ns_keys,
        ttl_s: ttl.as_secs(),
        bump_us: lab::units::quantile_ms(&took, 0.5) * 1000.0,
        scan_delete_ms: scan_delete.as_secs_f64() * 1000.0,
        keys_after_bump: all.len(),
        orphans: orphans.len(),
        orphan_bytes: sizes.into_iter().flatten().sum(),
    };
    println!(
        "  {} keys: one INCR {:.0} µs; SCAN + DEL {:.1} ms; after the bump {} keys, {} orphans holding {}",
        results.keys,
        results.bump_us,
        results.scan_delete_ms,
        results.keys_after_bump,
        results.orphans,
        lab::units::kib_or_mib(results.orphan_bytes)
    );
    Ok(results)
}

/// Every key matching `pattern`, by `SCAN` (never `KEYS`, which blocks
/// Redis for the whole keyspace).
async fn scan(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> anyhow::Result<Vec<String>> {
    let mut cursor = 0u64;
    let mut out = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}
