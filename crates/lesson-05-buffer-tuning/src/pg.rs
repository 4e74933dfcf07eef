//! PostgreSQL settings by PgTune's formulas.
//!
//! Source: PgTune (github.com/le0pard/pgtune),
//! `src/features/configuration/configurationSlice.js`, for Linux and
//! PostgreSQL 15 or newer (the versions this workshop runs). The unit tests
//! pin the results to figures worked out by hand from those formulas.

use crate::size::pg_kb;
use crate::{Machine, Profile, Setting, Storage};

const GB_KB: u64 = 1024 * 1024;
const MB_KB: u64 = 1024;

/// Every PostgreSQL setting the generator writes, in order.
pub fn settings(m: &Machine) -> Vec<Setting> {
    let ram_kb = m.ram / 1024;
    let p = m.profile;
    let max_connections = m.connections.unwrap_or(match p {
        Profile::Web => 200,
        Profile::Oltp => 300,
        Profile::Dw => 40,
        Profile::Desktop => 20,
        Profile::Mixed => 100,
    });
    let shared_buffers = if p == Profile::Desktop {
        ram_kb / 16
    } else {
        ram_kb / 4
    };
    let effective_cache_size = if p == Profile::Desktop {
        ram_kb / 4
    } else {
        ram_kb * 3 / 4
    };
    let maintenance_work_mem = (if p == Profile::Dw {
        ram_kb / 8
    } else {
        ram_kb / 16
    })
    .min(8 * GB_KB);
    let mut wal_buffers = (3 * shared_buffers / 100).min(16 * MB_KB);
    if wal_buffers > 14 * MB_KB {
        wal_buffers = 16 * MB_KB;
    }
    let wal_buffers = wal_buffers.max(32);
    let (min_wal, max_wal) = match p {
        Profile::Web | Profile::Mixed => (1024, 4096),
        Profile::Oltp => (2048, 8192),
        Profile::Dw => (4096, 16384),
        Profile::Desktop => (100, 2048),
    };

    // Parallel settings only from 4 CPUs, as PgTune; below that, work_mem
    // assumes PostgreSQL's default of 8 worker processes.
    let parallel = (m.cpus >= 4).then(|| {
        let per_gather = m.cpus.div_ceil(2);
        let per_gather = if p == Profile::Dw {
            per_gather
        } else {
            per_gather.min(4)
        };
        (m.cpus, per_gather, m.cpus.div_ceil(2).min(4))
    });
    // ANCHOR: work_mem_formula
    // Every connection (and every parallel worker) may run ~3 sort or hash
    // nodes at once, each allowed work_mem: divide what shared_buffers
    // leaves by that worst case, so a busy server cannot run out of RAM.
    let workers_for_work_mem = parallel.map_or(8, |(w, _, _)| u64::from(w));
    let work_mem_base = (ram_kb - shared_buffers) as f64
        / ((max_connections as u64 + workers_for_work_mem) * 3) as f64;
    let work_mem = match p {
        Profile::Web | Profile::Oltp => work_mem_base,
        Profile::Dw | Profile::Mixed => work_mem_base / 2.0,
        Profile::Desktop => work_mem_base / 6.0,
    }
    .floor() as u64;
    let work_mem = work_mem.max(4 * MB_KB);
    // ANCHOR_END: work_mem_formula

    let mut s = vec![
        Setting::new(
            "max_connections",
            max_connections.to_string(),
            "PgTune's default for this profile; put a pooler (PgBouncer) in front rather than raising it",
        ),
        Setting::new(
            "shared_buffers",
            pg_kb(shared_buffers),
            if p == Profile::Desktop {
                "RAM/16: a desktop shares its RAM with everything else"
            } else {
                "RAM/4, the usual starting point; the OS page cache holds data too, so more rarely helps. Needs a restart"
            },
        ),
        Setting::new(
            "effective_cache_size",
            pg_kb(effective_cache_size),
            "a planner hint, not an allocation: how much of the data the OS and shared_buffers can cache together",
        ),
        Setting::new(
            "maintenance_work_mem",
            pg_kb(maintenance_work_mem),
            "memory for VACUUM, CREATE INDEX and ALTER TABLE: RAM/16 (RAM/8 for warehouses), at most 8GB",
        ),
        Setting::new(
            "checkpoint_completion_target",
            "0.9".into(),
            "spread checkpoint writes over 90% of the interval instead of a burst",
        ),
        Setting::new(
            "wal_buffers",
            pg_kb(wal_buffers),
            "3% of shared_buffers, at most 16MB: WAL written between flushes",
        ),
        Setting::new(
            "default_statistics_target",
            if p == Profile::Dw { "500" } else { "100" }.into(),
            "how detailed ANALYZE's histograms are; warehouses' complex queries profit from more",
        ),
        Setting::new(
            "random_page_cost",
            if m.storage == Storage::Hdd {
                "4"
            } else {
                "1.1"
            }
            .into(),
            if m.storage == Storage::Hdd {
                "a random read costs 4 sequential ones on a spinning disk (the default)"
            } else {
                "on flash a random read costs about a sequential one, so index scans get chosen when they should be"
            },
        ),
        Setting::new(
            "effective_io_concurrency",
            match m.storage {
                Storage::Hdd => "2",
                Storage::Ssd => "200",
                Storage::Nvme => "1000",
            }
            .into(),
            "concurrent prefetch requests bitmap heap scans may issue: what the device can queue",
        ),
        Setting::new(
            "work_mem",
            pg_kb(work_mem),
            "(RAM - shared_buffers) / ((max_connections + workers) * 3), per sort or hash node, per connection, so small; at least 4MB",
        ),
        Setting::new(
            "huge_pages",
            if shared_buffers >= 2 * GB_KB {
                "try"
            } else {
                "off"
            }
            .into(),
            "huge pages shrink the page tables of a large shared_buffers; PgTune tries them from 2GB",
        ),
        Setting::new(
            "min_wal_size",
            pg_kb(min_wal * MB_KB),
            "WAL kept for reuse, so a write burst does not create files",
        ),
        Setting::new(
            "max_wal_size",
            pg_kb(max_wal * MB_KB),
            "WAL between checkpoints: larger means fewer checkpoints and a longer crash recovery",
        ),
    ];
    if let Some((workers, per_gather, maintenance)) = parallel {
        s.extend([
            Setting::new(
                "max_worker_processes",
                workers.to_string(),
                "one background worker per CPU",
            ),
            Setting::new(
                "max_parallel_workers_per_gather",
                per_gather.to_string(),
                "half the CPUs per query (at most 4 outside warehouses: more rarely pays)",
            ),
            Setting::new(
                "max_parallel_workers",
                workers.to_string(),
                "parallel workers across all queries: the CPUs",
            ),
            Setting::new(
                "max_parallel_maintenance_workers",
                maintenance.to_string(),
                "workers for CREATE INDEX and VACUUM: half the CPUs, at most 4",
            ),
        ]);
    }
    if matches!(p, Profile::Web | Profile::Oltp | Profile::Mixed) {
        s.push(Setting::new(
            "jit",
            "off".into(),
            "JIT compiling costs milliseconds of planning, which short web and OLTP queries never win back",
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::gb;

    fn get(s: &[Setting], name: &str) -> String {
        s.iter()
            .find(|x| x.name == name)
            .map(|x| x.value.clone())
            .unwrap_or_else(|| "(absent)".into())
    }

    fn machine(ram: u64, cpus: u32, profile: Profile) -> Machine {
        Machine {
            ram,
            cpus,
            profile,
            storage: Storage::Ssd,
            connections: None,
        }
    }

    /// 16GB, 8 CPUs, web, SSD. By PgTune's formulas:
    /// work_mem = (16777216 - 4194304) kB / ((200 + 8) * 3) = 20164.9 → 20164kB.
    #[test]
    fn matches_pgtune_for_16gb_8_cpus_web() {
        let s = settings(&machine(gb(16), 8, Profile::Web));
        for (name, want) in [
            ("max_connections", "200"),
            ("shared_buffers", "4GB"),
            ("effective_cache_size", "12GB"),
            ("maintenance_work_mem", "1GB"),
            ("wal_buffers", "16MB"),
            ("work_mem", "20164kB"),
            ("huge_pages", "try"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "8"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "8"),
            ("max_parallel_maintenance_workers", "4"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("jit", "off"),
        ] {
            assert_eq!(get(&s, name), want, "{name}");
        }
    }

    /// 4GB, 2 CPUs, web: no parallel settings below 4 CPUs, and work_mem
    /// counts the default 8 workers: (4194304 - 1048576) / (208 * 3) = 5041.2.
    #[test]
    fn matches_pgtune_for_4gb_2_cpus_web() {
        let s = settings(&machine(gb(4), 2, Profile::Web));
        for (name, want) in [
            ("shared_buffers", "1GB"),
            ("effective_cache_size", "3GB"),
            ("maintenance_work_mem", "256MB"),
            ("wal_buffers", "16MB"),
            ("work_mem", "5041kB"),
            ("huge_pages", "off"),
            ("max_worker_processes", "(absent)"),
        ] {
            assert_eq!(get(&s, name), want, "{name}");
        }
    }

    /// 64GB, 16 CPUs, data warehouse: 8 workers per gather (no cap for dw),
    /// maintenance_work_mem capped at 8GB, and
    /// work_mem = (67108864 - 16777216) / ((40 + 16) * 3) / 2 = 149796.6.
    #[test]
    fn matches_pgtune_for_64gb_16_cpus_warehouse() {
        let s = settings(&machine(gb(64), 16, Profile::Dw));
        for (name, want) in [
            ("max_connections", "40"),
            ("shared_buffers", "16GB"),
            ("effective_cache_size", "48GB"),
            ("maintenance_work_mem", "8GB"),
            ("work_mem", "149796kB"),
            ("default_statistics_target", "500"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
            ("max_parallel_workers_per_gather", "8"),
            ("max_parallel_maintenance_workers", "4"),
            ("jit", "(absent)"),
        ] {
            assert_eq!(get(&s, name), want, "{name}");
        }
    }

    /// A small desktop: RAM/16 shared_buffers, and the 4MB floor on
    /// work_mem ((2097152 - 131072) / (28 * 3) / 6 = 3900 < 4096).
    #[test]
    fn the_desktop_profile_and_the_work_mem_floor() {
        let s = settings(&machine(gb(2), 2, Profile::Desktop));
        assert_eq!(get(&s, "shared_buffers"), "128MB");
        assert_eq!(get(&s, "effective_cache_size"), "512MB");
        assert_eq!(get(&s, "work_mem"), "4MB");
        assert_eq!(get(&s, "wal_buffers"), "3932kB");
    }
}
