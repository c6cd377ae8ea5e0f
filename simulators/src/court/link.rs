//! The court simulator's connection to RabbitMQ, replaced whole when it
//! fails.
//!
//! # Design note
//! lapin's automatic recovery can leave a connection `Reconnecting` for good
//! after a node restart (seen in `tests/rabbitmq_restart.rs`): every publish
//! then waits on a recovery that never comes, and the court stops. So the
//! simulator does not use it. A watcher task checks the connection and the
//! publish channel every [`WATCH_EVERY`]; when either is no longer open it
//! drops them (and the status consumers), connects again with backoff, lets
//! the caller start its consumers on the new connection ([`OnConnect`]) and
//! hands out a new confirm-mode publish channel. Each channel carries a
//! generation number, so a publisher whose message failed on generation `g`
//! waits for a channel newer than `g` ([`Link::after`]) and resends, and
//! several failures of one broken channel cause one reconnection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How often the watcher looks at the connection.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts what must run on each new connection (the status consumers), on
/// a channel of its own, and returns their tasks, which are aborted when the
/// connection is replaced.
pub type OnConnect =
    Arc<dyn Fn(Channel) -> Pin<Box<dyn Future<Output = anyhow::Result<Vec<JoinHandle<()>>>> + Send>> + Send + Sync>;

/// A publish channel and the generation of the connection it is on.
#[derive(Clone)]
pub struct Live {
    /// Counts connections: 1 for the first, one more for each replacement.
    pub generation: u64,
    /// Confirm-mode channel for publishing.
    pub channel: Channel,
}

/// The simulator's connection, kept open by a watcher task.
pub struct Link {
    current: watch::Receiver<Option<Live>>,
    watcher: JoinHandle<()>,
    closed: watch::Sender<bool>,
}

/// One open connection and what runs on it.
struct Session {
    connection: Connection,
    channel: Channel,
    consumers: Vec<JoinHandle<()>>,
}

impl Session {
    async fn open(url: &str, name: &str, on_connect: &OnConnect) -> anyhow::Result<Session> {
        let connection =
            Connection::connect(url, ConnectionProperties::default().with_connection_name(name.into())).await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let consumers = on_connect(connection.create_channel().await?).await?;
        Ok(Session {
            connection,
            channel,
            consumers,
        })
    }

    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Stops the consumers and closes the connection if it still can be,
    /// without waiting long for a peer that is gone.
    async fn close(self) {
        for consumer in &self.consumers {
            consumer.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.connection.close(200, "OK".into())).await;
    }
}

impl Link {
    /// Connects to `url` (this first connection must succeed), runs
    /// `on_connect` on it and starts the watcher.
    pub async fn open(url: &str, name: &str, on_connect: OnConnect) -> anyhow::Result<Link> {
        let first = Session::open(url, name, &on_connect).await?;
        let (tx, current) = watch::channel(Some(Live {
            generation: 1,
            channel: first.channel.clone(),
        }));
        let (closed, closed_rx) = watch::channel(false);
        let watcher = tokio::spawn(watch_over(
            first,
            url.to_string(),
            name.to_string(),
            on_connect,
            tx,
            closed_rx,
        ));
        Ok(Link {
            current,
            watcher,
            closed,
        })
    }

    /// The publish channel now, if the connection is up.
    pub fn current(&self) -> Option<Live> {
        self.current.borrow().clone()
    }

    /// Waits up to `timeout` for a publish channel newer than `generation`.
    pub async fn after(&self, generation: u64, timeout: Duration) -> Option<Live> {
        let mut current = self.current.clone();
        let newer = current.wait_for(|live| live.as_ref().is_some_and(|l| l.generation > generation));
        match tokio::time::timeout(timeout, newer).await {
            Ok(Ok(live)) => live.clone(),
            _ => None,
        }
    }

    /// Stops the watcher and closes the connection.
    pub async fn close(self) {
        let _ = self.closed.send(true);
        let _ = self.watcher.await;
    }
}

/// Keeps a session open until `closed`: replaces it whenever it fails.
async fn watch_over(
    mut session: Session,
    url: String,
    name: String,
    on_connect: OnConnect,
    current: watch::Sender<Option<Live>>,
    mut closed: watch::Receiver<bool>,
) {
    let mut generation = 1;
    loop {
        tokio::select! {
            _ = closed.changed() => break,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
        if session.is_open() {
            continue;
        }
        warn!(
            generation,
            "Court simulator's RabbitMQ connection failed; connecting again."
        );
        current.send_replace(None);
        session.close().await;
        let mut backoff = Duration::from_millis(200);
        session = loop {
            match Session::open(&url, &name, &on_connect).await {
                Ok(s) => break s,
                Err(error) => {
                    warn!(%error, wait_ms = backoff.as_millis() as u64, "Court simulator cannot connect yet.");
                    tokio::select! {
                        _ = closed.changed() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        generation += 1;
        info!(generation, "Court simulator connected again.");
        current.send_replace(Some(Live {
            generation,
            channel: session.channel.clone(),
        }));
    }
    current.send_replace(None);
    session.close().await;
}
