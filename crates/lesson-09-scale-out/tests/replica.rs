//! The read replica's lag and the fill policies, on a real private primary
//! and streaming standby. The lag is made deterministic by pausing the
//! standby's replay (`pg_wal_replay_pause()`), so every assertion is about
//! which row and which server answered, never about how fast.

use std::time::{Duration, Instant};

use lab::Kind;
use lab::seed::name_for;
use lab::spawn::can_spawn;
use lesson_09_scale_out::experiment::lag::Replicated;
use lesson_09_scale_out::replica::{Db, FillFrom, ReplicaSettings, Source};

const USERS: i64 = 100;
const MISSING: i64 = 900_001;

/// The name and the server a fill read.
async fn fill(db: &Db, id: i64) -> (String, Source) {
    let (user, source) = db
        .read_for_fill(id)
        .await
        .unwrap_or_else(|e| panic!("{}: reading user {id} failed: {e:#}", db.fill_from().name()))
        .unwrap_or_else(|| panic!("user {id} is seeded"));
    (user.name, source)
}

async fn write(db: &Db, id: i64, name: &str) {
    let found = db
        .update_name(id, name)
        .await
        .unwrap_or_else(|e| panic!("{}: writing user {id} failed: {e:#}", db.fill_from().name()));
    assert!(found, "user {id} is seeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_poisons_only_the_naive_fill() {
    if !can_spawn(
        Kind::Postgres,
        "a_paused_replica_poisons_only_the_naive_fill",
    ) {
        return;
    }
    let pair = Replicated::start(USERS).await.expect("primary and standby");
    let settings = ReplicaSettings::default();
    let naive = pair.db(FillFrom::Replica, settings.clone());
    let primary = pair.db(FillFrom::Primary, settings.clone());
    // A window no slow machine can outlast between a write and its read.
    let ryw = pair.db(
        FillFrom::ReadYourWrites,
        ReplicaSettings {
            window: Duration::from_secs(60),
            ..settings.clone()
        },
    );
    let short = Duration::from_millis(200);
    let ryw_short = pair.db(
        FillFrom::ReadYourWrites,
        ReplicaSettings {
            window: short,
            ..settings.clone()
        },
    );
    let lsn = pair.db(FillFrom::Lsn, settings.clone());
    let all = [&naive, &primary, &ryw, &ryw_short, &lsn];

    for db in all {
        let name = db.fill_from().name();
        assert!(
            db.read_for_fill(MISSING).await.expect("a read").is_none(),
            "{name}: an unknown id is Ok(None)"
        );
        assert!(
            !db.update_name(MISSING, "nobody").await.expect("a write"),
            "{name}: updating an unknown id finds nothing"
        );
    }
    // Nothing written: every policy but "primary" reads the replica.
    assert_eq!(fill(&lsn, 9).await, (name_for(9), Source::Replica));
    assert_eq!(fill(&ryw, 9).await, (name_for(9), Source::Replica));
    assert_eq!(fill(&primary, 9).await.1, Source::Primary);

    pair.pg.pause_replay().await.expect("pause replay");
    // Each policy writes a user of its own while the standby is behind.
    write(&naive, 1, "new 1").await;
    assert_eq!(
        fill(&naive, 1).await,
        (name_for(1), Source::Replica),
        "the naive split fills from the lagging replica: the OLD row, which the cache would keep for its TTL"
    );
    write(&primary, 2, "new 2").await;
    assert_eq!(fill(&primary, 2).await, ("new 2".into(), Source::Primary));
    write(&ryw, 3, "new 3").await;
    assert_eq!(fill(&ryw, 3).await, ("new 3".into(), Source::Primary));
    write(&lsn, 4, "new 4").await;
    assert_eq!(lsn.tracked(), 1);
    assert_eq!(fill(&lsn, 4).await, ("new 4".into(), Source::Primary));
    assert_eq!(
        fill(&lsn, 4).await.1,
        Source::Primary,
        "still not replayed: still the primary"
    );
    // Read-your-writes past its window while the lag goes on: it guesses
    // the replica has caught up, and it has not.
    write(&ryw_short, 5, "new 5").await;
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert_eq!(
        fill(&ryw_short, 5).await,
        (name_for(5), Source::Replica),
        "past the window, read-your-writes reads the replica, here still behind"
    );

    pair.pg.resume_replay().await.expect("resume replay");
    pair.caught_up().await.expect("the standby catches up");
    assert_eq!(
        fill(&lsn, 4).await,
        ("new 4".into(), Source::Replica),
        "once the replica has replayed the write, the LSN policy reads it again"
    );
    assert_eq!(lsn.tracked(), 0, "and forgets the write");
    assert_eq!(fill(&naive, 1).await, ("new 1".into(), Source::Replica));
    assert_eq!(fill(&ryw_short, 5).await, ("new 5".into(), Source::Replica));
    assert_eq!(ryw_short.tracked(), 0);
    assert_eq!(
        fill(&ryw, 3).await,
        ("new 3".into(), Source::Primary),
        "within its window read-your-writes reads the primary, replayed or not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_falls_back_and_a_dead_primary_fails_in_time() {
    if !can_spawn(
        Kind::Postgres,
        "a_dead_replica_falls_back_and_a_dead_primary_fails_in_time",
    ) {
        return;
    }
    let mut pair = Replicated::start(USERS).await.expect("primary and standby");
    let timeout = Duration::from_secs(1);
    let settings = ReplicaSettings {
        timeout,
        ..ReplicaSettings::default()
    };
    let lsn = pair.db(FillFrom::Lsn, settings.clone());
    let naive = pair.db(FillFrom::Replica, settings.clone());
    assert_eq!(fill(&lsn, 1).await.1, Source::Replica);
    // Generous: the replica's failure, then the primary's read.
    let bound = timeout * 2 + Duration::from_secs(2);

    pair.pg.standby.stop().await.expect("stop the standby");
    for db in [&lsn, &naive] {
        let t0 = Instant::now();
        assert_eq!(
            fill(db, 1).await,
            (name_for(1), Source::Primary),
            "{}: a dead replica's reads go to the primary",
            db.fill_from().name()
        );
        assert!(t0.elapsed() < bound, "no hang: {:?}", t0.elapsed());
    }
    // The LSN check cannot ask the dead replica: not knowing is "not yet".
    write(&lsn, 2, "new 2").await;
    assert_eq!(fill(&lsn, 2).await, ("new 2".into(), Source::Primary));

    pair.pg.primary.stop().await.expect("stop the primary");
    let t0 = Instant::now();
    assert!(lsn.read_for_fill(3).await.is_err(), "no server: an error");
    assert!(t0.elapsed() < bound, "no hang: {:?}", t0.elapsed());
    let t0 = Instant::now();
    assert!(lsn.update_name(3, "lost").await.is_err());
    assert!(t0.elapsed() < bound, "no hang: {:?}", t0.elapsed());
    assert_eq!(
        lsn.tracked(),
        1,
        "user 2's write, never confirmed replayed, is remembered; the failed write left nothing"
    );
}

/// The experiment `just lesson-9` runs, short, checked by its counts: the
/// paused replica poisons the naive fill for every read after, the fixes
/// never; the fixes never cache a stale name in the race either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_experiment_counts_what_the_chapter_says() {
    if !can_spawn(
        Kind::Postgres,
        "the_lag_experiment_counts_what_the_chapter_says",
    ) {
        return;
    }
    let r = lesson_09_scale_out::experiment::lag::run(Duration::from_secs(1))
        .await
        .expect("the lag experiment");
    println!("{}\n{}\n{}", r.setup_md(), r.table_md(), r.findings());
    for row in &r.poison {
        let name = row.fill.name();
        match (row.fill, row.window_ms) {
            (FillFrom::Replica, _) => {
                assert!(row.cached_stale, "{name}: the fill cached the old name");
                assert_eq!(
                    row.stale_reads, row.reads,
                    "{name}: every read after is stale"
                );
            }
            (FillFrom::ReadYourWrites, Some(w)) if w < r.window_ms => {
                assert!(
                    row.cached_stale,
                    "a lag longer than the window poisons read-your-writes"
                );
            }
            _ => {
                assert!(!row.cached_stale, "{name}: the fix cached the new name");
                assert_eq!(row.stale_reads, 0, "{name}");
                assert_eq!(row.filled_from, Source::Primary, "{name}");
            }
        }
    }
    assert_eq!(r.poison.len(), 5);
    assert_eq!(r.race.len(), 4);
    for row in &r.race {
        assert_eq!(row.errors, 0, "{}", row.fill.name());
        assert!(row.cycles >= 100);
        if row.fill != FillFrom::Replica {
            assert_eq!(
                row.stale,
                0,
                "{}: a fix never caches a stale name",
                row.fill.name()
            );
        }
    }
    assert!(r.natural.probes > 0 && r.natural.writes > 0);
}
