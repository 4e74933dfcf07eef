//! The generated configs are not just text: a private PostgreSQL and a
//! private MariaDB start with the 4GB machine's settings, and report back
//! exactly the values the file says.

use lab::Kind;
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use lesson_05_buffer_tuning::{Db, Setting, checked_in, mariadb, pg};

fn four_gb(db: Db) -> Vec<Setting> {
    let (_, _, machine) = checked_in()
        .into_iter()
        .find(|(f, d, _)| *d == db && f.contains("4GB"))
        .expect("a 4GB config");
    match db {
        Db::Postgres => pg::settings(&machine),
        Db::Mariadb => mariadb::settings(&machine),
    }
}

fn options(settings: &[Setting]) -> SpawnOptions {
    SpawnOptions::with_settings(settings.iter().map(|s| (s.name, s.value.clone())))
}

#[tokio::test]
async fn postgres_starts_with_the_4gb_config_and_shows_its_values() {
    if !can_spawn(Kind::Postgres, "postgres accepts the config") {
        return;
    }
    let settings = four_gb(Db::Postgres);
    let pg = Instance::start_new(Kind::Postgres, options(&settings))
        .await
        .expect("PostgreSQL starts with the generated settings");
    let pool = sqlx::PgPool::connect(&pg.url()).await.expect("connect");
    for s in &settings {
        let shown: String = sqlx::query_scalar(&format!("SHOW {}", s.name))
            .fetch_one(&pool)
            .await
            .expect("SHOW");
        assert_eq!(shown, s.value, "SHOW {}", s.name);
    }
}

#[tokio::test]
async fn mariadb_starts_with_the_4gb_config_and_shows_its_values() {
    if !can_spawn(Kind::MySql, "mariadb accepts the config") {
        return;
    }
    let settings = four_gb(Db::Mariadb);
    let my = Instance::start_new(Kind::MySql, options(&settings))
        .await
        .expect("MariaDB starts with the generated settings");
    let pool = sqlx::MySqlPool::connect(&my.url()).await.expect("connect");
    for s in &settings {
        let shown: String = sqlx::query_scalar(&format!("SELECT CAST(@@{} AS CHAR)", s.name))
            .fetch_one(&pool)
            .await
            .expect("SELECT @@");
        let want = lesson_05_buffer_tuning::size::parse_my(&s.value);
        assert_eq!(shown, want, "@@{}", s.name);
    }
}
