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
        while !close.is_cancelled() {
            let started = Instant::now();
            match self.session(&stop_consuming, &close).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(error = %e, "AMQP session ended; will reconnect."),
            }
            let _ = self.connected.send(false);
            metrics::counter!("porter_amqp_reconnects_total").increment(1);
            if started.elapsed() > Duration::from_secs(60) {
                delay = base;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = close.cancelled() => break,
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
        let _ = self.connected.send(false);
    }

    async fn session(&self, stop_consuming: &CancellationToken, close: &CancellationToken) -> anyhow::Result<()> {
        let properties = ConnectionProperties::default()
            .with_connection_name("porter-broker".into())
            .enable_auto_recover();
        let uri = super::node_uri(&self.amqp.url, self.amqp.heartbeat_secs)?;
        let conn = Arc::new(Connection::connect_uri(uri, properties).await?);
        let setup = conn.create_channel().await?;
        topology::declare_shared(&setup).await?;
        let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let publisher = self.publisher.clone();
        let channel = conn.create_channel().await?;
        let (window, stop) = (self.amqp.confirm_window, close.clone());
        tasks.spawn(async move { Ok(publisher.pump(channel, window, stop).await?) });
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
        tasks.spawn(watch_health(conn.clone(), close.clone()));
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

/// Ends the session when the connection has not been connected for
/// [`RECOVERY_GRACE`]: lapin's auto-recovery can stall (seen in the
/// RabbitMQ-restart test, with a node that reset connections while it
/// started), and nothing else would notice, since consumers simply wait.
async fn watch_health(conn: Arc<Connection>, close: CancellationToken) -> anyhow::Result<()> {
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
        if since.elapsed() > RECOVERY_GRACE {
            anyhow::bail!("connection not recovered within {} s", RECOVERY_GRACE.as_secs());
        }
    }
}
