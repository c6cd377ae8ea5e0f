//! The connection supervisor.
//!
//! lapin's `enable_auto_recover()` replays the topology and consumers after
//! a short outage. When recovery fails or stalls (a health watch gives it
//! 15 s), or the publisher pump or a court's task ends with an error of the
//! connection, the supervisor closes what is left, waits (backoff doubling
//! from `reconnect_ms` to 30 s), and builds a new connection: the shared
//! topology is declared again, the pump restarts on a fresh channel, and
//! every court's task starts again. A failure of one court's queue (a
//! refused declare, a cancelled consumer) is not the session's: that
//! court's task reports it and tries again on its own ([`court_queue`]). Work that was in flight is safe: it
//! was never acknowledged, so RabbitMQ delivers it again. The abandoned
//! connection is closed by [`reap`] as soon as it can be, so that lapin
//! cannot recover it behind the supervisor's back.
//!
//! # Design note: cluster nodes
//! `[amqp] urls` lists the nodes of a RabbitMQ cluster. lapin 4 connects to
//! one URI, and its auto-recovery goes back to that same node, so moving
//! between nodes is the supervisor's job ([`Rotation`]): it connects to the
//! nodes in order, starting with the first, and when a session ends with an
//! error (the node refused the connection, or its connection failed and
//! lapin did not recover it) it tries the next node at once, then the ones
//! after it, wrapping round. Only after every node has failed once in a row
//! does it wait (the backoff above). Each failed node is logged at WARN by
//! its URL without the password. With more than one node, lapin's own
//! retries of a TCP connect to one node are cut to two quick ones (it makes
//! 16 by default), and the health watch gives lapin's recovery 5 s instead
//! of 15 s ([`NODE_RECOVERY_GRACE`]), so that the move to the next node is
//! quick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::consumer::InboundDelivery;
use super::court_queue::{self, CourtQueue};
use super::publisher::Publisher;
use super::topology;
use super::topology::management::redact;
use crate::config::{AmqpConfig, CourtConfig};

/// Keeps Porter connected to RabbitMQ.
pub struct Supervisor {
    pub amqp: AmqpConfig,
    pub courts: Arc<Vec<CourtConfig>>,
    pub publisher: Publisher,
    pub intake: mpsc::Sender<InboundDelivery>,
    /// `true` while a session is up (for `/readyz`).
    pub connected: watch::Sender<bool>,
}

impl Supervisor {
    /// Runs sessions until `close` fires. Consumers stop when
    /// `stop_consuming` fires; the connection stays up for publishing until
    /// `close`.
    pub async fn run(self, stop_consuming: CancellationToken, close: CancellationToken) {
        let base = Duration::from_millis(self.amqp.reconnect_ms.max(10));
        let mut delay = base;
        let mut rotation = Rotation::new(self.amqp.urls.len());
        while !close.is_cancelled() {
            let node = self.node_url(rotation.current());
            let started = Instant::now();
            match self.session(node, &stop_consuming, &close).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(
                    node = %redact(node),
                    error = %e,
                    "AMQP session on this node ended; will reconnect, to the next node if there is one."
                ),
            }
            let _ = self.connected.send(false);
            metrics::counter!("porter_amqp_reconnects_total").increment(1);
            if started.elapsed() > Duration::from_secs(60) {
                delay = base;
                rotation.round_succeeded();
            }
            if rotation.fail() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = close.cancelled() => break,
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
        let _ = self.connected.send(false);
    }

    /// The URL of node `node` of `[amqp] urls` (the single `url` if the
    /// list were empty).
    fn node_url(&self, node: usize) -> &str {
        self.amqp.urls.get(node).unwrap_or(&self.amqp.url)
    }

    async fn session(
        &self,
        node: &str,
        stop_consuming: &CancellationToken,
        close: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut properties = ConnectionProperties::default().with_connection_name("porter-broker".into());
        if self.amqp.urls.len() > 1 {
            // lapin retries a TCP connect (first or recovering) on the same
            // node 16 times by default; with other nodes to go to, two
            // quick tries are enough before the supervisor moves on.
            properties = properties.configure_backoff(|b| {
                b.with_max_times(2)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(1))
            });
        }
        let properties = properties.enable_auto_recover();
        let uri = super::node_uri(node, self.amqp.heartbeat_secs)?;
        let conn = Arc::new(Connection::connect_uri(uri, properties).await?);
        let setup = conn.create_channel().await?;
        topology::declare_shared(&setup).await?;
        let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let publisher = self.publisher.clone();
        let channel = conn.create_channel().await?;
        let (window, stop, renew_on) = (self.amqp.confirm_window, close.clone(), conn.clone());
        tasks.spawn(async move { Ok(publisher.pump_renewing(channel, renew_on, window, stop).await?) });
        let mut declared = Vec::new();
        if !stop_consuming.is_cancelled() {
            for court in self.courts.iter() {
                let (told, first_declare) = oneshot::channel();
                declared.push(first_declare);
                let queue = CourtQueue {
                    court: court.clone(),
                    prefetch: self.amqp.prefetch,
                    retry_base: Duration::from_millis(self.amqp.reconnect_ms.max(10)),
                    intake: self.intake.clone(),
                    first_declare: Some(told),
                };
                tasks.spawn(court_queue::keep(
                    conn.clone(),
                    queue,
                    stop_consuming.clone(),
                    close.clone(),
                ));
            }
        }
        let grace = if self.amqp.urls.len() > 1 {
            NODE_RECOVERY_GRACE
        } else {
            RECOVERY_GRACE
        };
        tasks.spawn(watch_health(conn.clone(), grace, close.clone()));
        // Connected once every court's queues were declared, or refused (which
        // holds back only that court), so that they exist when `/readyz` says so.
        let mut declared = std::pin::pin!(futures::future::join_all(declared));
        let mut announced = false;
        loop {
            tokio::select! {
                _ = &mut declared, if !announced => {
                    announced = true;
                    let _ = self.connected.send(true);
                    tracing::info!(
                        courts = self.courts.len(),
                        node = %redact(node),
                        "Connected to RabbitMQ; consuming court queues."
                    );
                }
                joined = tasks.join_next() => {
                    let Some(joined) = joined else { break };
                    if let Err(e) = joined.map_err(anyhow::Error::from).and_then(|r| r) {
                        tasks.abort_all();
                        let _ = self.connected.send(false);
                        tokio::spawn(reap(conn));
                        return Err(e);
                    }
                }
            }
        }
        let _ = conn.close(200, "porter shutting down".into()).await;
        Ok(())
    }
}

/// Which node the next session uses, and whether every node has failed
/// since the last good session (only then does the supervisor back off).
#[derive(Debug)]
struct Rotation {
    nodes: usize,
    current: usize,
    failed_in_a_row: usize,
}

impl Rotation {
    fn new(nodes: usize) -> Rotation {
        Rotation {
            nodes: nodes.max(1),
            current: 0,
            failed_in_a_row: 0,
        }
    }

    fn current(&self) -> usize {
        self.current
    }

    /// The current node failed: moves to the next one. `true` when some
    /// node has not failed yet in this round, so it is tried at once.
    fn fail(&mut self) -> bool {
        self.current = (self.current + 1) % self.nodes;
        self.failed_in_a_row += 1;
        if self.failed_in_a_row >= self.nodes {
            self.failed_in_a_row = 0;
            return false;
        }
        true
    }

    /// A session lasted: the next failure starts a new round.
    fn round_succeeded(&mut self) {
        self.failed_in_a_row = 0;
    }
}

/// How long an abandoned connection is watched so that it can be closed.
const REAP_LIMIT: Duration = Duration::from_secs(600);

/// Closes a connection the supervisor has given up on, even one lapin is
/// still recovering.
///
/// `Connection::close` only works on a connected connection. One that is
/// abandoned while lapin's auto-recovery is still trying would otherwise
/// come back on its own later and restore its consumers, which would then
/// take deliveries (up to the prefetch) that no one reads: they would stay
/// unacknowledged, and their orders stuck, for as long as the process
/// lives. So the reaper waits for the connection to connect (then closes
/// it, which returns those deliveries to their queues), to close, or to
/// fail for good.
async fn reap(conn: Arc<Connection>) {
    let started = Instant::now();
    loop {
        let status = conn.status();
        if status.closed() || status.errored() {
            return;
        }
        if status.connected() {
            let closing = conn.close(320, "porter reconnecting".into());
            if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), closing).await {
                return;
            }
        }
        if started.elapsed() > REAP_LIMIT {
            tracing::warn!("An abandoned AMQP connection neither closed nor recovered; leaving it.");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long lapin's own recovery may keep a connection down before the
/// supervisor gives up on it and builds a new one.
const RECOVERY_GRACE: Duration = Duration::from_secs(15);

/// [`RECOVERY_GRACE`] when `[amqp] urls` lists other nodes to go to. When
/// lapin's recovery cannot reach the node (it tries twice, see
/// [`Supervisor::session`]), it gives up without saying so: the connection
/// stays `Reconnecting` and nothing fails, so without a shorter grace the
/// move to the next node took 15 s whenever no publish happened to fail
/// first (seen in `tests/rabbitmq_cluster.rs`, node A SIGKILLed).
const NODE_RECOVERY_GRACE: Duration = Duration::from_secs(5);

/// Ends the session when the connection has not been connected for
/// `grace`: lapin's auto-recovery can stall (seen in the RabbitMQ-restart
/// test, with a node that reset connections while it started) or give up
/// on a dead node without closing the connection, and nothing else would
/// notice, since consumers simply wait.
async fn watch_health(conn: Arc<Connection>, grace: Duration, close: CancellationToken) -> anyhow::Result<()> {
    let mut down_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = close.cancelled() => return Ok(()),
        }
        let status = conn.status();
        if status.connected() {
            down_since = None;
            continue;
        }
        if status.closed() || status.errored() {
            anyhow::bail!("connection is closed");
        }
        let since = *down_since.get_or_insert_with(Instant::now);
        if since.elapsed() > grace {
            anyhow::bail!("connection not recovered within {} s", grace.as_secs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rotation;

    /// After a node fails the next one is tried at once, wrapping round;
    /// the supervisor waits only once every node has failed in a row, and a
    /// session that lasted starts a new round.
    #[test]
    fn rotation_moves_to_the_next_node_and_backs_off_after_a_round() {
        let mut r = Rotation::new(3);
        assert_eq!(r.current(), 0);
        assert!(r.fail());
        assert_eq!(r.current(), 1);
        assert!(r.fail());
        assert_eq!(r.current(), 2);
        assert!(!r.fail(), "all three failed: back off");
        assert_eq!(r.current(), 0);
        assert!(r.fail());
        r.round_succeeded();
        assert_eq!(r.current(), 1);
        assert!(r.fail() && r.fail());
        assert!(!r.fail());
        let mut one = Rotation::new(1);
        assert!(!one.fail());
        assert_eq!(one.current(), 0);
    }
}
