//! The harness against real servers: discovery, private instances (settings,
//! stop and restart), seeding and isolation, and that isolation cleans up
//! after itself. Nothing here is timing-based.

use lab::discover::{NotFound, Probe};
use lab::isolate::{MyDatabase, PgSchema, RedisPrefix, STALE_AFTER, keys_matching, sweep_redis};
use lab::kind::ping;
use lab::seed::{RARE_DOMAIN, email_for, ensure_users_mysql, ensure_users_pg, rare_count};
use lab::spawn::{Instance, SpawnOptions};
use lab::testing::{TEST_KEY_TTL, redis_conn, set_test_key};
use lab::{Backend, Kind, Origin};

#[tokio::test]
async fn every_kind_of_server_is_found() {
    lab::init_tracing();
    for kind in Kind::ALL {
        let server = lab::discover(kind)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e:#}"));
        ping(kind, server.url())
            .await
            .unwrap_or_else(|e| panic!("{kind} at {}: {e:#}", server.url()));
    }
}

/// With no env URL, nothing on the port, no Docker and no binaries, the
/// error lists what was tried and every way to fix it.
#[tokio::test]
async fn with_no_server_anywhere_the_error_says_how_to_fix_it() {
    let closed = lab::spawn::free_port().expect("a free port");
    let probe = Probe {
        backend: Backend::Auto,
        env_url: None,
        default_url: format!("postgres://postgres@127.0.0.1:{closed}/test"),
        docker: false,
        bin_dir: Some("/nonexistent/bin".into()),
        only_bin_dir: true,
    };
    let err = lab::discover_with(Kind::Postgres, &probe)
        .await
        .expect_err("nothing can be found");
    assert!(
        err.downcast_ref::<NotFound>().is_some(),
        "a NotFound error, got {err:#}"
    );
    let msg = err.to_string();
    for needle in [
        "no PostgreSQL server found",
        "DATABASE_URL: not set",
        &format!("127.0.0.1:{closed}"),
        "Docker",
        "`postgres` and `initdb` not found",
        "set DATABASE_URL=",
        "just services-up",
        "apt-get install postgresql",
        "just doctor",
    ] {
        assert!(
            msg.contains(needle),
            "the error should mention {needle:?}:\n{msg}"
        );
    }
}

/// An env URL that does not answer is an error naming the variable, never a
/// silent fall-through to some other server.
#[tokio::test]
async fn a_broken_env_url_is_reported_not_ignored() {
    let closed = lab::spawn::free_port().expect("a free port");
    let probe = Probe {
        env_url: Some(format!("redis://127.0.0.1:{closed}")),
        ..Probe::from_env(Kind::Redis).expect("probe")
    };
    let probe = Probe {
        backend: Backend::Auto,
        ..probe
    };
    let err = lab::discover_with(Kind::Redis, &probe)
        .await
        .expect_err("the env URL is dead");
    assert!(
        format!("{err:#}").contains("REDIS_URL is set to"),
        "{err:#}"
    );
}

// ANCHOR: private_instance
#[tokio::test]
async fn a_private_postgres_takes_settings_and_survives_a_restart() {
    if !lab::spawn::can_spawn(
        lab::Kind::Postgres,
        "a_private_postgres_takes_settings_and_survives_a_restart",
    ) {
        return;
    }
    lab::init_tracing();
    let opts = SpawnOptions::with_settings([("shared_buffers", "16MB"), ("work_mem", "64kB")]);
    let mut pg = Instance::start_new(Kind::Postgres, opts)
        .await
        .expect("a private PostgreSQL");
    let url = pg.url();
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let (sb,): (String,) = sqlx::query_as("SHOW shared_buffers")
        .fetch_one(&pool)
        .await
        .expect("SHOW");
    let (wm,): (String,) = sqlx::query_as("SHOW work_mem")
        .fetch_one(&pool)
        .await
        .expect("SHOW");
    assert_eq!((sb.as_str(), wm.as_str()), ("16MB", "64kB"));
    sqlx::query("CREATE TABLE kept (v int)")
        .execute(&pool)
        .await
        .expect("create");
    sqlx::query("INSERT INTO kept VALUES (42)")
        .execute(&pool)
        .await
        .expect("write");
    pool.close().await;

    // An outage: the server goes away, then comes back on the same port
    // with the same data.
    pg.stop().await.expect("stop");
    assert!(!pg.is_running());
    assert!(
        ping(Kind::Postgres, &url).await.is_err(),
        "a stopped server must not answer"
    );
    pg.start().await.expect("restart");
    assert_eq!(pg.url(), url, "same port after a restart");
    let pool = sqlx::PgPool::connect(&url).await.expect("reconnect");
    let (v,): (i32,) = sqlx::query_as("SELECT v FROM kept")
        .fetch_one(&pool)
        .await
        .expect("data survived");
    assert_eq!(v, 42);
    let (sb,): (String,) = sqlx::query_as("SHOW shared_buffers")
        .fetch_one(&pool)
        .await
        .expect("SHOW");
    assert_eq!(sb, "16MB", "settings survive a restart");
}
// ANCHOR_END: private_instance

#[tokio::test]
async fn a_private_mariadb_takes_settings_and_survives_a_restart() {
    if !lab::spawn::can_spawn(
        lab::Kind::MySql,
        "a_private_mariadb_takes_settings_and_survives_a_restart",
    ) {
        return;
    }
    lab::init_tracing();
    let opts = SpawnOptions::with_settings([("innodb_buffer_pool_size", "32M")]);
    let mut my = Instance::start_new(Kind::MySql, opts)
        .await
        .expect("a private MariaDB");
    let url = my.url();
    let pool = sqlx::MySqlPool::connect(&url).await.expect("connect");
    let (size,): (u64,) = sqlx::query_as("SELECT @@innodb_buffer_pool_size")
        .fetch_one(&pool)
        .await
        .expect("select");
    assert_eq!(size, 32 * 1024 * 1024);
    pool.close().await;
    my.stop().await.expect("stop");
    assert!(ping(Kind::MySql, &url).await.is_err());
    my.start().await.expect("restart");
    ping(Kind::MySql, &url).await.expect("answers again");
}

#[tokio::test]
async fn a_private_redis_takes_settings_and_survives_a_restart() {
    if !lab::spawn::can_spawn(
        lab::Kind::Redis,
        "a_private_redis_takes_settings_and_survives_a_restart",
    ) {
        return;
    }
    let opts = SpawnOptions::with_settings([("maxmemory", "10mb")]);
    let mut r = Instance::start_new(Kind::Redis, opts)
        .await
        .expect("a private Redis");
    let client = redis::Client::open(r.url()).expect("url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let cfg: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut c)
        .await
        .expect("CONFIG GET");
    assert_eq!(
        cfg,
        vec!["maxmemory".to_string(), (10 * 1024 * 1024).to_string()]
    );
    r.stop().await.expect("stop");
    assert!(ping(Kind::Redis, &r.url()).await.is_err());
    r.start().await.expect("restart");
    ping(Kind::Redis, &r.url()).await.expect("answers again");
}

#[tokio::test]
async fn local_backend_forces_a_private_instance() {
    if !lab::spawn::can_spawn_local(lab::Kind::Redis, "local_backend_forces_a_private_instance") {
        return;
    }
    let probe = Probe {
        backend: Backend::Local,
        ..Probe::from_env(Kind::Redis).expect("probe")
    };
    let server = lab::discover_with(Kind::Redis, &probe)
        .await
        .expect("a private Redis");
    assert_eq!(server.origin(), &Origin::Private);
    assert_ne!(server.url(), Kind::Redis.default_url());
}

#[tokio::test]
async fn postgres_seed_is_deterministic_idempotent_and_isolated() {
    let server = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
    let a = PgSchema::create(server.url()).await.expect("schema a");
    let b = PgSchema::create(server.url()).await.expect("schema b");
    ensure_users_pg(a.pool(), 20_010).await.expect("seed");
    ensure_users_pg(a.pool(), 20_010)
        .await
        .expect("seeding again is a no-op");

    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(a.pool())
        .await
        .expect("count");
    assert_eq!(n, 20_010);
    let (rare,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE email LIKE '%@' || $1")
        .bind(RARE_DOMAIN)
        .fetch_one(a.pool())
        .await
        .expect("count rare");
    assert_eq!(rare, rare_count(20_010));
    let (domains,): (i64,) =
        sqlx::query_as("SELECT count(DISTINCT split_part(email, '@', 2)) FROM users")
            .fetch_one(a.pool())
            .await
            .expect("domains");
    assert_eq!(domains, 21, "twenty common domains and the rare one");
    for id in [1_i64, 7, 123, 10_007, 20_010] {
        let (email,): (String,) = sqlx::query_as("SELECT email FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(a.pool())
            .await
            .expect("row");
        assert_eq!(email, email_for(id), "SQL and Rust agree on user {id}");
    }

    // Schema b has no users table: the two tests' data never mix.
    let missing = sqlx::query("SELECT 1 FROM users").execute(b.pool()).await;
    assert!(missing.is_err(), "schema b must not see schema a's table");

    // Dropping a schema handle removes it, and only it.
    let (a_name, b_name) = (a.name().to_string(), b.name().to_string());
    drop(a);
    let admin = sqlx::PgPool::connect(server.url()).await.expect("admin");
    let left: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
            .bind(vec![a_name, b_name.clone()])
            .fetch_all(&admin)
            .await
            .expect("namespaces");
    assert_eq!(left, vec![(b_name,)]);
}

#[tokio::test]
async fn mariadb_seed_matches_postgres() {
    let server = lab::discover(Kind::MySql).await.expect("MariaDB");
    let db = MyDatabase::create(server.url())
        .await
        .expect("a test database");
    ensure_users_mysql(db.pool(), 10_010).await.expect("seed");
    ensure_users_mysql(db.pool(), 10_010)
        .await
        .expect("seeding again is a no-op");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(n, 10_010);
    for id in [1_i64, 7, 123, 10_007] {
        let (email,): (String,) = sqlx::query_as("SELECT email FROM users WHERE id = ?")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .expect("row");
        assert_eq!(email, email_for(id), "MariaDB and Rust agree on user {id}");
    }
}

/// Dropping a prefix deletes every one of its keys, across many `SCAN`
/// pages, and no other test's; keys a test writes itself carry a TTL.
#[tokio::test]
async fn a_dropped_redis_prefix_deletes_all_its_keys_and_only_those() {
    let server = lab::discover(Kind::Redis).await.expect("Redis");
    let mut c = redis_conn(server.url()).await.expect("connect");
    let mine = RedisPrefix::new(server.url());
    let other = RedisPrefix::new(server.url());
    // More keys than one SCAN page, so the cleanup must follow the cursor.
    let mut pipe = redis::pipe();
    for i in 0..2_500 {
        pipe.cmd("SET")
            .arg(mine.key(&format!("user:{i}")))
            .arg("a")
            .arg("EX")
            .arg(TEST_KEY_TTL.as_secs())
            .ignore();
    }
    let _: () = pipe.query_async(&mut c).await.expect("2,500 SETs");
    set_test_key(&mut c, &other.key("user:1"), "b")
        .await
        .expect("set");
    let ttl: i64 = redis::cmd("TTL")
        .arg(other.key("user:1"))
        .query_async(&mut c)
        .await
        .expect("TTL");
    assert!(
        0 < ttl && ttl <= 3600,
        "a test's own key expires within the hour, even if the test is killed; TTL {ttl}"
    );
    let pattern = |p: &RedisPrefix| format!("{}*", p.prefix());
    assert_eq!(
        keys_matching(server.url(), &pattern(&mine))
            .expect("SCAN")
            .len(),
        2_500
    );

    let mine_pattern = pattern(&mine);
    drop(mine);
    let left = keys_matching(server.url(), &mine_pattern).expect("SCAN");
    assert!(
        left.is_empty(),
        "a dropped prefix leaves none of its keys; {} are left, e.g. {:?}",
        left.len(),
        left.first()
    );
    assert_eq!(
        keys_matching(server.url(), &pattern(&other)).expect("SCAN"),
        vec![other.key("user:1")],
        "another test's key must survive"
    );
}

/// Keys of a run killed before its prefixes dropped are swept by the next
/// run once they are older than `STALE_AFTER`; recent keys of ours and
/// keys that are not ours never are.
#[tokio::test]
async fn keys_left_by_a_crashed_run_are_swept_and_no_others() {
    let server = lab::discover(Kind::Redis).await.expect("Redis");
    let mut c = redis_conn(server.url()).await.expect("connect");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let crashed = format!(
        "lab_{}_{}_0:user:1",
        now - STALE_AFTER.as_secs() - 60,
        std::process::id()
    );
    let live = RedisPrefix::new(server.url());
    let foreign = format!("notlab_{}_{}:user:1", now - 86_400, std::process::id());
    for key in [&crashed, &live.key("user:1"), &foreign] {
        set_test_key(&mut c, key, "x").await.expect("set");
    }
    sweep_redis(server.url()).expect("the sweep");
    let exists = |key: &str| !keys_matching(server.url(), key).expect("SCAN").is_empty();
    assert!(!exists(&crashed), "a crashed run's old key is swept");
    assert!(exists(&live.key("user:1")), "a running test's key stays");
    assert!(exists(&foreign), "a key that is not ours stays");
    let _: () = redis::cmd("DEL")
        .arg(&foreign)
        .query_async(&mut c)
        .await
        .expect("DEL");
}

#[tokio::test]
async fn a_dropped_pg_schema_is_gone() {
    let server = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
    let schema = PgSchema::create(server.url()).await.expect("schema");
    sqlx::query("CREATE TABLE t (id int)")
        .execute(schema.pool())
        .await
        .expect("a table in the schema");
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(schema.pool())
        .await
        .expect("a row");
    let name = schema.name().to_string();
    let admin = sqlx::PgPool::connect(server.url()).await.expect("connect");
    let count = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
            .bind(&name)
            .fetch_one(&admin)
            .await
            .expect("pg_namespace");
        n
    };
    assert_eq!(count().await, 1, "the schema exists while the test runs");
    drop(schema);
    assert_eq!(count().await, 0, "a dropped PgSchema leaves no schema");
}

#[tokio::test]
async fn a_dropped_mariadb_database_is_gone() {
    let server = lab::discover(Kind::MySql).await.expect("MariaDB");
    let db = MyDatabase::create(server.url()).await.expect("database");
    sqlx::query("CREATE TABLE t (id int)")
        .execute(db.pool())
        .await
        .expect("a table in the database");
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(db.pool())
        .await
        .expect("a row");
    let name = db.name().to_string();
    let admin = sqlx::MySqlPool::connect(server.url())
        .await
        .expect("connect");
    let count = || async {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await
        .expect("information_schema");
        n
    };
    assert_eq!(count().await, 1, "the database exists while the test runs");
    drop(db);
    assert_eq!(count().await, 0, "a dropped MyDatabase leaves no database");
}

/// Run by the next test in a child process: a teardown that cannot reach
/// its server. The test itself passes: teardown does not decide verdicts.
#[test]
#[ignore = "run by a_failed_cleanup_is_reported_in_the_test_output"]
fn cleanup_that_cannot_reach_redis() {
    let closed = lab::spawn::free_port().expect("a free port");
    let prefix = RedisPrefix::new(&format!("redis://127.0.0.1:{closed}"));
    drop(prefix);
}

/// A failed cleanup does not fail the test, but says so where a reader of
/// the test output sees it, even though libtest captures a passing test's
/// output. It used to be a log line nobody saw, while schemas and keys
/// piled up on the shared servers.
#[test]
fn a_failed_cleanup_is_reported_in_the_test_output() {
    let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "cleanup_that_cannot_reach_redis", "--ignored"])
        .output()
        .expect("the test binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the teardown's failure must not fail the test:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(
            "CLEANUP FAILED in cleanup_that_cannot_reach_redis: deleting the Redis keys lab_"
        ),
        "the failure is reported on stderr, past libtest's capture; stderr:\n{stderr}"
    );
}

/// `LAB_PIN_SERVERS` (here set through the options) pins a private server:
/// the kernel's own view of the process says so.
#[tokio::test]
async fn a_private_server_can_be_pinned_to_a_cpu() {
    if !lab::spawn::can_spawn(lab::Kind::Redis, "a_private_server_can_be_pinned_to_a_cpu") {
        return;
    }
    let opts = SpawnOptions {
        cpus: Some(vec![0]),
        ..SpawnOptions::plain()
    };
    let r = Instance::start_new(Kind::Redis, opts)
        .await
        .expect("a private Redis");
    let pid = r.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim);
    assert_eq!(allowed, Some("0"), "the server should run on CPU 0 only");
}

/// Two starts on a new schema at once (two lessons, or a lesson and its
/// test) both create the tables and both succeed. Without the seed's
/// advisory lock, PostgreSQL's `CREATE TABLE IF NOT EXISTS` races in its
/// catalog and one of them fails on `pg_type_typname_nsp_index`.
#[tokio::test]
async fn concurrent_seeds_on_a_new_schema_both_succeed() {
    let server = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
    for _ in 0..10 {
        let schema = PgSchema::create(server.url()).await.expect("schema");
        let (a, b, c) = tokio::join!(
            lab::seed::ensure_users_pg(schema.pool(), 10),
            lab::seed::ensure_users_pg(schema.pool(), 10),
            lab::seed::ensure_orders_pg(schema.pool(), 10, 10),
        );
        a.expect("the first seed");
        b.expect("the second seed");
        c.expect("the orders");
    }
}
