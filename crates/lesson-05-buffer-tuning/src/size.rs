//! Memory sizes as people type them (`16GB`, `512MB`, `4G`, `1.5TB`), and
//! as PostgreSQL and MariaDB configs write them.
//!
//! Units are binary (1GB = 1024MB), as PgTune and both servers use them.

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;
const GB: u64 = 1024 * MB;
const TB: u64 = 1024 * GB;

/// The smallest machine the formulas make sense for (PgTune warns below it).
pub const MIN_RAM: u64 = 256 * MB;

/// Parses `16GB`, `16G`, `16GiB`, `512MB`, `1.5TB` (case-insensitive,
/// spaces allowed) into bytes. A bare number is an error, not a guess at
/// the unit.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let hint = "use a number and a unit, e.g. 16GB, 512MB or 1.5TB";
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a memory size: {hint}"))?;
    if value == 0.0 {
        return Err(format!("{s:?} is zero: give the server's RAM, {hint}"));
    }
    let mult = match unit.as_str() {
        "KB" | "K" | "KIB" => KB,
        "MB" | "M" | "MIB" => MB,
        "GB" | "G" | "GIB" => GB,
        "TB" | "T" | "TIB" => TB,
        "" => return Err(format!("{s:?} has no unit: {hint}")),
        _ => return Err(format!("{s:?} has an unknown unit {unit:?}: {hint}")),
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < MIN_RAM as f64 {
        return Err(format!(
            "{s:?} is below 256MB, too small for these formulas (they are for database servers)"
        ));
    }
    if bytes > (64 * TB) as f64 {
        return Err(format!("{s:?} is above 64TB; check the unit"));
    }
    Ok(bytes as u64)
}

/// A size in kB as PostgreSQL and PgTune write it: the largest unit that
/// divides it exactly (`4GB`, `16MB`, `20165kB`).
pub fn pg_kb(kb: u64) -> String {
    if kb > 0 && kb.is_multiple_of(GB / KB) {
        format!("{}GB", kb / (GB / KB))
    } else if kb > 0 && kb.is_multiple_of(MB / KB) {
        format!("{}MB", kb / (MB / KB))
    } else {
        format!("{kb}kB")
    }
}

/// A size in bytes as MariaDB writes it (`12G`, `384M`, `65536K`).
pub fn my_bytes(b: u64) -> String {
    if b > 0 && b.is_multiple_of(GB) {
        format!("{}G", b / GB)
    } else if b > 0 && b.is_multiple_of(MB) {
        format!("{}M", b / MB)
    } else {
        format!("{}K", b / KB)
    }
}

/// A MariaDB setting as `SELECT @@name` shows it: sizes in bytes
/// (`3G` → `3221225472`), anything else as written (`O_DIRECT`, `0`).
pub fn parse_my(value: &str) -> String {
    let (num, mult) = match value.chars().last() {
        Some('G') => (&value[..value.len() - 1], GB),
        Some('M') => (&value[..value.len() - 1], MB),
        Some('K') => (&value[..value.len() - 1], KB),
        _ => return value.to_string(),
    };
    num.parse::<u64>()
        .map(|n| (n * mult).to_string())
        .unwrap_or_else(|_| value.to_string())
}

/// A size for people: `16GB`, `1.5GB`, `512MB`.
pub fn human(b: u64) -> String {
    if b >= GB {
        let g = b as f64 / GB as f64;
        if g.fract() == 0.0 {
            format!("{g:.0}GB")
        } else {
            format!("{g:.1}GB")
        }
    } else {
        format!("{}MB", b / MB)
    }
}

pub const fn gb(n: u64) -> u64 {
    n * GB
}
pub const fn mb(n: u64) -> u64 {
    n * MB
}

/// This machine's RAM (`MemTotal` in `/proc/meminfo`), for "25% of RAM".
pub fn ram_bytes() -> anyhow::Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| anyhow::anyhow!("cannot read /proc/meminfo for the RAM size: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb << 10)
        .ok_or_else(|| anyhow::anyhow!("no MemTotal line in /proc/meminfo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_only() {
        assert_eq!(parse_size("16GB"), Ok(gb(16)));
        assert_eq!(parse_size("16 gib"), Ok(gb(16)));
        assert_eq!(parse_size("4G"), Ok(gb(4)));
        assert_eq!(parse_size("512MB"), Ok(mb(512)));
        assert_eq!(parse_size("1.5TB"), Ok(gb(1536)));
        for bad in ["0", "0GB", "lots", "16", "16XB", "", "-4GB", "100MB", "GB"] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.contains(bad) || bad.is_empty(), "{e}");
        }
        assert!(parse_size("16").expect_err("no unit").contains("no unit"));
        assert!(parse_size("lots").expect_err("nan").contains("e.g. 16GB"));
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(pg_kb(4 * 1024 * 1024), "4GB");
        assert_eq!(pg_kb(16 * 1024), "16MB");
        assert_eq!(pg_kb(20164), "20164kB");
        assert_eq!(my_bytes(gb(12)), "12G");
        assert_eq!(my_bytes(mb(384)), "384M");
        assert_eq!(human(gb(16)), "16GB");
    }
}
