//! `just doctor`: what the harness would use for each server, and why.
//!
//! For PostgreSQL, Redis and MariaDB it walks the four discovery steps
//! without starting anything, prints the server version of whatever answers,
//! and flags a port conflict: something listening on a default port that is
//! not a server the harness can log into. Then where lesson 6's nginx
//! would come from.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use lab::discover::{Probe, docker_reachable, redact};
use lab::docker::{daemon_version, image_present, spec};
use lab::kind::{ping, server_version};
use lab::spawn::{Binaries, SpawnOptions};
use lab::{Backend, Kind};

/// Step 3: the daemon, the image the harness would run and whether it is
/// here. True when a container could start without a pull.
fn docker_step(kind: Kind, problems: &mut usize) -> bool {
    let s = spec(kind);
    let version = match daemon_version() {
        Ok(v) => v,
        Err(e) => {
            println!("  3. Docker: a socket is present, but {e:#}");
            return false;
        }
    };
    let from = if std::env::var(s.image_env).is_ok() {
        s.image_env.to_string()
    } else {
        format!(
            "the default, from docker-compose.yml; {} overrides it",
            s.image_env
        )
    };
    match image_present(&s.image) {
        Ok(true) => {
            println!("  3. Docker {version}: image {} ({from}): present", s.image);
            true
        }
        Ok(false) => {
            println!(
                "  3. Docker {version}: image {} ({from}): NOT PRESENT; the first container pulls it \
                 (needs a registry), or `eval \"$(just images)\"` builds local ones",
                s.image
            );
            false
        }
        Err(e) => {
            *problems += 1;
            println!(
                "  3. Docker {version}: could not look for image {}: {e:#}",
                s.image
            );
            false
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut problems = 0;
    for kind in Kind::ALL {
        let probe = Probe::from_env(kind)?;
        println!("{kind}");
        let mut choice: Option<String> = None;
        let external = matches!(probe.backend, Backend::Auto | Backend::External);

        match &probe.env_url {
            Some(url) => match ping(kind, url).await {
                Ok(()) => {
                    let v = server_version(kind, url)
                        .await
                        .unwrap_or_else(|e| format!("version unknown: {e:#}"));
                    println!("  1. {}={}: answers ({v})", kind.env_var(), redact(url));
                    choice.get_or_insert(format!("{} ({v})", kind.env_var()));
                }
                Err(e) => {
                    problems += 1;
                    println!(
                        "  1. {}={}: DOES NOT ANSWER: {e:#}",
                        kind.env_var(),
                        redact(url)
                    );
                    println!(
                        "     discovery stops here with an error; fix or unset {}",
                        kind.env_var()
                    );
                    choice.get_or_insert("nothing (the env URL is broken)".into());
                }
            },
            None => println!("  1. {}: not set", kind.env_var()),
        }

        let port = kind.default_port();
        let open = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(500),
        )
        .is_ok();
        match (open, ping(kind, &probe.default_url).await) {
            (_, Ok(())) => {
                let v = server_version(kind, &probe.default_url)
                    .await
                    .unwrap_or_else(|e| format!("version unknown: {e:#}"));
                println!("  2. {}: answers ({v})", probe.default_url);
                if external {
                    choice.get_or_insert(format!("the server on port {port} ({v})"));
                }
            }
            (true, Err(e)) => {
                problems += 1;
                println!(
                    "  2. port {port}: PORT CONFLICT: something listens there, but it is not a {kind} the harness can use: {e:#}"
                );
                println!("     stop it, or set {} to the right URL", kind.env_var());
            }
            (false, Err(_)) => println!("  2. port {port}: nothing listening"),
        }

        let docker = if docker_reachable() {
            docker_step(kind, &mut problems)
        } else {
            println!("  3. Docker: no daemon (DOCKER_HOST unset, no /var/run/docker.sock)");
            false
        };
        if docker && matches!(probe.backend, Backend::Auto | Backend::Docker) {
            choice.get_or_insert(format!("a container of {}", lab::docker::spec(kind).image));
        }

        let opts = SpawnOptions {
            bin_dir: probe.bin_dir.clone(),
            ..SpawnOptions::default()
        };
        match Binaries::find(kind, &opts) {
            Ok(b) if probe.backend == Backend::Docker => {
                println!(
                    "  4. local binaries: {} (unused: LAB_BACKEND=docker)",
                    b.server.display()
                );
            }
            Ok(b) => {
                println!("  4. local binaries: {}", b.server.display());
                if matches!(probe.backend, Backend::Auto | Backend::Local) {
                    choice.get_or_insert(format!("a private instance of {}", b.server.display()));
                }
            }
            Err(e) => println!("  4. local binaries: {e:#}"),
        }

        if probe.backend == Backend::Docker {
            println!("     (LAB_BACKEND=docker: private instances are containers too)");
        }
        match choice {
            Some(c) => println!("  => the harness would use {c}\n"),
            None => {
                problems += 1;
                println!(
                    "  => NOTHING: no {kind} is available. Set {}, run `just services-up`, or install the server.\n",
                    kind.env_var()
                );
            }
        }
    }
    // Lesson 6's edge: always a private nginx, never a system one.
    println!("nginx (lesson 6's edge, always spawned privately)");
    match lab::edge::binary() {
        Ok(bin) => {
            let v = std::process::Command::new(&bin)
                .arg("-v")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                .unwrap_or_else(|e| format!("version unknown: {e}"));
            println!("  binary: {} ({v})", bin.display());
            println!(
                "  purge module: {}",
                lab::edge::purge_module().map_or_else(
                    || "not installed (lesson 6 shows versioned URLs only)".to_string(),
                    |m| m.display().to_string()
                )
            );
        }
        // Not a problem for lessons 1–5: only lesson 6 and exercise 6 need it.
        Err(e) => println!("  none: {e:#}"),
    }
    // wrk drives lesson 6's first experiment (the edge under load).
    match std::process::Command::new("wrk").arg("-v").output() {
        Ok(o) => println!(
            "  wrk: {}",
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("present")
                .trim()
        ),
        Err(_) => {
            println!("  wrk: not found (lesson 6's experiment 1 needs it: .ci/install-nginx)")
        }
    }
    println!();
    println!(
        "LAB_BACKEND={}",
        std::env::var("LAB_BACKEND").unwrap_or_else(|_| "auto (unset)".into())
    );
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) found above");
    }
    Ok(())
}
