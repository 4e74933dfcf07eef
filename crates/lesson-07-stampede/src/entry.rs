//! What one cache entry holds, and how long it lives.
//!
//! Lesson 2 kept the user's JSON and nothing else. Two of this lesson's
//! cures need more, so an entry is `{"u": user or null, "d": Δ, "x": expiry}`:
//!
//! - `d`, **Δ**, how long the load that produced it took, in ms: XFetch
//!   recomputes earlier for values that are slow to recompute;
//! - `x`, the expiry as Unix time in ms: XFetch needs the time left. A
//!   `PTTL` beside the `GET` would give it too (in a pipeline, one round
//!   trip), measured by Redis's clock; a wall-clock expiry is simpler but
//!   trusts the instances' clocks to agree: one whose clock runs a second
//!   ahead sees every entry a second nearer its expiry, and refreshes
//!   early more often (NTP keeps servers within milliseconds);
//! - `u: null`, a **negative entry**: "this id does not exist", cached for
//!   a shorter time than a user.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lab::users::User;
use serde::{Deserialize, Serialize};

/// One entry, as stored under `user:{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The user, or `None`: it was not found (a negative entry).
    #[serde(rename = "u")]
    pub user: Option<User>,
    /// Δ: how long the load took, in ms.
    #[serde(rename = "d")]
    pub delta_ms: u64,
    /// When Redis drops it, in Unix ms.
    #[serde(rename = "x")]
    pub expiry_ms: u64,
}

/// Now, in Unix ms (the clock entries' expiries are written in).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ANCHOR: jitter
/// The TTL a new entry gets: `ttl`, shortened by up to `jitter` of itself,
/// `u` being a uniform draw in [0, 1).
///
/// Keys written together (a warm-up, a deploy, a restart that refilled
/// everything) expire together, and the database takes all their loads in
/// one instant. A random TTL spreads those expiries over `jitter × ttl`.
/// Shorter, never longer: `ttl` stays the promise about how old an answer
/// can be. A `jitter` of 0 is the plain TTL.
pub fn jittered_ttl(ttl: Duration, jitter: f64, u: f64) -> Duration {
    let cut = jitter.clamp(0.0, 1.0) * u.clamp(0.0, 1.0);
    // Never zero: `PX 0` is an error in Redis.
    ttl.mul_f64(1.0 - cut).max(Duration::from_millis(1))
}
// ANCHOR_END: jitter

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_ttls_fall_in_their_range() {
        let ttl = Duration::from_secs(60);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut shortest = ttl;
        for _ in 0..10_000 {
            let t = jittered_ttl(ttl, 0.2, rng.f64());
            assert!(t <= ttl, "{t:?} is longer than the TTL");
            assert!(t > ttl.mul_f64(0.8), "{t:?} is more than 20% shorter");
            shortest = shortest.min(t);
        }
        // The draws spread over the whole range, not one point of it.
        assert!(shortest < ttl.mul_f64(0.81), "shortest {shortest:?}");
        assert_eq!(jittered_ttl(ttl, 0.0, 0.9), ttl, "no jitter, the TTL");
        assert_eq!(jittered_ttl(ttl, 0.2, 0.0), ttl);
        assert_eq!(
            jittered_ttl(Duration::from_millis(1), 1.0, 0.999),
            Duration::from_millis(1),
            "never zero"
        );
    }

    #[test]
    fn an_entry_round_trips_with_short_names() {
        let e = Entry {
            user: None,
            delta_ms: 12,
            expiry_ms: 1_700_000_000_000,
        };
        let json = serde_json::to_string(&e).expect("serialises");
        assert_eq!(json, r#"{"u":null,"d":12,"x":1700000000000}"#);
        assert_eq!(serde_json::from_str::<Entry>(&json).expect("parses"), e);
    }
}
