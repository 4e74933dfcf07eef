//! Durations and byte sizes for people: one place, so a table in the book
//! and a line in a demo print the same quantity the same way.
//!
//! The precision differs on purpose between helpers: a criterion median is
//! worth three significant figures, a demo's round trip one decimal, an
//! index size one decimal of a MiB.

use std::time::Duration;

/// A duration given in nanoseconds, in the unit that suits it, with about
/// three significant figures: `812 ns`, `57.8 µs`, `1.23 ms`, `2.01 s`.
/// Criterion reports nanoseconds, so the report's tables use this.
pub fn nanos(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A latency given in milliseconds, as a load test's percentiles are:
/// `252 ms`, `2.3 ms`, `416 µs`.
pub fn millis(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1000.0)
    }
}

/// One round trip in a demo, always in milliseconds with one decimal, so
/// the column lines up: `2006.1 ms`, `0.7 ms`.
pub fn round_trip(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Bytes in MiB with `decimals` decimals: `38.8 MiB`, `160 MiB`.
pub fn mib(bytes: u64, decimals: usize) -> String {
    format!("{:.decimals$} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Bytes in KiB below a MiB, else in MiB: `824 KiB`, `6.8 MiB`.
pub fn kib_or_mib(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        mib(bytes, 1)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// The q-th quantile (0..=1) of durations, in ms, by nearest rank (the
/// smallest sample with at least q of them at or below it: a value that
/// was measured, never an interpolation). 0 for no samples.
pub fn quantile_ms(took: &[std::time::Duration], q: f64) -> f64 {
    if took.is_empty() {
        return 0.0;
    }
    let mut took = took.to_vec();
    took.sort_unstable();
    let rank = ((q * took.len() as f64).ceil() as usize).clamp(1, took.len());
    took[rank - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_quantity_in_the_unit_that_suits_it() {
        assert_eq!(nanos(812.0), "812 ns");
        assert_eq!(nanos(57_800.0), "57.8 µs");
        assert_eq!(nanos(1_234_000.0), "1.23 ms");
        assert_eq!(nanos(2_010_000_000.0), "2.01 s");
        assert_eq!(millis(252.4), "252 ms");
        assert_eq!(millis(2.34), "2.3 ms");
        assert_eq!(millis(0.416), "416 µs");
        assert_eq!(round_trip(Duration::from_micros(700)), "0.7 ms");
        assert_eq!(mib(40_684_544, 1), "38.8 MiB");
        assert_eq!(mib(167_772_160, 0), "160 MiB");
        assert_eq!(kib_or_mib(843_776), "824 KiB");
        assert_eq!(kib_or_mib(7_130_317), "6.8 MiB");
    }
}
