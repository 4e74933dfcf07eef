//! XFetch: probabilistic early recomputation (Vattani, Chierichetti and
//! Lowenstein, "Optimal Probabilistic Cache Stampede Prevention", PVLDB
//! 8(8), 2015).
//!
//! Instead of letting a hot key expire and then fighting over who reloads
//! it, each read of a *fresh* entry flips a biased coin, and the one that
//! wins recomputes before the expiry, while everyone else still gets the
//! cached value. No lock, no coordination, no extra round trip: the
//! decision needs only what the entry carries (Δ and the expiry).
//!
//! A read at time `now` recomputes when
//!
//! ```text
//! now − Δ·β·ln(r) ≥ expiry        r uniform in (0, 1]
//! ```
//!
//! `−ln(r)` is an exponential draw with mean 1, so the read recomputes
//! when that draw is at least `t / (βΔ)`, with `t = expiry − now` the time
//! left. For an exponential draw `E`, `P(E ≥ a) = e^(−a)`, hence:
//!
//! ```text
//! P(recompute | t left) = e^(−t / (βΔ))
//! ```
//!
//! With Δ = 50 ms and β = 1, a read 500 ms before expiry recomputes with
//! probability e^(−10) ≈ 0.005 %, one 50 ms before with e^(−1) ≈ 37 %. So
//! the recomputation happens within a few Δ of the expiry, by one of the
//! few reads that land there, and a key read often enough never expires at
//! all. β > 1 starts earlier (more recomputations, less chance of a miss);
//! β < 1 later.

use std::time::Duration;

// ANCHOR: decide
/// Whether a read at `now_ms` of an entry that expires at `expiry_ms` and
/// took `delta` to compute should recompute it now. `r` is the random
/// draw, uniform in [0, 1); passed in so that tests can fix it.
pub fn should_recompute(now_ms: u64, expiry_ms: u64, delta: Duration, beta: f64, r: f64) -> bool {
    if now_ms >= expiry_ms {
        return true;
    }
    // `1 − r` is in (0, 1]: ln(0) would be −∞, a certain recomputation.
    let draw = -(1.0 - r.clamp(0.0, 1.0)).ln(); // exponential, mean 1
    let early_ms = delta.as_secs_f64() * 1000.0 * beta.max(0.0) * draw;
    now_ms as f64 + early_ms >= expiry_ms as f64
}
// ANCHOR_END: decide

/// `e^(−t / (βΔ))`: the chance that one read with `left` to go recomputes.
pub fn probability(left: Duration, delta: Duration, beta: f64) -> f64 {
    let scale = delta.as_secs_f64() * beta;
    if scale <= 0.0 {
        return if left.is_zero() { 1.0 } else { 0.0 };
    }
    (-left.as_secs_f64() / scale).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_decision_follows_the_draw() {
        let delta = 50 * MS;
        // 100 ms left, Δ = 50 ms: recompute when −ln(1 − r) ≥ 2, i.e.
        // r ≥ 1 − e^(−2) ≈ 0.8647.
        assert!(!should_recompute(900, 1000, delta, 1.0, 0.86));
        assert!(should_recompute(900, 1000, delta, 1.0, 0.87));
        // β = 2 halves the threshold: −ln(1 − r) ≥ 1, r ≥ 0.632.
        assert!(!should_recompute(900, 1000, delta, 2.0, 0.63));
        assert!(should_recompute(900, 1000, delta, 2.0, 0.64));
        // At or past the expiry, always; a draw of 0, never before it.
        assert!(should_recompute(1000, 1000, delta, 1.0, 0.0));
        assert!(should_recompute(1500, 1000, delta, 1.0, 0.0));
        assert!(!should_recompute(999, 1000, delta, 1.0, 0.0));
        // Δ = 0 (free to recompute): never early.
        assert!(!should_recompute(999, 1000, Duration::ZERO, 1.0, 0.999));
    }

    #[test]
    fn the_share_of_early_reads_matches_the_formula() {
        let delta = 50 * MS;
        let mut rng = fastrand::Rng::with_seed(42);
        for left_ms in [10u64, 50, 100, 200] {
            let n = 200_000;
            let hits = (0..n)
                .filter(|_| should_recompute(10_000 - left_ms, 10_000, delta, 1.0, rng.f64()))
                .count();
            let seen = hits as f64 / n as f64;
            let want = probability(Duration::from_millis(left_ms), delta, 1.0);
            // 200k draws: the standard error is under 0.0012.
            assert!(
                (seen - want).abs() < 0.006,
                "{left_ms} ms left: {seen} vs e^(-t/βΔ) = {want}"
            );
        }
        assert!((probability(50 * MS, 50 * MS, 1.0) - (-1.0f64).exp()).abs() < 1e-12);
    }
}
