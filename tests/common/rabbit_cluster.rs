//! A private RabbitMQ cluster on loopback, for tests that take a node away.
//!
//! Each node is a [`PrivateRabbit`] (its own name `portertest<port>@localhost`,
//! AMQP and distribution ports, and data and log folders); the nodes share
//! the Erlang cookie of the `rabbitmq` user they run as. The nodes start in
//! parallel, then each node but the first (A) joins A in turn (`stop_app`,
//! `join_cluster A`, `start_app`). Every node is stopped by name when the
//! cluster is dropped, except one the test killed.

use std::collections::BTreeSet;

use serde_json::Value;

use super::rabbit::PrivateRabbit;

pub struct PrivateCluster {
    /// The nodes; `nodes[0]` is A, the one the others joined.
    pub nodes: Vec<PrivateRabbit>,
}

/// A quorum queue as a node reports it (`rabbitmqctl list_queues`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumQueue {
    pub name: String,
    /// The node that leads it; empty while it has no leader.
    pub leader: String,
    /// Its members (replicas), sorted.
    pub members: Vec<String>,
}

/// One AMQP connection as a node reports it (`rabbitmqctl list_connections`).
#[derive(Debug, Clone)]
pub struct ClientConnection {
    /// The server port it is connected to: which node it is on.
    pub port: u16,
    /// The name the client gave it (`connection_name`), if any.
    pub client_name: Option<String>,
}

impl PrivateCluster {
    /// Starts `n` nodes and clusters them with the first; returns when
    /// every node runs and reports all `n` as running members.
    pub fn start(n: usize) -> PrivateCluster {
        assert!(n >= 1);
        let started: Vec<std::thread::Result<PrivateRabbit>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|_| s.spawn(PrivateRabbit::start)).collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        let mut nodes = Vec::new();
        let mut failure = None;
        for node in started {
            match node {
                Ok(node) => nodes.push(node),
                Err(panic) => failure = Some(panic),
            }
        }
        let cluster = PrivateCluster { nodes };
        if let Some(panic) = failure {
            // The nodes that did start are stopped on the way out.
            std::panic::resume_unwind(panic);
        }
        let a = cluster.nodes[0].node().to_string();
        for joiner in &cluster.nodes[1..] {
            joiner.ctl(&["stop_app"]);
            // Seen once to fail, for no reason it printed: tried again.
            let mut tries = 0;
            while let Err(e) = joiner.try_ctl(&["join_cluster", &a]) {
                tries += 1;
                assert!(tries < 3, "{} could not join {a}: {e}", joiner.node());
                eprintln!("{} could not join {a}, trying again: {e}", joiner.node());
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            joiner.ctl(&["start_app"]);
        }
        let expected: BTreeSet<String> = cluster.nodes.iter().map(|n| n.node().to_string()).collect();
        for node in &cluster.nodes {
            assert_eq!(
                cluster.running_nodes(node),
                expected,
                "node {} does not see the whole cluster",
                node.node()
            );
        }
        cluster
    }

    /// Every node's AMQP URL, A first.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    /// Every node's name, A first.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node().to_string()).collect()
    }

    /// The running members of the cluster, as `node` sees them.
    pub fn running_nodes(&self, node: &PrivateRabbit) -> BTreeSet<String> {
        let status = json(&node.ctl_output(&["cluster_status", "--formatter", "json"]));
        status["running_nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("cluster_status without running_nodes: {status}"))
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    }

    /// The quorum queues of the default vhost, as node `via` reports them.
    pub fn quorum_queues(&self, via: usize) -> Vec<QuorumQueue> {
        let out = self.nodes[via].ctl_output(&[
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "--formatter",
            "json",
        ]);
        json(&out)
            .as_array()
            .unwrap_or_else(|| panic!("list_queues did not answer a list: {out}"))
            .iter()
            .filter(|q| q["type"] == "quorum")
            .map(|q| {
                let mut members: Vec<String> = q["members"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect();
                members.sort();
                QuorumQueue {
                    name: q["name"].as_str().unwrap_or_default().to_string(),
                    leader: q["leader"].as_str().unwrap_or_default().to_string(),
                    members,
                }
            })
            .collect()
    }

    /// The AMQP connections of the whole cluster, as node `via` reports them.
    pub fn connections(&self, via: usize) -> Vec<ClientConnection> {
        let out = self.nodes[via].ctl_output(&["list_connections", "port", "client_properties", "--formatter", "json"]);
        json(&out)
            .as_array()
            .unwrap_or_else(|| panic!("list_connections did not answer a list: {out}"))
            .iter()
            .map(|c| ClientConnection {
                port: c["port"].as_u64().unwrap_or_default() as u16,
                client_name: connection_name(&c["client_properties"]),
            })
            .collect()
    }

    /// Which node (its index) listens on AMQP port `port`.
    pub fn node_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// SIGKILLs node `i`'s `beam.smp` and waits until it is gone.
    pub fn sigkill(&mut self, i: usize) {
        self.nodes[i].sigkill();
    }
}

/// Parses rabbitmqctl's JSON answer.
fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("rabbitmqctl answered no JSON ({e}): {out}"))
}

/// The `connection_name` among a connection's client properties, which
/// rabbitmqctl prints as `[name, type, value]` triples.
fn connection_name(properties: &Value) -> Option<String> {
    properties.as_array()?.iter().find_map(|p| {
        let p = p.as_array()?;
        (p.first()?.as_str()? == "connection_name").then(|| p.get(2)?.as_str().map(str::to_string))?
    })
}
