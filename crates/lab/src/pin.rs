//! CPU placement for measurements.
//!
//! On a small machine, where the client and the server run matters more than
//! most optimisations: on the workshop's 2-core machines a Redis GET round
//! trip takes about 23 µs when client and server share a core and about
//! 55 µs across cores, and an unpinned run lands on either at random. So the
//! results pipeline pins both sides and says so in the book's stamp:
//!
//! - `LAB_PIN_CLIENT=0`: the bench process (its HTTP server and its client
//!   alike) runs on CPU 0. Benches call [`pin_client_from_env`] first thing.
//! - `LAB_PIN_SERVERS=1`: private instances spawned by the harness run on
//!   CPU 1. Shared servers are never re-pinned: they are not ours.
//!
//! Both take a list such as `1`, `0,1` or `0-3`.

use anyhow::{Context, bail};

pub const CLIENT_ENV: &str = "LAB_PIN_CLIENT";
pub const SERVERS_ENV: &str = "LAB_PIN_SERVERS";

/// Parses `1`, `0,2` or `0-3` into CPU numbers.
pub fn parse_cpus(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse()?, b.trim().parse()?);
                if a > b {
                    bail!("CPU range {part:?} runs backwards");
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(
                part.parse()
                    .with_context(|| format!("{part:?} is not a CPU number"))?,
            ),
        }
    }
    if cpus.is_empty() {
        bail!("no CPU in {s:?}");
    }
    if let Some(&too_big) = cpus.iter().find(|&&c| c >= libc::CPU_SETSIZE as usize) {
        bail!("CPU {too_big} is out of range");
    }
    Ok(cpus)
}

fn cpus_from_env(name: &str) -> anyhow::Result<Option<Vec<usize>>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(parse_cpus(&v).with_context(|| {
                format!("{name}={v:?} is not a CPU list such as 0, 0,1 or 0-3")
            })?))
        }
        _ => Ok(None),
    }
}

/// The CPUs private servers are pinned to, from `LAB_PIN_SERVERS`.
pub fn server_cpus() -> anyhow::Result<Option<Vec<usize>>> {
    cpus_from_env(SERVERS_ENV)
}

/// A kernel CPU set for `cpus`.
#[allow(unsafe_code)]
pub fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set,
    // and parse_cpus keeps every CPU below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

/// Pins the calling thread, and so every thread it starts afterwards (a
/// Tokio runtime built after this call), to `cpus`.
#[allow(unsafe_code)]
pub fn pin_current_thread(cpus: &[usize]) -> anyhow::Result<()> {
    let set = cpu_set(cpus);
    // SAFETY: a valid set and its size; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        bail!(
            "sched_setaffinity({cpus:?}) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Pins the calling thread as `LAB_PIN_CLIENT` says; returns the CPUs, if any.
pub fn pin_client_from_env() -> anyhow::Result<Option<Vec<usize>>> {
    let cpus = cpus_from_env(CLIENT_ENV)?;
    if let Some(c) = &cpus {
        pin_current_thread(c)?;
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_taskset() {
        assert_eq!(parse_cpus("1").ok(), Some(vec![1]));
        assert_eq!(parse_cpus("0, 2").ok(), Some(vec![0, 2]));
        assert_eq!(parse_cpus("0-3").ok(), Some(vec![0, 1, 2, 3]));
        for bad in ["", "x", "3-1", "99999"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pinning_this_thread_to_cpu_0_takes_effect() {
        // In a thread of its own, so the test harness's threads are untouched.
        std::thread::spawn(|| {
            pin_current_thread(&[0]).expect("pin");
            #[allow(unsafe_code)]
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            assert_eq!(cpu, 0);
        })
        .join()
        .expect("the pinned thread");
    }
}
