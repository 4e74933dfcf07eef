//! The bench groups the book shows: for each, its benches in order, what
//! each row measures, what it is compared against, and the sentences under
//! its table. `render` turns one group and criterion's estimates into a
//! table and a chart.

/// A criterion group the book shows, and how to read it.
#[derive(Debug)]
pub struct GroupSpec {
    /// The criterion group, and the generated files' name.
    pub id: &'static str,
    pub title: &'static str,
    /// The physical floor on this machine (e.g. an HTTP handler returning a constant).
    pub floor: Option<&'static str>,
    /// Benches in the order shown.
    pub benches: &'static [Row],
    /// Sentences under the table: `bench` against the sum of `against`.
    pub checks: &'static [Check],
}

/// One bench in a table.
#[derive(Debug)]
pub struct Row {
    pub name: &'static str,
    pub what: &'static str,
    /// What this row improves on; its speed-up is "baseline ÷ this".
    pub baseline: Option<&'static str>,
}

/// "`bench` takes N× the sum of `against`": e.g. a cache hit against its
/// floors (an HTTP round trip plus a Redis GET).
#[derive(Debug)]
pub struct Check {
    pub bench: &'static str,
    pub against: &'static [&'static str],
}

const fn row(name: &'static str, what: &'static str, baseline: Option<&'static str>) -> Row {
    Row {
        name,
        what,
        baseline,
    }
}

/// Every group the book shows. A lesson that adds a bench group adds it here,
/// and its chapter includes `generated/<id>.md` and `generated/<id>.svg`.
pub const GROUPS: &[GroupSpec] = &[
    GroupSpec {
        id: "lesson_01",
        title: "Lesson 1: GET /users/{id}, no cache, no artificial latency",
        floor: Some("http_constant"),
        benches: &[
            row(
                "http_constant",
                "axum handler returning a constant, over HTTP (the floor)",
                None,
            ),
            row(
                "sqlx_pk_lookup",
                "the lesson's query through the pool, no HTTP",
                None,
            ),
            row(
                "naive_get_user",
                "the whole lesson: HTTP, handler, pool, query, JSON",
                None,
            ),
        ],
        checks: &[Check {
            bench: "naive_get_user",
            against: &["http_constant", "sqlx_pk_lookup"],
        }],
    },
    GroupSpec {
        id: "cache_aside",
        title: "Lesson 2: cache-aside, for a cheap and an expensive query",
        floor: Some("floor_http_constant"),
        benches: &[
            row(
                "floor_http_constant",
                "floor: axum handler returning a constant, over HTTP",
                None,
            ),
            row(
                "floor_redis_get",
                "floor: one Redis GET through redis-rs, no HTTP",
                None,
            ),
            row(
                "naive_get_user",
                "lesson 1: primary-key lookup, no cache",
                None,
            ),
            row(
                "miss_get_user",
                "lesson 2, miss: Redis GET, lookup, Redis SET",
                Some("naive_get_user"),
            ),
            row(
                "hit_get_user",
                "lesson 2, hit: Redis GET only",
                Some("naive_get_user"),
            ),
            row(
                "naive_summary",
                "lesson 1: aggregate over 1M orders, no cache",
                None,
            ),
            row(
                "miss_summary",
                "lesson 2, miss: Redis GET, aggregate, Redis SET",
                Some("naive_summary"),
            ),
            row(
                "hit_summary",
                "lesson 2, hit: Redis GET only",
                Some("naive_summary"),
            ),
        ],
        checks: &[Check {
            bench: "hit_get_user",
            against: &["floor_http_constant", "floor_redis_get"],
        }],
    },
    GroupSpec {
        id: "placement",
        title: "How we measure: one connection's round trip, by CPU placement",
        floor: None,
        benches: &[
            row(
                "pg_pk_lookup_same_core",
                "prepared PostgreSQL primary-key lookup, server on the client's core",
                None,
            ),
            row(
                "pg_pk_lookup_cross_core",
                "the same, server on the other core",
                Some("pg_pk_lookup_same_core"),
            ),
            row(
                "redis_get_same_core",
                "Redis GET, server on the client's core",
                None,
            ),
            row(
                "redis_get_cross_core",
                "the same, server on the other core",
                Some("redis_get_same_core"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_equality",
        title: "Lesson 4, case 1: WHERE email = $1, 1M users",
        floor: None,
        benches: &[
            row("seq_scan", "no index: a sequential scan", None),
            row("btree", "B-tree on email", Some("seq_scan")),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_prefix",
        title: "Lesson 4, case 2: WHERE email LIKE 'user12345%', 1M users",
        floor: None,
        benches: &[
            row(
                "btree_en_us",
                "B-tree on email, en-US collation: LIKE cannot use it",
                None,
            ),
            row(
                "text_pattern_ops",
                "B-tree with text_pattern_ops",
                Some("btree_en_us"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_suffix",
        title: "Lesson 4, case 3: WHERE email LIKE '%@rare-domain.org', 1M users",
        floor: None,
        benches: &[
            row("seq_scan", "no index", None),
            row(
                "plain_btree",
                "B-trees on email (plain and text_pattern_ops)",
                Some("seq_scan"),
            ),
            row("trgm_gin", "pg_trgm GIN index", Some("seq_scan")),
            row(
                "reverse_expr",
                "reverse(email) text_pattern_ops, queried by reverse(email) LIKE",
                Some("seq_scan"),
            ),
            row(
                "domain_column",
                "generated email_domain column + B-tree, queried by =",
                Some("seq_scan"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_match_all",
        title: "Lesson 4, case 4: LIKE '%@example.com' when 99% of 1M rows match",
        floor: None,
        benches: &[
            row(
                "seq_scan",
                "the planner's choice: a sequential scan (a trigram index exists)",
                None,
            ),
            row(
                "forced_trgm",
                "the trigram index, forced (enable_seqscan = off)",
                Some("seq_scan"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_covering",
        title: "Lesson 4, case 5: SELECT id, email WHERE email = $1, 1M users",
        floor: None,
        benches: &[
            row("index_scan", "B-tree on email: index, then the table", None),
            row(
                "index_only_scan",
                "covering (email) INCLUDE (id): the index alone",
                Some("index_scan"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_growth",
        title: "Lesson 4: scans grow with the table, index lookups don't",
        floor: None,
        benches: &[
            row("eq_seq_scan_10k", "email =, no index, 10k rows", None),
            row("eq_seq_scan_100k", "email =, no index, 100k rows", None),
            row("eq_seq_scan_1m", "email =, no index, 1M rows", None),
            row(
                "eq_btree_10k",
                "email =, B-tree, 10k rows",
                Some("eq_seq_scan_10k"),
            ),
            row(
                "eq_btree_100k",
                "email =, B-tree, 100k rows",
                Some("eq_seq_scan_100k"),
            ),
            row(
                "eq_btree_1m",
                "email =, B-tree, 1M rows",
                Some("eq_seq_scan_1m"),
            ),
            row(
                "suffix_seq_scan_10k",
                "rare suffix LIKE, no index, 10k rows",
                None,
            ),
            row(
                "suffix_seq_scan_100k",
                "rare suffix LIKE, no index, 100k rows",
                None,
            ),
            row(
                "suffix_seq_scan_1m",
                "rare suffix LIKE, no index, 1M rows",
                None,
            ),
            row(
                "suffix_domain_column_10k",
                "rare domain, email_domain column + B-tree, 10k rows",
                Some("suffix_seq_scan_10k"),
            ),
            row(
                "suffix_domain_column_100k",
                "rare domain, email_domain column + B-tree, 100k rows",
                Some("suffix_seq_scan_100k"),
            ),
            row(
                "suffix_domain_column_1m",
                "rare domain, email_domain column + B-tree, 1M rows",
                Some("suffix_seq_scan_1m"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_write",
        title: "Lesson 4: what each suffix fix costs a writer (1,000-row INSERT)",
        floor: None,
        benches: &[
            row("insert_1000_pk_only", "primary key only", None),
            row(
                "insert_1000_trgm_gin",
                "plus the pg_trgm GIN index",
                Some("insert_1000_pk_only"),
            ),
            row(
                "insert_1000_reverse_expr",
                "plus the reverse(email) index",
                Some("insert_1000_pk_only"),
            ),
            row(
                "insert_1000_domain_column",
                "plus the generated column and its B-tree",
                Some("insert_1000_pk_only"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_mariadb",
        title: "Lesson 4, case 6: the same on MariaDB (InnoDB), 1M users",
        floor: None,
        benches: &[
            row("eq_scan", "email =, no index", None),
            row("eq_btree", "email =, B-tree on email", Some("eq_scan")),
            row("prefix_btree", "LIKE 'user12345%', B-tree on email", None),
            row(
                "suffix_btree",
                "LIKE '%@rare-domain.org', B-tree on email: a full scan",
                None,
            ),
            row(
                "domain_column",
                "email_domain = ?, generated column + B-tree",
                Some("suffix_btree"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "buffers_pg_read",
        title: "Lesson 5: a random primary-key read, by shared_buffers (2M users, 203 MiB)",
        floor: None,
        benches: &[
            row("read/128kB", "shared_buffers = 128kB (the minimum)", None),
            row("read/16MB", "shared_buffers = 16MB", None),
            row("read/128MB", "shared_buffers = 128MB (the default)", None),
            row(
                "read/25pct_ram",
                "shared_buffers = 25% of RAM",
                Some("read/128MB"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "buffers_pg_scan",
        title: "Lesson 5: a full-scan aggregate over 2M users, by shared_buffers",
        floor: None,
        benches: &[
            row("scan/128kB", "shared_buffers = 128kB (the minimum)", None),
            row("scan/16MB", "shared_buffers = 16MB", None),
            row("scan/128MB", "shared_buffers = 128MB (the default)", None),
            row(
                "scan/25pct_ram",
                "shared_buffers = 25% of RAM",
                Some("scan/128MB"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "work_mem",
        title: "Lesson 5: ORDER BY and GROUP BY over 1M rows, by work_mem",
        floor: None,
        benches: &[
            row("sort/64kB", "ORDER BY, work_mem = 64kB", None),
            row("sort/4MB", "ORDER BY, work_mem = 4MB (the default)", None),
            row("sort/32MB", "ORDER BY, work_mem = 32MB", Some("sort/4MB")),
            row("sort/256MB", "ORDER BY, work_mem = 256MB", Some("sort/4MB")),
            row("hash/64kB", "GROUP BY (hash), work_mem = 64kB", None),
            row(
                "hash/4MB",
                "GROUP BY (hash), work_mem = 4MB (the default)",
                None,
            ),
            row(
                "hash/32MB",
                "GROUP BY (hash), work_mem = 32MB",
                Some("hash/4MB"),
            ),
            row(
                "hash/256MB",
                "GROUP BY (hash), work_mem = 256MB",
                Some("hash/4MB"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "innodb_pool_read",
        title: "Lesson 5: a random primary-key read in MariaDB, by innodb_buffer_pool_size (1M users)",
        floor: None,
        benches: &[
            row("read/8M", "innodb_buffer_pool_size = 8M", None),
            row(
                "read/128M",
                "128M (the default), resized online",
                Some("read/8M"),
            ),
            row("read/1G", "1G, resized online", Some("read/8M")),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "query_cache_aggregate",
        title: "Lesson 5: a repeated aggregate over 1M users in MariaDB, query cache off vs on",
        floor: None,
        benches: &[
            row(
                "repeat/off",
                "the same aggregate again, query cache off",
                None,
            ),
            row(
                "repeat/on",
                "the same aggregate again, query cache on (64M)",
                Some("repeat/off"),
            ),
            row("after_write/off", "after an UPDATE of one row, off", None),
            row(
                "after_write/on",
                "after an UPDATE of one row, on",
                Some("after_write/off"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "query_cache_reads",
        title: "Lesson 5: point reads in MariaDB, 4 readers at once, query cache off vs on",
        floor: None,
        benches: &[
            row(
                "hot_reads/off",
                "reads of 1,000 hot users, query cache off",
                None,
            ),
            row(
                "hot_reads/on",
                "reads only, query cache on (64M)",
                Some("hot_reads/off"),
            ),
            row(
                "hot_reads_with_writes/off",
                "1,000 hot users, 500 UPDATEs/s meanwhile, off",
                None,
            ),
            row(
                "hot_reads_with_writes/on",
                "1,000 hot users, 500 UPDATEs/s meanwhile, on",
                Some("hot_reads_with_writes/off"),
            ),
            row("spread_reads/off", "reads of any of 1M users, off", None),
            row(
                "spread_reads/on",
                "reads of any of 1M users, on",
                Some("spread_reads/off"),
            ),
            row(
                "spread_reads_with_writes/off",
                "any of 1M users, 500 UPDATEs/s, off",
                None,
            ),
            row(
                "spread_reads_with_writes/on",
                "any of 1M users, 500 UPDATEs/s, on",
                Some("spread_reads_with_writes/off"),
            ),
        ],
        checks: &[],
    },
];
