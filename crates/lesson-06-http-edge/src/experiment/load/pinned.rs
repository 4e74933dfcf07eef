//! A server on a thread of its own, pinned, with its own current-thread
//! runtime: everything it does (HTTP, its Redis and database clients, its
//! logging) happens on that one thread, so the thread's CPU time in `/proc`
//! is the server's whole cost, and it never shares a core with the load
//! generator.
//!
//! The thread may also have a log subscriber of its own
//! (`tracing::dispatcher::set_default` is per thread): one process runs
//! servers at different log levels side by side, and measures each.

use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::Router;
use tokio::sync::oneshot;

/// What the thread sends back once it serves.
struct Started<T> {
    addr: std::net::SocketAddr,
    stat_path: PathBuf,
    extra: T,
}

/// A running pinned server; `extra` is whatever its builder handed back
/// (lesson 2's metrics, say).
#[derive(Debug)]
pub struct PinnedServer<T> {
    addr: std::net::SocketAddr,
    stat_path: PathBuf,
    extra: T,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Send + 'static> PinnedServer<T> {
    /// Starts a thread named `name`, pinned to `cpus` (unpinned with
    /// `None`), logging through `log` (the process's default without),
    /// and serves what `build` returns on a free loopback port. `build`
    /// runs on the new thread, so its clients' background tasks live there.
    pub async fn start<F, Fut>(
        name: &str,
        cpus: Option<Vec<usize>>,
        log: Option<tracing::Dispatch>,
        build: F,
    ) -> anyhow::Result<PinnedServer<T>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<(Router, T)>>,
    {
        let (started_tx, started_rx) = oneshot::channel::<anyhow::Result<Started<T>>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _log = log.as_ref().map(tracing::dispatcher::set_default);
                let rt = match cpus
                    .as_deref()
                    .map_or(Ok(()), lab::pin::pin_current_thread)
                    .and_then(|()| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .context("Failed to build the server's runtime")
                    }) {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let serve = async {
                        let (router, extra) = build().await?;
                        let running = lab::http::spawn_server(router, 0).await?;
                        // /proc/thread-self is this thread's /proc/PID/task/TID.
                        let me = std::fs::read_link("/proc/thread-self")
                            .context("Failed to read /proc/thread-self")?;
                        anyhow::Ok((running, me, extra))
                    };
                    match serve.await {
                        Ok((running, me, extra)) => {
                            let started = Started {
                                addr: running.addr,
                                stat_path: Path::new("/proc").join(me).join("stat"),
                                extra,
                            };
                            let _ = started_tx.send(Ok(started));
                            let _ = stop_rx.await;
                            let _ = running.shutdown().await;
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                        }
                    }
                });
            })
            .with_context(|| format!("Failed to start the {name} thread"))?;
        let started = started_rx
            .await
            .with_context(|| format!("the {name} thread died before it served"))?
            .with_context(|| format!("{name} did not start"))?;
        Ok(PinnedServer {
            addr: started.addr,
            stat_path: started.stat_path,
            extra: started.extra,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `/proc/PID/task/TID/stat` of the thread that does all the work.
    pub fn stat_path(&self) -> &Path {
        &self.stat_path
    }

    pub fn cpus_allowed(&self) -> String {
        let status = self.stat_path.with_file_name("status");
        super::wrk::cpus_allowed(&status.display().to_string())
    }

    pub fn extra(&self) -> &T {
        &self.extra
    }

    /// Stops serving and waits for the thread.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            tokio::task::spawn_blocking(move || t.join())
                .await?
                .map_err(|_| anyhow::anyhow!("a pinned server's thread panicked"))?;
        }
        Ok(())
    }
}

impl<T> Drop for PinnedServer<T> {
    fn drop(&mut self) {
        // Stopping is enough: the thread ends on its own, detached.
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
