//! MariaDB (InnoDB) settings for a dedicated server.

use crate::size::{mb, my_bytes};
use crate::{Machine, Profile, Setting, Storage};

/// MariaDB's default `innodb_buffer_pool_chunk_size`. The server rounds the
/// pool up to a multiple of it (times the instances, which MariaDB 10.5+
/// fixes at 1), so the generator writes an exact multiple: then
/// `SELECT @@innodb_buffer_pool_size` shows exactly what the file says.
pub const CHUNK: u64 = mb(128);

// ANCHOR: buffer_pool
/// The pool: 75% of RAM on a dedicated server (the middle of the usual
/// 70–80%), 25% on a desktop; rounded *down* to whole chunks.
pub fn buffer_pool(m: &Machine) -> u64 {
    let share = if m.profile == Profile::Desktop {
        25
    } else {
        75
    };
    let target = m.ram * share / 100;
    (target / CHUNK).max(1) * CHUNK
}
// ANCHOR_END: buffer_pool

pub fn settings(m: &Machine) -> Vec<Setting> {
    let pool = buffer_pool(m);
    // A quarter of the pool, in whole MB, at most 4G: a larger redo log
    // means fewer checkpoint flushes and a longer crash recovery.
    let log = (pool / 4 / mb(1) * mb(1)).min(4 * 1024 * mb(1));
    let max_connections = m.connections.unwrap_or(match m.profile {
        Profile::Web => 200,
        Profile::Oltp => 300,
        Profile::Dw => 40,
        Profile::Desktop => 20,
        Profile::Mixed => 100,
    });
    vec![
        Setting::new(
            "max_connections",
            max_connections.to_string(),
            "the same budget as the PostgreSQL profile; each connection's buffers come on top of the pool",
        ),
        Setting::new(
            "innodb_buffer_pool_size",
            my_bytes(pool),
            if m.profile == Profile::Desktop {
                "25% of RAM: a desktop runs other things"
            } else {
                "75% of RAM, in whole 128M chunks: InnoDB bypasses the OS page cache (O_DIRECT), so the pool is the cache. Resizable online with SET GLOBAL"
            },
        ),
        Setting::new(
            "innodb_buffer_pool_chunk_size",
            my_bytes(CHUNK),
            "the default, written down because the pool size above is a multiple of it",
        ),
        Setting::new(
            "innodb_log_file_size",
            my_bytes(log),
            "redo log: a quarter of the pool, at most 4G; bigger means fewer checkpoints, longer crash recovery",
        ),
        Setting::new(
            "innodb_flush_method",
            "O_DIRECT".into(),
            "read and write around the OS page cache, so data is not cached twice",
        ),
        Setting::new(
            "innodb_io_capacity",
            if m.storage == Storage::Hdd {
                "200"
            } else {
                "2000"
            }
            .into(),
            "background flushing budget in IOPS: what the device sustains",
        ),
        Setting::new(
            "query_cache_type",
            "OFF".into(),
            "off: every write to a table empties all its cached results, and one global mutex serialises every lookup; MySQL 8.0 removed it",
        ),
        Setting::new(
            "query_cache_size",
            "0".into(),
            "no memory for the query cache either",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::gb;

    fn machine(ram: u64, profile: Profile) -> Machine {
        Machine {
            ram,
            cpus: 4,
            profile,
            storage: Storage::Ssd,
            connections: None,
        }
    }

    #[test]
    fn the_pool_is_75_percent_in_whole_chunks() {
        assert_eq!(buffer_pool(&machine(gb(16), Profile::Web)), gb(12));
        assert_eq!(buffer_pool(&machine(gb(4), Profile::Web)), gb(3));
        // 75% of 1GB is 768M = 6 chunks; of 1.1GB, 844.8M → 6 chunks.
        assert_eq!(buffer_pool(&machine(mb(1126), Profile::Web)), 6 * CHUNK);
        assert_eq!(buffer_pool(&machine(gb(8), Profile::Desktop)), gb(2));
        assert_eq!(buffer_pool(&machine(mb(256), Profile::Desktop)), CHUNK);
    }

    #[test]
    fn the_query_cache_stays_off_and_the_log_is_capped() {
        let s = settings(&machine(gb(64), Profile::Web));
        let get = |n: &str| {
            s.iter()
                .find(|x| x.name == n)
                .map(|x| x.value.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("innodb_buffer_pool_size"), "48G");
        assert_eq!(get("innodb_log_file_size"), "4G");
        assert_eq!(get("query_cache_type"), "OFF");
        assert_eq!(get("query_cache_size"), "0");
    }
}
