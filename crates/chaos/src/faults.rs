//! TEMPORARY stand-in for `lab::faults` (being written on another branch),
//! with the same API, so the run can be tried before it lands. Deleted at
//! the merge.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Latency(Duration),
    RefuseNew,
    Blackhole,
}

#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    reset: watch::Sender<u64>,
    conns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset.send_modify(|g| *g += 1);
    }
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, _) = watch::channel(Fault::None);
        let (reset, _) = watch::channel(0u64);
        let conns = Arc::new(AtomicUsize::new(0));
        let (f, r, c) = (fault.clone(), reset.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    continue;
                };
                if *f.borrow() == Fault::RefuseNew {
                    continue;
                }
                let (f, mut r, c) = (f.subscribe(), r.subscribe(), c.clone());
                tokio::spawn(async move {
                    let Ok(Ok(up)) =
                        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream))
                            .await
                    else {
                        return;
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::select! {
                        _ = pump(dr, uw, f.clone()) => {}
                        _ = pump(ur, dw, f) => {}
                        _ = r.changed() => {}
                    }
                    c.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Ok(FaultProxy {
            addr,
            fault,
            reset,
            conns,
            task,
        })
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
    pub fn reset_all(&self) {
        self.reset.send_modify(|g| *g += 1);
    }
    pub fn connections(&self) -> usize {
        self.conns.load(Ordering::Relaxed)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let now = *fault.borrow();
        match now {
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::Blackhole => {
                // Held, not dropped: TCP would retransmit them.
                while *fault.borrow_and_update() == Fault::Blackhole {
                    if fault.changed().await.is_err() {
                        return;
                    }
                }
            }
            _ => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

pub fn through(url: &str, proxy: SocketAddr) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("no scheme"))?;
    let (hostport, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let userinfo = hostport
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    let slash = if path.is_empty() && !rest.contains('/') {
        ""
    } else {
        "/"
    };
    Ok(format!("{scheme}://{userinfo}{proxy}{slash}{path}"))
}
