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
//!
//! With several RabbitMQ nodes (`amqp_urls`, a cluster's nodes), the first
//! connection goes to the first node that accepts, and each replacement
//! tries the nodes in order starting with the one after the node that
//! failed, wrapping round, so the simulator moves to another node when its
//! node stops. Each node that cannot be reached is logged at WARN by its
//! URL without the password.
//!
//! A publisher whose message was nacked asks for a new publish channel on
//! the same connection ([`Link::renew`]), at most once per [`RENEW_EVERY`]:
//! RabbitMQ 3.10 nacks every publish of a channel to a quorum queue for
//! good when the channel's first publish to it came while the queue had no
//! leader (its node had just died), whereas a new channel is accepted once
//! a new leader is elected (see `tests/rabbitmq_cluster.rs`). The new
//! channel is a new generation; the old one is closed once the confirms
//! still on it have had time to settle.

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
/// The least time between a new publish channel and the next one that
/// [`Link::renew`] asks for.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long a channel replaced by [`Link::renew`] stays open, so that the
/// confirms still on it settle.
const OLD_CHANNEL_GRACE: Duration = Duration::from_secs(20);

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
    /// The generation whose channel a publisher wants replaced.
    renew: watch::Sender<u64>,
}

/// One open connection and what runs on it.
struct Session {
    connection: Connection,
    channel: Channel,
    consumers: Vec<JoinHandle<()>>,
}

impl Session {
    /// Opens a session on the first of `nodes` that accepts, starting with
    /// `nodes[first]` and wrapping round; returns it with that node's index.
    async fn open_any(
        nodes: &[String],
        first: usize,
        name: &str,
        on_connect: &OnConnect,
    ) -> anyhow::Result<(Session, usize)> {
        let mut last_error = None;
        for i in 0..nodes.len() {
            let node = (first + i) % nodes.len();
            match Session::open(&nodes[node], name, on_connect).await {
                Ok(session) => return Ok((session, node)),
                Err(error) => {
                    if nodes.len() > 1 {
                        warn!(node = %redact_url(&nodes[node]), %error, "Court simulator cannot use this RabbitMQ node; trying the next one.");
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no RabbitMQ node configured")))
    }

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

    /// A new confirm-mode publish channel on this session's connection.
    async fn new_channel(&self) -> lapin::Result<Channel> {
        let channel = self.connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(channel)
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
    /// Connects to the first of `nodes` that accepts (one must), runs
    /// `on_connect` on it and starts the watcher.
    pub async fn open(nodes: Vec<String>, name: &str, on_connect: OnConnect) -> anyhow::Result<Link> {
        let (first, node) = Session::open_any(&nodes, 0, name, &on_connect).await?;
        let (tx, current) = watch::channel(Some(Live {
            generation: 1,
            channel: first.channel.clone(),
        }));
        let (closed, closed_rx) = watch::channel(false);
        let (renew, renew_rx) = watch::channel(0);
        let watcher = tokio::spawn(watch_over(
            first,
            nodes,
            node,
            name.to_string(),
            on_connect,
            tx,
            Signals {
                closed: closed_rx,
                renew: renew_rx,
            },
        ));
        Ok(Link {
            current,
            watcher,
            closed,
            renew,
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

    /// Asks for a new publish channel on the same connection in place of
    /// generation `generation`'s (one whose publish was nacked); nothing
    /// happens if that generation was already replaced. Wait for it with
    /// [`Link::after`].
    pub fn renew(&self, generation: u64) {
        self.renew.send_if_modified(|wanted| {
            let newer = generation > *wanted;
            if newer {
                *wanted = generation;
            }
            newer
        });
    }

    /// Stops the watcher and closes the connection.
    pub async fn close(self) {
        let _ = self.closed.send(true);
        let _ = self.watcher.await;
    }
}

/// What the watcher listens to besides the connection's state.
struct Signals {
    closed: watch::Receiver<bool>,
    /// The generation whose channel a publisher wants replaced.
    renew: watch::Receiver<u64>,
}

/// Keeps a session open until `closed`: replaces it whenever it fails, and
/// its publish channel when a publisher asks ([`Link::renew`]).
async fn watch_over(
    mut session: Session,
    nodes: Vec<String>,
    mut node: usize,
    name: String,
    on_connect: OnConnect,
    current: watch::Sender<Option<Live>>,
    mut signals: Signals,
) {
    let mut generation = 1;
    let mut channel_opened = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = signals.closed.changed() => break,
            () = tokio::time::sleep(WATCH_EVERY) => {}
            Ok(()) = signals.renew.changed() => {}
        }
        if session.is_open() {
            if *signals.renew.borrow_and_update() == generation {
                tokio::select! {
                    _ = signals.closed.changed() => break,
                    () = tokio::time::sleep_until(channel_opened + RENEW_EVERY) => {}
                }
                if let Ok(channel) = session.new_channel().await {
                    let old = std::mem::replace(&mut session.channel, channel);
                    tokio::spawn(async move {
                        tokio::time::sleep(OLD_CHANNEL_GRACE).await;
                        let _ = old.close(200, "OK".into()).await;
                    });
                    generation += 1;
                    channel_opened = tokio::time::Instant::now();
                    info!(generation, node = %redact_url(&nodes[node]), "Court simulator publishes on a new channel after a nack.");
                    current.send_replace(Some(Live {
                        generation,
                        channel: session.channel.clone(),
                    }));
                }
            }
            continue;
        }
        warn!(
            generation,
            node = %redact_url(&nodes[node]),
            "Court simulator's RabbitMQ connection failed; connecting again."
        );
        current.send_replace(None);
        session.close().await;
        let mut backoff = Duration::from_millis(200);
        session = loop {
            match Session::open_any(&nodes, (node + 1) % nodes.len(), &name, &on_connect).await {
                Ok((s, n)) => {
                    node = n;
                    break s;
                }
                Err(error) => {
                    warn!(%error, wait_ms = backoff.as_millis() as u64, "Court simulator cannot connect yet.");
                    tokio::select! {
                        _ = signals.closed.changed() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        generation += 1;
        channel_opened = tokio::time::Instant::now();
        info!(generation, node = %redact_url(&nodes[node]), "Court simulator connected again.");
        current.send_replace(Some(Live {
            generation,
            channel: session.channel.clone(),
        }));
    }
    current.send_replace(None);
    session.close().await;
}

/// A `scheme://user:password@host…` URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => {
            let user = url[start..start + at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..start], &url[start + at..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    /// The password never reaches a log line; the user, host and vhost do.
    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact_url("amqp://guest:s3cret@10.0.0.2:5672/%2f"),
            "amqp://guest:***@10.0.0.2:5672/%2f"
        );
        assert_eq!(redact_url("amqp://10.0.0.2:5672/%2f"), "amqp://10.0.0.2:5672/%2f");
        assert_eq!(redact_url("amqp://u:p@h/a@b"), "amqp://u:***@h/a@b");
    }
}
