//! Exercise 9's checks, against real servers: each test spawns a private
//! PostgreSQL primary and a standby streaming from it (`lab::replica`),
//! seeds three users, and holds the standby's replay still while it
//! renames one. They check which server answered and what it said, never
//! timings. Each failure message says what to look at.

use std::time::{Duration, Instant};

use exercise_09_scale_out::{Source, read_for_fill};
use lab::Kind;
use lab::replica::PgReplica;
use lab::users::User;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// How long the tests wait for the standby to catch up: far longer than
/// it takes on loopback, so a busy machine cannot fail a test.
const CATCH_UP: Duration = Duration::from_secs(30);

/// A primary, its standby, a pool on each.
struct Pair {
    primary: PgPool,
    standby: PgPool,
    // Last: the pools close before the servers stop.
    servers: PgReplica,
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .expect("the tests could not connect (not your code)")
}

/// A primary and its standby, both with users 1 ('Ada'), 2 and 3, the
/// standby caught up.
async fn seeded(test: &str) -> Pair {
    lab::spawn::require_spawn(Kind::Postgres, test);
    let servers = PgReplica::start(Vec::<(String, String)>::new())
        .await
        .expect("the tests could not start a primary and its standby (not your code)");
    let pair = Pair {
        primary: pool(&servers.primary_url()).await,
        standby: pool(&servers.standby_url()).await,
        servers,
    };
    sqlx::raw_sql(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL);
         INSERT INTO users VALUES
           (1, 'Ada', 'ada@example.com'),
           (2, 'Grace', 'grace@example.com'),
           (3, 'Edsger', 'edsger@example.com');",
    )
    .execute(&pair.primary)
    .await
    .expect("the tests could not seed their users (not your code)");
    let lsn = pair.servers.primary_lsn().await.expect("primary LSN");
    pair.servers
        .wait_replayed(&lsn, CATCH_UP)
        .await
        .expect("the standby did not replay the seed (not your code)");
    pair
}

impl Pair {
    /// Pauses the standby's replay, renames user 1 to 'Ada Lovelace' on the
    /// primary, and returns the primary's LSN after that commit: what a
    /// service records when it writes. On return the standby has
    /// *received* the write but not replayed it, and still says 'Ada'.
    async fn write_while_paused(&self) -> String {
        self.servers.pause_replay().await.expect("pause replay");
        sqlx::query("UPDATE users SET name = 'Ada Lovelace' WHERE id = 1")
            .execute(&self.primary)
            .await
            .expect("the tests could not rename user 1 (not your code)");
        let written = self.servers.primary_lsn().await.expect("primary LSN");
        // Received: so that asking how far the standby has *received* says
        // "past it", and only asking how far it has *replayed* says "not yet".
        let t0 = Instant::now();
        loop {
            let received: Option<bool> =
                sqlx::query_scalar("SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn")
                    .bind(&written)
                    .fetch_one(&self.standby)
                    .await
                    .expect("pg_last_wal_receive_lsn");
            if received == Some(true) {
                break;
            }
            assert!(
                t0.elapsed() < CATCH_UP,
                "the standby did not receive the write within {CATCH_UP:?} (not your code)"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            self.name_on_standby(1).await,
            "Ada",
            "the paused standby should still have the old name (the test's premise; not your code)"
        );
        written
    }

    async fn name_on_standby(&self, id: i64) -> String {
        sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&self.standby)
            .await
            .expect("read the standby")
    }

    /// Your function, its error turned into a failed test.
    async fn fill(&self, id: i64, written: Option<&str>) -> (Option<User>, Source) {
        read_for_fill(&self.primary, &self.standby, id, written)
            .await
            .unwrap_or_else(|e| {
                panic!("your read_for_fill(.., id {id}, written {written:?}) failed: {e:#}")
            })
    }
}

/// Its name, or a failure saying user `id` should exist.
fn name(got: &(Option<User>, Source), id: i64) -> String {
    match &got.0 {
        Some(u) => u.name.clone(),
        None => panic!("user {id} exists, but read_for_fill returned no user: {got:?}"),
    }
}

/// `(high, low)` halves of an LSN as PostgreSQL prints it.
fn parse_lsn(lsn: &str) -> (u32, u32) {
    let (hi, lo) = lsn
        .split_once('/')
        .expect("an LSN is two hex numbers around a slash");
    (
        u32::from_str_radix(hi, 16).expect("hex"),
        u32::from_str_radix(lo, 16).expect("hex"),
    )
}

#[tokio::test]
async fn a_write_the_replica_has_not_replayed_is_read_from_the_primary() {
    let p = seeded("a_write_the_replica_has_not_replayed_is_read_from_the_primary").await;
    let written = p.write_while_paused().await;
    let got = p.fill(1, Some(&written)).await;
    assert_eq!(
        (name(&got, 1).as_str(), got.1),
        ("Ada Lovelace", Source::Primary),
        "user 1 was renamed at {written}, and the replica has received that write but not \
         replayed it (its replay is paused): it still says 'Ada'. A fill from it would put the \
         old name back in the cache. Ask the replica how far it has REPLAYED, \
         `pg_last_wal_replay_lsn()`, compare with `written`, and read the primary when it is \
         behind. (How far it has received, `pg_last_wal_receive_lsn()`, is past the write: not \
         what its reads see.)"
    );
}

#[tokio::test]
async fn without_a_recorded_write_the_replica_is_read() {
    let p = seeded("without_a_recorded_write_the_replica_is_read").await;
    p.write_while_paused().await;
    // User 1 was renamed, but this call was not told: as in an instance that
    // did not make the write. The old name is the documented cost.
    let got = p.fill(1, None).await;
    assert_eq!(
        got.1,
        Source::Replica,
        "with no recorded write (`written` is None) there is nothing the replica is known to be \
         behind: read the replica, sparing the primary. Got {got:?}"
    );
    assert_eq!(
        name(&got, 1),
        "Ada",
        "the replica, paused, still says 'Ada': that is what a read without a recorded write \
         gets, and why the LSN has to be recorded"
    );
    let got = p.fill(2, None).await;
    assert_eq!(
        (name(&got, 2).as_str(), got.1),
        ("Grace", Source::Replica),
        "user 2 was never written: read from the replica"
    );
}

#[tokio::test]
async fn once_the_replica_has_replayed_the_write_it_is_read() {
    let p = seeded("once_the_replica_has_replayed_the_write_it_is_read").await;
    let written = p.write_while_paused().await;
    p.servers.resume_replay().await.expect("resume replay");
    p.servers
        .wait_replayed(&written, CATCH_UP)
        .await
        .expect("the standby did not catch up (not your code)");
    let got = p.fill(1, Some(&written)).await;
    assert_eq!(
        (name(&got, 1).as_str(), got.1),
        ("Ada Lovelace", Source::Replica),
        "the replica has now replayed the write at {written} (its `pg_last_wal_replay_lsn()` is \
         at or past it), so its row is as new as the write: read the replica, not the primary"
    );
}

#[tokio::test]
async fn an_unknown_id_is_none() {
    let p = seeded("an_unknown_id_is_none").await;
    let written = p.write_while_paused().await;
    for w in [None, Some(written.as_str())] {
        let got = p.fill(999, w).await;
        assert_eq!(
            got.0, None,
            "there is no user 999: `Ok((None, source))` (with written {w:?}), got {got:?}"
        );
    }
}

/// The standby's replay LSN, checked to be between 0/1000000 and
/// 0/10000000: seven hex digits after `0/`, which the next two tests rely on.
async fn replay_lsn_of_seven_digits(p: &Pair) -> String {
    let replay = p.servers.replay_lsn().await.expect("replay LSN");
    let (hi, lo) = parse_lsn(&replay);
    assert!(
        hi == 0 && (0x100_0000..0x1000_0000).contains(&lo),
        "the test expects a fresh cluster's replay LSN between 0/1000000 and 0/10000000, got \
         {replay} (the test's premise; not your code)"
    );
    replay
}

#[tokio::test]
async fn a_position_past_the_replay_is_read_from_the_primary() {
    let p = seeded("a_position_past_the_replay_is_read_from_the_primary").await;
    let replay = replay_lsn_of_seven_digits(&p).await;
    // Positions the standby has not reached (the primary has not either:
    // a write recorded by a primary that has since moved on is the same
    // question). As text, "0/10000000" sorts BEFORE "0/3…"; "1/0" is
    // smaller than the replay's low half alone.
    for written in ["0/10000000", "1/0"] {
        let got = p.fill(1, Some(written)).await;
        assert_eq!(
            got.1,
            Source::Primary,
            "the replica has replayed up to {replay}; `written` is {written}, which is further \
             on: the replica has not replayed it, read the primary. An LSN is a 64-bit number \
             printed as two hex halves without leading zeros, `high/low`: as text \"0/3000000\" \
             sorts after \"0/10000000\". Compare LSNs as numbers, whole (`$1::pg_lsn` in SQL). \
             Got {got:?}"
        );
    }
}

#[tokio::test]
async fn a_position_the_replay_has_reached_is_read_from_the_replica() {
    let p = seeded("a_position_the_replay_has_reached_is_read_from_the_replica").await;
    let replay = replay_lsn_of_seven_digits(&p).await;
    // "0/FFFFFF" is 16 MB, behind any fresh cluster's replay; as text it
    // sorts after "0/2…". The replay position itself is replayed too.
    for written in ["0/FFFFFF", replay.as_str()] {
        let got = p.fill(2, Some(written)).await;
        assert_eq!(
            (name(&got, 2).as_str(), got.1),
            ("Grace", Source::Replica),
            "the replica has replayed up to {replay}, which is at or past `written` = {written}: \
             read the replica (at or past: `>=`). An LSN is a 64-bit number printed as two hex \
             halves without leading zeros, `high/low`: as text \"0/3000000\" sorts before \
             \"0/FFFFFF\". Compare LSNs as numbers (`$1::pg_lsn` in SQL)"
        );
    }
}
