//! Lesson 5's measurements → `buffers_pg.md`, `buffers_cold.md`,
//! `work_mem_plans.md`, `innodb_pool.md` and `query_cache_counters.md`.
//!
//! The tables themselves are the lesson's ([`BuffersResults`]'s methods), so
//! `just lesson-5` prints the same ones; the book's leave out the demo's
//! own timings and show criterion's instead.

use lab::results::Results;
use lesson_05_buffer_tuning::experiments::BuffersResults;

use crate::render::experiment_header;

/// Each file's name and contents: the table under the header that says
/// where it came from.
pub fn files(b: &BuffersResults, quick: bool) -> Vec<(&'static str, String)> {
    let head = experiment_header("buffers", BuffersResults::FILE, "figures", quick);
    [
        ("buffers_pg.md", b.shared_buffers_md(false)),
        ("buffers_cold.md", b.cold_start_md()),
        ("work_mem_plans.md", b.work_mem_md(false)),
        ("innodb_pool.md", b.buffer_pool_md(false)),
        ("query_cache_counters.md", b.query_cache_md(false)),
    ]
    .into_iter()
    .map(|(name, md)| (name, head.clone() + &md))
    .collect()
}
