//! Experiment 1: where 10,000 user keys land on a 3-master cluster, and
//! what a multi-key command across slots does.
//!
//! Redis Cluster splits the key space into 16,384 hash slots
//! (`CRC16(key) mod 16384`) and gives each master a range of them. The
//! keys a master holds are the keys whose slots it owns, so an even slot
//! split gives an even key split: counted here twice, by each master's own
//! `DBSIZE` and by the engine's `CLUSTER KEYSLOT` of every key.
//!
//! A command that touches several keys must find them all in one slot:
//! the engine refuses `MGET user:1 user:2` with `CROSSSLOT`, because the
//! two keys may live on different machines. A **hash tag** fixes it: only
//! the part of the key inside `{…}` is hashed, so `{user:42}:profile` and
//! `{user:42}:orders` share a slot. The lesson's keys are
//! `l9:<schema>:{user:ID}` for that reason.

use serde::{Deserialize, Serialize};

use super::fixture::{self, ask, dbsize, keyslots, masters, owner, ranges};
use crate::cache::{Cache, ClientMode, Topology};

/// What this experiment shows, for the demo's heading.
pub const SHOWS: &str = "hash slots spread keys evenly over the masters; a multi-key command needs its keys in one slot (hash tags)";

/// Keys written.
pub const KEYS: i64 = 10_000;

/// One master's share.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MasterShare {
    pub port: u16,
    /// Its slot ranges, as `CLUSTER NODES` says them.
    pub ranges: String,
    pub slots: usize,
    /// By the master's own `DBSIZE`.
    pub keys: u64,
    /// By `CLUSTER KEYSLOT` of every key and the slot map.
    pub keys_by_slot: u64,
}

/// Experiment 1's findings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SlotsResult {
    pub keys: i64,
    pub masters: Vec<MasterShare>,
    /// The two untagged keys and their slots.
    pub untagged: [(String, u16); 2],
    /// The engine's answer to `MGET` of the untagged keys, sent to the
    /// master of the first (the error text, or "OK" if they shared a slot).
    pub untagged_mget: String,
    /// The two tagged keys (one slot).
    pub tagged: [(String, u16); 2],
    /// The engine's answer to `MGET` of the tagged keys: their values.
    pub tagged_mget: String,
    /// What the cluster client did with the untagged `MGET`: redis-rs
    /// splits a multi-slot `MGET` into one `MGET` per slot and joins the
    /// answers, so it works, at the price of a round trip per slot.
    pub client_mget: String,
}

/// Writes [`KEYS`] keys through the lesson's cache on a fresh 3-master
/// cluster and counts where they went; then the `MGET`s.
pub async fn run() -> anyhow::Result<SlotsResult> {
    // No replicas: where keys live is the masters' business, and three
    // fewer processes start faster.
    let cluster = fixture::cluster(3, 0, std::time::Duration::from_secs(3), true).await?;
    let cache = Cache::connect(&Topology::Cluster(cluster.urls()), ClientMode::Bounded).await?;
    fixture::fill(&cache, 1..=KEYS, "1").await?;

    let masters = masters(&cluster).await?;
    let any = masters
        .first()
        .map(|m| m.port)
        .ok_or_else(|| anyhow::anyhow!("no master"))?;
    let keys: Vec<String> = (1..=KEYS).map(fixture::key).collect();
    let slots = keyslots(any, &keys).await?;
    let mut by_slot = vec![0u64; masters.len()];
    for &s in &slots {
        if let Some(i) = owner(&masters, s) {
            by_slot[i] += 1;
        }
    }
    let mut shares = Vec::with_capacity(masters.len());
    for (m, by_slot) in masters.iter().zip(by_slot) {
        shares.push(MasterShare {
            port: m.port,
            ranges: ranges(m),
            slots: m.slot_count(),
            keys: dbsize(m.port).await?,
            keys_by_slot: by_slot,
        });
    }

    // The untagged pair: two users' keys as a naive scheme names them.
    let untagged = ["l9:user:1".to_string(), "l9:user:2".to_string()];
    let tagged = [
        "l9:{user:42}:profile".to_string(),
        "l9:{user:42}:orders".to_string(),
    ];
    for k in &tagged {
        anyhow::ensure!(cache.set(k, "1", fixture::TTL).await, "SET {k} failed");
    }
    let slot_of = |k: &String| {
        let k = k.clone();
        async move {
            keyslots(any, std::slice::from_ref(&k))
                .await
                .map(|s| (k, s[0]))
        }
    };
    let untagged = [slot_of(&untagged[0]).await?, slot_of(&untagged[1]).await?];
    let tagged = [slot_of(&tagged[0]).await?, slot_of(&tagged[1]).await?];

    // Sent to the right master with a plain connection: the engine's own
    // verdict, not the client's.
    let mget = |pair: [(String, u16); 2]| {
        let masters = masters.clone();
        async move {
            let port = owner(&masters, pair[0].1)
                .map(|i| masters[i].port)
                .ok_or_else(|| anyhow::anyhow!("no master for slot {}", pair[0].1))?;
            let r = ask::<Vec<Option<String>>>(
                port,
                redis::cmd("MGET").arg(&pair[0].0).arg(&pair[1].0),
            )
            .await?;
            anyhow::Ok(answer(r))
        }
    };
    let untagged_mget = mget(untagged.clone()).await?;
    let tagged_mget = mget(tagged.clone()).await?;

    let mut conn = cache.connection();
    let client = tokio::time::timeout(
        fixture::NODE_CALL,
        redis::cmd("MGET")
            .arg(&untagged[0].0)
            .arg(&untagged[1].0)
            .query_async::<Vec<Option<String>>>(&mut conn),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the cluster client's MGET timed out"))?;
    let client_mget = answer(client);

    Ok(SlotsResult {
        keys: KEYS,
        masters: shares,
        untagged,
        untagged_mget,
        tagged,
        tagged_mget,
        client_mget,
    })
}

/// An `MGET`'s answer as the tables show it: the values, or the error.
fn answer(r: redis::RedisResult<Vec<Option<String>>>) -> String {
    match r {
        Ok(values) => format!(
            "[{}]",
            values
                .iter()
                .map(|v| v.as_deref().map_or("nil".to_string(), |v| format!("{v:?}")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => {
            // `CROSSSLOT Keys in request don't hash to the same slot`: the
            // engine's words, whatever redis-rs wraps around them.
            let code = e.code().unwrap_or("error");
            let detail = e.detail().unwrap_or_default();
            format!("{code} {detail}").trim().to_string()
        }
    }
}
