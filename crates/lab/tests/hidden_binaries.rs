//! `LAB_HIDE_LOCAL_BINARIES=1`, proven in child processes: the env var is
//! process-wide (and setting it in a running test is `unsafe` in edition
//! 2024), so each check re-runs this test binary with the env it needs and
//! reads the child's output, as an attendee's terminal would show it.

use std::process::{Command, Output};

use lab::Kind;
use lab::spawn::{Binaries, HIDE_LOCAL_ENV, REQUIRE_LOCAL_ENV, SpawnOptions};

/// Runs the ignored test `name` of this binary in a child with `envs` set,
/// `LAB_REQUIRE_LOCAL` and `LAB_BIN_DIR` unset and `LAB_BACKEND=local`
/// unless `envs` says otherwise (these checks are about the local binaries;
/// with Docker reachable, `auto` would run a container instead), and
/// libtest's output capture on (no `--nocapture`): what a reader would see.
fn child(name: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--include-ignored", "--test-threads=1"])
        .env_remove(REQUIRE_LOCAL_ENV)
        .env_remove(lab::spawn::BIN_DIR_ENV)
        .env(lab::discover::BACKEND_ENV, "local")
        .envs(envs.iter().copied());
    cmd.output().expect("the test binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// The children. Ignored, so a plain `cargo test` does not run them alone.

#[test]
#[ignore = "a child of hiding_the_binaries_makes_find_fail"]
fn child_find_fails() {
    let err = Binaries::find(Kind::Redis, &SpawnOptions::plain())
        .expect_err("with LAB_HIDE_LOCAL_BINARIES=1 no binaries are found");
    let err = format!("{err:#}");
    assert!(err.contains(HIDE_LOCAL_ENV), "the error says why: {err}");
}

#[test]
#[ignore = "a child of a_lesson_test_skips_visibly_without_binaries"]
fn child_can_spawn() {
    assert!(!lab::spawn::can_spawn(Kind::Postgres, "child_can_spawn"));
}

#[test]
#[ignore = "a child of docker_stands_in_for_hidden_binaries"]
fn child_can_spawn_with_docker() {
    assert!(lab::spawn::can_spawn(
        Kind::Postgres,
        "child_can_spawn_with_docker"
    ));
    assert_eq!(
        lab::spawn::RunnerKind::choose(Kind::Redis, &SpawnOptions::plain()).ok(),
        Some(lab::spawn::RunnerKind::Docker)
    );
}

#[test]
#[ignore = "a child of an_exercise_test_fails_naming_the_package"]
fn child_require_spawn() {
    lab::spawn::require_spawn(Kind::Postgres, "child_require_spawn");
}

// The checks.

#[test]
fn hiding_the_binaries_makes_find_fail() {
    let out = child("child_find_fails", &[(HIDE_LOCAL_ENV, "1")]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_lesson_test_skips_visibly_without_binaries() {
    let out = child("child_can_spawn", &[(HIDE_LOCAL_ENV, "1")]);
    let text = text(&out);
    assert!(out.status.success(), "a lesson's test skips: {text}");
    // The child passed, so libtest captured (and hid) its print macros'
    // output; the SKIPPED line must be there all the same.
    assert!(
        text.contains("SKIPPED child_can_spawn:") && text.contains("apt-get install postgresql"),
        "the SKIPPED line, naming the test and the fix, reaches the output of a passing test: {text}"
    );
}

#[test]
fn require_local_turns_the_skip_into_a_failure() {
    let out = child(
        "child_can_spawn",
        &[(HIDE_LOCAL_ENV, "1"), (REQUIRE_LOCAL_ENV, "1")],
    );
    let text = text(&out);
    assert!(!out.status.success(), "LAB_REQUIRE_LOCAL=1 fails: {text}");
    assert!(text.contains("apt-get install postgresql"), "{text}");
}

/// On a machine without the server packages, `LAB_BACKEND=docker` makes
/// every private instance a container: the tests that need one run.
#[test]
fn docker_stands_in_for_hidden_binaries() {
    let out = child(
        "child_can_spawn_with_docker",
        &[
            (HIDE_LOCAL_ENV, "1"),
            (lab::discover::BACKEND_ENV, "docker"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_exercise_test_fails_naming_the_package() {
    let out = child("child_require_spawn", &[(HIDE_LOCAL_ENV, "1")]);
    let text = text(&out);
    assert!(!out.status.success(), "an exercise's test fails: {text}");
    assert!(text.contains("apt-get install postgresql"), "{text}");
}

#[test]
fn an_explicit_bin_dir_is_still_searched() {
    // A folder with a fake, executable redis-server: found despite the hiding.
    let dir = tempfile::tempdir().expect("a temp dir");
    let fake = dir.path().join("redis-server");
    std::fs::write(&fake, "#!/bin/sh\n").expect("write");
    let mut perms = std::fs::metadata(&fake).expect("metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).expect("chmod");
    let out = child(
        "child_bin_dir_found",
        &[
            (HIDE_LOCAL_ENV, "1"),
            (lab::spawn::BIN_DIR_ENV, &dir.path().display().to_string()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
#[ignore = "a child of an_explicit_bin_dir_is_still_searched"]
fn child_bin_dir_found() {
    let bins = Binaries::find(Kind::Redis, &SpawnOptions::plain())
        .expect("LAB_BIN_DIR is searched even with the system's binaries hidden");
    assert!(bins.server.ends_with("redis-server"));
}
