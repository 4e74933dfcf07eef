//! The lesson's experiments, each a before/after on a private server with
//! the mechanism made visible: the setting as the server reports it, the
//! plan node or status counter that shows what changed, and the workload
//! that a bench times.
//!
//! [`run`] is `just lesson-5`: every experiment, small. The bench
//! (`benches/buffers.rs`) runs the same steps at the book's sizes, times
//! the workloads with criterion, and saves a [`BuffersResults`] for `just report`.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

pub mod mariadb;
pub mod shared_buffers;
pub mod work_mem;

/// How big each experiment's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// `users` rows in PostgreSQL, for `shared_buffers`.
    pub pg_users: i64,
    /// `sortable` rows, for `work_mem`.
    pub sort_rows: i64,
    /// `users` rows in MariaDB, for the buffer pool and the query cache.
    pub my_users: i64,
    /// Random primary-key reads per pass.
    pub reads: usize,
}

impl Sizes {
    /// `just lesson-5`: seconds per experiment.
    pub const DEMO: Sizes = Sizes {
        pg_users: 200_000,
        sort_rows: 200_000,
        my_users: 200_000,
        reads: 3_000,
    };
    /// The book's figures (`cargo bench`).
    pub const BOOK: Sizes = Sizes {
        pg_users: 2_000_000,
        sort_rows: 1_000_000,
        my_users: 1_000_000,
        reads: 20_000,
    };
}

/// Everything the experiments measured besides criterion's timings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuffersResults {
    pub sizes: Sizes,
    pub ram_bytes: u64,
    /// `pg_relation_size` of `users` and of its primary key.
    pub pg_table_bytes: u64,
    pub pg_index_bytes: u64,
    pub shared_buffers: Vec<shared_buffers::Point>,
    pub cold_start: shared_buffers::ColdStart,
    pub work_mem: Vec<work_mem::Point>,
    /// InnoDB data + index size of `users`.
    pub my_table_bytes: u64,
    pub buffer_pool: Vec<mariadb::PoolPoint>,
    pub query_cache: Vec<mariadb::QcPoint>,
}

/// The bench leaves it in `target/lab-experiments/buffers.json`.
impl lab::results::Results for BuffersResults {
    const FILE: &'static str = "buffers.json";
}

/// The tables, in Markdown. With `times`, each row also has the demo's own
/// timing; the book leaves them out and shows criterion's instead.
impl BuffersResults {
    pub fn shared_buffers_md(&self, times: bool) -> String {
        let mut out = format!(
            "`users`: {} rows, table {} + primary key {}; {} random primary-key reads per pass.\n\n",
            self.sizes.pg_users,
            lab::units::mib(self.pg_table_bytes, 0),
            lab::units::mib(self.pg_index_bytes, 0),
            self.sizes.reads
        );
        out += "| shared_buffers | SHOW shared_buffers | random reads: hit ratio | full scan: shared hit | full scan: read |";
        out += if times {
            " read µs | scan ms |\n"
        } else {
            "\n"
        };
        out += "|---|---|---:|---:|---:|";
        out += if times { "---:|---:|\n" } else { "\n" };
        for p in &self.shared_buffers {
            let _ = write!(
                out,
                "| {} | {} | {:.3} | {} | {} |",
                p.label.replace("25pct_ram", "25% of RAM"),
                p.shown,
                p.read_hit_ratio,
                p.scan.shared_hit,
                p.scan.shared_read
            );
            if times {
                let _ = write!(out, " {:.1} | {:.1} |", p.read_us, p.scan.ms);
            }
            out.push('\n');
        }
        out
    }

    pub fn cold_start_md(&self) -> String {
        let c = &self.cold_start;
        format!(
            "| where the pages came from (shared_buffers = {}) | µs per random read | hit ratio |\n\
             |---|---:|---:|\n\
             | shared_buffers (second pass) | {:.1} | 1.000 |\n\
             | OS page cache (just restarted) | {:.1} | {:.3} |\n\
             | disk (restarted, files evicted from the OS cache) | {:.1} | {:.3} |\n\n\
             {} reads per pass, one connection.\n",
            c.setting,
            c.shared_buffers_us,
            c.os_cache_us,
            c.first_pass_hit_ratio,
            c.disk_us,
            c.first_pass_hit_ratio,
            c.reads
        )
    }

    pub fn work_mem_md(&self, times: bool) -> String {
        let mut out = format!(
            "`sortable`: {} rows. ORDER BY a text column; GROUP BY a key with 100,000 values.\n\n",
            self.sizes.sort_rows
        );
        out += "| work_mem | Sort Method | sort space | HashAgg Batches | hash Disk Usage | hash Peak Memory |";
        out += if times {
            " sort ms | hash ms |\n"
        } else {
            "\n"
        };
        out += "|---|---|---:|---:|---:|---:|";
        out += if times { "---:|---:|\n" } else { "\n" };
        for p in &self.work_mem {
            let _ = write!(
                out,
                "| {} | {} | {}: {} kB | {} | {} kB | {} kB |",
                p.sort.work_mem,
                p.sort.method,
                p.sort.space_type,
                p.sort.space_kb,
                p.hash.batches,
                p.hash.disk_kb,
                p.hash.peak_kb
            );
            if times {
                let _ = write!(out, " {:.0} | {:.0} |", p.sort.ms, p.hash.ms);
            }
            out.push('\n');
        }
        out
    }

    pub fn buffer_pool_md(&self, times: bool) -> String {
        let mut out = format!(
            "`users`: {} rows, {} of InnoDB data and indexes; {} random primary-key reads per pass.\n\n",
            self.sizes.my_users,
            lab::units::mib(self.my_table_bytes, 0),
            self.sizes.reads
        );
        out += "| innodb_buffer_pool_size | @@innodb_buffer_pool_size | online resize took | what InnoDB reported | hit ratio |";
        out += if times { " read µs |\n" } else { "\n" };
        out += "|---|---:|---:|---|---:|";
        out += if times { "---:|\n" } else { "\n" };
        for p in &self.buffer_pool {
            let (took, status) = if p.resized {
                (
                    format!("{:.0} ms", p.resize_ms),
                    p.resize_status.join(" → "),
                )
            } else {
                ("(started with it)".to_string(), String::new())
            };
            let _ = write!(
                out,
                "| {} | {} | {took} | {status} | {:.4} |",
                p.label, p.bytes, p.hit_ratio
            );
            if times {
                let _ = write!(out, " {:.1} |", p.read_us);
            }
            out.push('\n');
        }
        out
    }

    pub fn query_cache_md(&self, times: bool) -> String {
        let mut out = String::from(
            "| workload | query cache | queries | Qcache_hits | hit share | Qcache_inserts | Qcache_lowmem_prunes | writes meanwhile |",
        );
        out += if times { " µs per query |\n" } else { "\n" };
        out += "|---|---|---:|---:|---:|---:|---:|---:|";
        out += if times { "---:|\n" } else { "\n" };
        for p in &self.query_cache {
            let _ = write!(
                out,
                "| {} | {} | {} | {} | {:.1}% | {} | {} | {} |",
                p.workload,
                if p.cache_on { "on, 64M" } else { "off" },
                p.queries,
                p.counters.hits,
                100.0 * p.hit_share(),
                p.counters.inserts,
                p.counters.lowmem_prunes,
                p.writes
            );
            if times {
                let _ = write!(out, " {:.1} |", p.us);
            }
            out.push('\n');
        }
        out
    }
}

/// Runs every experiment at `sizes`, printing progress to stderr, and
/// stops each private server before starting the next.
pub async fn run(sizes: Sizes) -> anyhow::Result<BuffersResults> {
    let ram_bytes = crate::size::ram_bytes()?;
    let ids = shared_buffers::spread_ids(sizes.pg_users, sizes.reads);
    eprintln!(
        "1/4 shared_buffers: seeding {} users in a private PostgreSQL…",
        sizes.pg_users
    );
    let mut pg = shared_buffers::Server::start(sizes.pg_users).await?;
    let (pg_table_bytes, pg_index_bytes) = pg_sizes(&pg.pool).await?;
    let mut points = Vec::new();
    for (label, value) in shared_buffers::settings()? {
        eprintln!("    restarting with shared_buffers = {value}");
        pg.restart(&value).await?;
        points.push(shared_buffers::measure(&pg.pool, label, &ids).await?);
    }
    eprintln!("    cold start: restarting, evicting the table from the OS page cache…");
    let cold_start =
        shared_buffers::cold_start(&mut pg, "128MB", &ids[..ids.len().min(2_000)]).await?;
    drop(pg);

    eprintln!("2/4 work_mem: seeding {} rows to sort…", sizes.sort_rows);
    let (pg, pool) = work_mem::start_server(sizes.sort_rows).await?;
    let mut wm = Vec::new();
    for setting in work_mem::SETTINGS {
        eprintln!("    work_mem = {setting}");
        wm.push(work_mem::measure(&pool, setting).await?);
    }
    pool.close().await;
    drop(pg);

    eprintln!(
        "3/4 innodb_buffer_pool_size: seeding {} users in a private MariaDB…",
        sizes.my_users
    );
    let my_ids = shared_buffers::spread_ids(sizes.my_users, sizes.reads);
    let my = mariadb::Server::for_buffer_pool(sizes.my_users).await?;
    let my_table_bytes = mariadb::table_bytes(&my.pool).await?;
    let mut pool_points = Vec::new();
    for (label, bytes) in mariadb::POOL_SIZES {
        eprintln!("    innodb_buffer_pool_size = {label} (SET GLOBAL, online)");
        pool_points.push(mariadb::measure_pool(&my, label, bytes, &my_ids).await?);
    }
    my.pool.close().await;
    drop(my);

    let mut qc = Vec::new();
    for on in [false, true] {
        eprintln!(
            "4/4 query cache {}: seeding {} users in a private MariaDB…",
            if on { "on" } else { "off" },
            sizes.my_users
        );
        let my = mariadb::Server::for_query_cache(on, sizes.my_users).await?;
        qc.extend(
            mariadb::measure_query_cache(&my.pool, on, sizes.reads as u64, sizes.my_users as u64)
                .await?,
        );
        my.pool.close().await;
    }
    Ok(BuffersResults {
        sizes,
        ram_bytes,
        pg_table_bytes,
        pg_index_bytes,
        shared_buffers: points,
        cold_start,
        work_mem: wm,
        my_table_bytes,
        buffer_pool: pool_points,
        query_cache: qc,
    })
}

/// `pg_relation_size` of `users` and `users_pkey`.
pub async fn pg_sizes(pool: &sqlx::PgPool) -> anyhow::Result<(u64, u64)> {
    let (t, i): (i64, i64) =
        sqlx::query_as("SELECT pg_relation_size('users'), pg_relation_size('users_pkey')")
            .fetch_one(pool)
            .await?;
    Ok((t as u64, i as u64))
}
