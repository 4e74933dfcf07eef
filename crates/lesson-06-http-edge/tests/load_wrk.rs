//! Experiment 1's load generator against a real nginx: wrk runs, our Lua
//! hook reports, and the parser reads it. Counts only, never timings.
//!
//! Skips without nginx or wrk, unless `LAB_REQUIRE_LOCAL=1` (CI).

use std::time::Duration;

use lesson_06_http_edge::edge::EdgeConfig;
use lesson_06_http_edge::experiment::load::wrk::{self, Script, Shape};

fn wrk_or_skip(test: &str) -> Option<std::path::PathBuf> {
    match wrk::binary() {
        Ok(bin) => Some(bin),
        Err(e) if std::env::var("LAB_REQUIRE_LOCAL").is_ok_and(|v| v == "1") => {
            panic!("{test} needs wrk (LAB_REQUIRE_LOCAL=1), and {e:#}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: it needs wrk, and {e:#}");
            None
        }
    }
}

#[tokio::test]
async fn wrk_against_a_static_nginx_reports_requests_and_no_errors() {
    let test = "wrk_against_a_static_nginx_reports_requests_and_no_errors";
    if !lab::edge::can_spawn(test) {
        return;
    }
    let Some(bin) = wrk_or_skip(test) else { return };
    let dir = tempfile_dir();
    std::fs::write(dir.join("hello.json"), br#"{"id":42,"name":"static"}"#).expect("written");
    // No origin behind it: only /static/ is asked for. Port 9 (discard)
    // is never contacted; nginx does not connect to an upstream at start.
    let mut config = EdgeConfig::new("127.0.0.1:9".parse().expect("an address"));
    config.static_root = Some(dir.clone());
    let nginx = config.spawn(None).await.expect("nginx starts");
    let script = Script::write().expect("the Lua script");
    let url = format!("{}/static/hello.json", nginx.base_url());
    let run = wrk::run(
        &bin,
        &script,
        &url,
        Shape::LATENCY,
        Duration::from_secs(1),
        None,
    )
    .await
    .expect("wrk runs and reports");
    let s = run.summary;
    assert!(s.requests > 0, "wrk sent no request: {s:?}");
    assert_eq!(s.errors(), 0, "every request answered 200: {s:?}");
    assert!(
        s.p50_us > 0.0 && s.p50_us <= s.max_us,
        "percentiles in order: {s:?}"
    );
    // A missing file is a 404, which wrk counts as a status error: the
    // check the experiment relies on can fail.
    let missing = format!("{}/static/missing.json", nginx.base_url());
    let run = wrk::run(
        &bin,
        &script,
        &missing,
        Shape::LATENCY,
        Duration::from_secs(1),
        None,
    )
    .await
    .expect("wrk runs and reports");
    assert!(run.summary.requests > 0);
    assert_eq!(
        run.summary.status_errors, run.summary.requests,
        "{:?}",
        run.summary
    );
    drop(nginx);
    std::fs::remove_dir_all(&dir).ok();
}

/// A folder everyone may read (as root, nginx's workers run as `nobody`).
fn tempfile_dir() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("lab-wrk-test-{}", lab::isolate::unique_name()));
    std::fs::create_dir(&dir).expect("a temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}
