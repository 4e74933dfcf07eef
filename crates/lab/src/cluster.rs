//! A real Redis Cluster on loopback: lesson 9's shards.
//!
//! [`RedisCluster::start`] spawns `masters × (1 + replicas)` private
//! `redis-server` processes with `--cluster-enabled yes`, each on its own
//! free port and temp dir (so each has its own `nodes.conf`), and joins them
//! with the engine's own tool:
//!
//! ```text
//! redis-cli --cluster create 127.0.0.1:P1 … 127.0.0.1:P6 --cluster-replicas 1 --cluster-yes
//! ```
//!
//! It then waits until every node reports `cluster_state:ok`, so the first
//! request of a test or a bench never meets a half-formed cluster. Dropping
//! the cluster stops every node and deletes every dir, like any
//! [`Instance`].
//!
//! Nothing here is a sharding imitation: slots, redirections, failure
//! detection and promotion are Redis's own. The harness only starts
//! processes, asks `CLUSTER NODES` what the cluster thinks, kills a node
//! when a lesson says so, and runs `redis-cli --cluster reshard`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::kind::Kind;
use crate::spawn::{Instance, SpawnOptions};

/// Every call the harness itself makes to a node is bounded by this.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The shape of a cluster and the settings its nodes start with.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Masters, each owning an equal share of the 16,384 slots. Redis
    /// Cluster needs at least 3.
    pub masters: usize,
    /// Replicas per master (`--cluster-replicas`).
    pub replicas: usize,
    /// `cluster-node-timeout`: how long a node may not answer before its
    /// peers call it failing and its replica may stand for election. The
    /// failover window starts from it.
    pub node_timeout: Duration,
    /// `cluster-require-full-coverage`: with `yes` (Redis's default) the
    /// whole cluster refuses every key while any slot has no live master.
    pub require_full_coverage: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            masters: 3,
            replicas: 1,
            node_timeout: Duration::from_millis(3000),
            require_full_coverage: true,
        }
    }
}

/// What `CLUSTER NODES` says about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub master: bool,
    /// The id of the master this replica follows.
    pub master_id: Option<String>,
    /// Flagged `fail` (the cluster agreed it is down) or `fail?` (one node
    /// suspects it).
    pub failing: bool,
    /// Slot ranges served, inclusive, for masters.
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    /// How many slots this node serves.
    pub fn slot_count(&self) -> usize {
        self.slots
            .iter()
            .map(|(a, b)| usize::from(*b) - usize::from(*a) + 1)
            .sum()
    }

    /// Whether this node serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
}

/// A running Redis Cluster of private nodes.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Instance>,
    options: ClusterOptions,
}

impl RedisCluster {
    /// Spawns the nodes, creates the cluster and waits until it is healthy.
    pub async fn start(options: ClusterOptions) -> anyhow::Result<RedisCluster> {
        anyhow::ensure!(
            options.masters >= 3,
            "Redis Cluster needs at least 3 masters, not {}",
            options.masters
        );
        let t0 = Instant::now();
        let count = options.masters * (1 + options.replicas);
        let settings = [
            ("cluster-enabled", "yes".to_string()),
            (
                "cluster-node-timeout",
                options.node_timeout.as_millis().to_string(),
            ),
            (
                "cluster-require-full-coverage",
                yes_no(options.require_full_coverage).into(),
            ),
            // A replica's first sync starts at once, not after the default
            // 5 s wait for more replicas to share it: a replica that has
            // never synced refuses to stand for election, so a master
            // killed in those 5 s would have no successor.
            ("repl-diskless-sync-delay", "0".into()),
            // Each node's state file lives in its own temp dir (`--dir`).
            ("cluster-config-file", "nodes.conf".into()),
        ];
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            // The cluster bus defaults to the port + 10000, which for a free
            // port high in the ephemeral range is past 65535 or taken: each
            // node gets a free bus port of its own.
            let mut node_settings = settings.to_vec();
            node_settings.push(("cluster-port", crate::spawn::free_port()?.to_string()));
            // In a container, the host's network: each node announces
            // 127.0.0.1:port to the others and to clients, which must reach
            // it there (behind Docker's published ports, 127.0.0.1 inside a
            // container is the container itself).
            let opts = SpawnOptions {
                host_network: true,
                ..SpawnOptions::with_settings(node_settings)
            };
            nodes.push(Instance::start_new(Kind::Redis, opts).await?);
        }
        let cluster = RedisCluster { nodes, options };
        cluster.create().await?;
        cluster.wait_ok(Duration::from_secs(30)).await?;
        tracing::info!(
            nodes = count,
            "created a Redis Cluster in {:.1?}",
            t0.elapsed()
        );
        Ok(cluster)
    }

    /// `redis-cli`, where a running node is: next to the local
    /// `redis-server`, or `docker exec` in a node's container (host
    /// networking, so `127.0.0.1:port` is every node from there too).
    fn redis_cli(&self) -> anyhow::Result<Command> {
        let node = self
            .nodes
            .iter()
            .find(|n| n.pid().is_some())
            .context("no node of the cluster is running")?;
        node.tool("redis-cli")
    }

    async fn create(&self) -> anyhow::Result<()> {
        let mut cmd = self.redis_cli()?;
        cmd.arg("--cluster").arg("create");
        for n in &self.nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port()));
        }
        cmd.args([
            "--cluster-replicas",
            &self.options.replicas.to_string(),
            "--cluster-yes",
        ]);
        run_bounded(cmd, Duration::from_secs(60), "redis-cli --cluster create").await
    }

    /// Waits until every running node says `cluster_state:ok` and agrees on
    /// how many nodes there are.
    pub async fn wait_ok(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let Err(e) = self.all_ok().await else {
                return Ok(());
            };
            if Instant::now() > deadline {
                bail!("the Redis Cluster was not healthy within {within:?}: {e:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn all_ok(&self) -> anyhow::Result<()> {
        for n in &self.nodes {
            if n.pid().is_none() {
                continue;
            }
            let info: String = query(n.port(), redis::cmd("CLUSTER").arg("INFO")).await?;
            if !info.contains("cluster_state:ok") {
                bail!("node {} is not ok yet", n.port());
            }
            let repl: String = query(n.port(), redis::cmd("INFO").arg("replication")).await?;
            if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
                bail!("replica {} has not synced with its master yet", n.port());
            }
        }
        // Every live node's own view: all slots served by live masters, and
        // every live node that is not a master with slots already a replica
        // (`redis-cli --cluster create` returns before each node has
        // heard of every role change).
        let live = self.nodes.iter().filter(|n| n.pid().is_some()).count();
        for n in self.nodes.iter().filter(|n| n.pid().is_some()) {
            let text: String = query(n.port(), redis::cmd("CLUSTER").arg("NODES")).await?;
            let view = parse_nodes(&text)?;
            let up: Vec<&NodeInfo> = view.iter().filter(|v| !v.failing).collect();
            let slots: usize = up.iter().filter(|v| v.master).map(|v| v.slot_count()).sum();
            let settled = up
                .iter()
                .filter(|v| !v.master || v.slot_count() > 0)
                .count();
            if slots != 16384 || settled < live {
                bail!(
                    "node {} sees {slots} of 16384 slots served and {settled} of {live} live nodes with a role",
                    n.port()
                );
            }
        }
        Ok(())
    }

    /// The seed URLs a cluster client starts from: every node's.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Instance::url).collect()
    }

    /// Every node's port, in spawn order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Instance::port).collect()
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }

    /// What the cluster thinks of itself, asked of the first node that
    /// answers.
    pub async fn nodes_info(&self) -> anyhow::Result<Vec<NodeInfo>> {
        let mut last = None;
        for n in &self.nodes {
            if n.pid().is_none() {
                continue;
            }
            match query::<String>(n.port(), redis::cmd("CLUSTER").arg("NODES")).await {
                Ok(text) => return parse_nodes(&text),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no node of the cluster is running")))
    }

    /// The master serving `slot`, as the cluster sees it now.
    pub async fn master_of(&self, slot: u16) -> anyhow::Result<NodeInfo> {
        self.nodes_info()
            .await?
            .into_iter()
            .find(|n| n.master && !n.failing && n.serves(slot))
            .with_context(|| format!("no live master serves slot {slot}"))
    }

    /// The slot of `key`, by the engine's own `CLUSTER KEYSLOT`.
    pub async fn keyslot(&self, key: &str) -> anyhow::Result<u16> {
        let port = self.live_port()?;
        query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).await
    }

    fn live_port(&self) -> anyhow::Result<u16> {
        self.nodes
            .iter()
            .find(|n| n.pid().is_some())
            .map(Instance::port)
            .context("no node of the cluster is running")
    }

    fn node_mut(&mut self, port: u16) -> anyhow::Result<&mut Instance> {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .with_context(|| format!("no node of this cluster on port {port}"))
    }

    /// `kill -9` of the node on `port`: a crash its peers learn of only by
    /// its silence, after `cluster-node-timeout`.
    pub fn kill(&mut self, port: u16) -> anyhow::Result<()> {
        self.node_mut(port)?.kill();
        Ok(())
    }

    /// Starts a killed node again on its port and data dir; it rejoins
    /// from its `nodes.conf` (as a replica, if it was failed over).
    pub async fn restart(&mut self, port: u16) -> anyhow::Result<()> {
        self.node_mut(port)?.start().await
    }

    /// Waits until a replica has taken over the slots of the master that
    /// was on `old_master`, and returns the new master and how long after
    /// the call it was seen.
    pub async fn wait_promoted(
        &self,
        old_master: &NodeInfo,
        within: Duration,
    ) -> anyhow::Result<(NodeInfo, Duration)> {
        let t0 = Instant::now();
        let slot = old_master
            .slots
            .first()
            .map(|r| r.0)
            .context("the old master served no slots")?;
        loop {
            if let Ok(nodes) = self.nodes_info().await
                && let Some(n) = nodes
                    .into_iter()
                    .find(|n| n.master && !n.failing && n.port != old_master.port && n.serves(slot))
            {
                return Ok((n, t0.elapsed()));
            }
            if t0.elapsed() > within {
                let view = match self.nodes_info().await {
                    Ok(nodes) => format!("{nodes:#?}"),
                    Err(e) => format!("{e:#}"),
                };
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|n| n.pid().is_some())
                    .map(Instance::log_tail)
                    .collect();
                bail!(
                    "no replica took over the slots of port {} within {within:?}; the cluster says:\n{view}\n{}",
                    old_master.port,
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Moves `slots` slots from one master to another while the cluster
    /// serves, with `redis-cli --cluster reshard` (MIGRATE key by key; the
    /// clients follow ASK and MOVED).
    pub async fn reshard(
        &self,
        from: &NodeInfo,
        to: &NodeInfo,
        slots: usize,
    ) -> anyhow::Result<()> {
        let mut cmd = self.redis_cli()?;
        cmd.arg("--cluster")
            .arg("reshard")
            .arg(format!("127.0.0.1:{}", self.live_port()?))
            .args(["--cluster-from", &from.id, "--cluster-to", &to.id])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .args(["--cluster-pipeline", "100"]);
        run_bounded(cmd, Duration::from_secs(120), "redis-cli --cluster reshard").await
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One command to one node, with a connection and an answer bounded by
/// [`CALL_TIMEOUT`]. A plain (not cluster) connection: these are questions
/// about the node itself.
async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> anyhow::Result<T> {
    let fut = async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut c = client.get_multiplexed_async_connection().await?;
        cmd.query_async::<T>(&mut c).await
    };
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("node {port} did not answer within {CALL_TIMEOUT:?}"))?
        .with_context(|| format!("node {port}"))
}

/// Runs a command off the runtime's threads, killed past `within`.
async fn run_bounded(mut cmd: Command, within: Duration, what: &str) -> anyhow::Result<()> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .with_context(|| format!("Failed to run {what}"))?;
    let pid = child.id();
    let wait = tokio::task::spawn_blocking(move || child.wait_with_output());
    let out = match tokio::time::timeout(within, wait).await {
        Ok(joined) => joined.context("the waiting thread failed")??,
        Err(_) => {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) on our own child's pid; the waiting thread
            // has not reaped it, since it has not returned.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            bail!("{what} did not finish within {within:?}");
        }
    };
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Parses `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping>
/// <pong> <epoch> <link> <slot> <slot> …`. Migrating slots (`[…->-…]`)
/// are skipped.
pub fn parse_nodes(text: &str) -> anyhow::Result<Vec<NodeInfo>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        anyhow::ensure!(f.len() >= 8, "unexpected CLUSTER NODES line: {line}");
        let port = f[1]
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {line}"))?;
        let flags: Vec<&str> = f[2].split(',').collect();
        let mut slots = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue;
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            slots.push((a.parse()?, b.parse()?));
        }
        out.push(NodeInfo {
            id: f[0].to_string(),
            port,
            master: flags.contains(&"master"),
            master_id: (f[3] != "-").then(|| f[3].to_string()),
            failing: flags.iter().any(|x| *x == "fail" || *x == "fail?"),
            slots,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_parse() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 10923 [93->-292f]
6ec2 127.0.0.1:30005@40005 master,fail - 1426238316232 1426238315232 5 disconnected
";
        let n = parse_nodes(text).expect("parses");
        assert_eq!(n.len(), 4);
        assert!(!n[0].master);
        assert_eq!(n[0].master_id.as_deref(), Some("e7d1"));
        assert_eq!(n[1].slots, vec![(5461, 10922)]);
        assert_eq!(n[2].port, 30001);
        assert_eq!(n[2].slot_count(), 5462);
        assert!(n[2].serves(10923) && !n[2].serves(10924));
        assert!(n[3].failing && n[3].slots.is_empty());
    }
}
