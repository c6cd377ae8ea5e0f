//! Publishes order messages the way a court CMS must (ICD §1): to `por.inbound`
//! with routing key = the court's ORI, persistent, `mandatory`, with publisher
//! confirms, and a `basic.return` counted as a failure.
//!
//! Messages go in the order [`schedule`] gives: each court's orders are
//! taken `order_window` at a time, and within such a window the first
//! messages of its orders go first, then the second ones, and so on; the
//! courts take turns. So several orders of one court are in flight together
//! and an order's MODIFY usually reaches Porter while its ISSUE is still
//! being delivered, which is what a busy court does and what Porter's
//! per-order sequencing must hold up against. The schedule depends only on
//! the orders and the window, so a seed gives the same publication order.
//!
//! Confirms are pipelined: up to [`CONFIRM_WINDOW`] messages are in flight at
//! once, their `PublisherConfirm`s held in a `FuturesUnordered`. The messages
//! of one order still go strictly in sequence: an order's next message is
//! published only when the previous one was confirmed (the schedule waits
//! for it), and when one fails the rest of that order is not sent (a court
//! would not send a MODIFY for an ISSUE the broker never took).
//!
//! A publish that fails because the connection dropped is sent again, with
//! the same bytes and properties, once the connection has recovered: ICD §5
//! deduplicates a byte-identical resend, whereas a fresh `SentDateTime` would
//! make it a `CONFLICT_REJECTED`. On a [`Link`] the connection is replaced
//! whole when it fails, and the message goes again on the new channel. A
//! confirm that does not come within [`CONFIRM_TIMEOUT`] counts as a failed
//! attempt and is resent the same way: around a node restart a confirm can
//! stay unsettled for good, and a court that waited on it would stop
//! publishing. A nacked message is sent again too (up to [`MAX_ATTEMPTS`]);
//! on a [`Link`] it goes on a new channel ([`Link::renew`]), since RabbitMQ
//! 3.10 can keep nacking one channel's publishes to a quorum queue whose
//! leader died.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::time::MissedTickBehavior;
use tracing::warn;

use super::config::CourtFormat;
use super::fixed::to_fixed;
use super::link::Link;
use super::orders::{GeneratedMessage, now_pacific};
use super::xml::to_xml;

/// The exchange courts publish to (ICD §1).
pub const INBOUND_EXCHANGE: &str = "por.inbound";
/// The AMQP `app_id` of the simulator's messages.
pub const APP_ID: &str = "porter-sim-court";
/// Most publisher confirms awaited at once.
pub const CONFIRM_WINDOW: usize = 64;
/// How long shutdown waits for the confirms of messages already sent.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);
/// Attempts per message when the connection fails (not for returns).
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a published message may wait for its confirm before it is sent
/// again (RabbitMQ confirms a persistent message in milliseconds).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a publish waits for the connection to come back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a nacked message waits for a new channel of its link before it
/// is sent again on whichever channel is current.
const RENEW_TIMEOUT: Duration = Duration::from_secs(10);

/// A confirm-mode channel to `por.inbound`.
#[derive(Clone)]
pub struct Publisher {
    source: Source,
}

/// Where the publish channel comes from.
#[derive(Clone)]
enum Source {
    /// One channel, recovered by lapin or not at all.
    Fixed(Channel),
    /// The current channel of a [`Link`], which replaces failed connections.
    Link(Arc<Link>),
}

/// Why a message could not be handed to RabbitMQ.
enum SendError {
    Lapin(lapin::Error),
    /// The link has no open connection at the moment.
    Disconnected,
}

/// What happened to one message, as [`publish_all`] reports it.
#[derive(Debug)]
pub enum PublishEvent<'a> {
    /// About to be published for the first time.
    Publishing(&'a GeneratedMessage),
    /// RabbitMQ confirmed it and routed it to a queue.
    Confirmed(&'a GeneratedMessage),
    /// It could not be published; the reason says why.
    Failed(&'a GeneratedMessage, &'a str),
}

/// What [`publish_all`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishSummary {
    /// Message ids RabbitMQ confirmed.
    pub confirmed: Vec<String>,
    /// Message ids that failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Messages never published: after a failure of their order, or shutdown.
    pub not_sent: usize,
    /// Whether shutdown stopped publishing early.
    pub interrupted: bool,
}

/// The messages still to publish, and in which order.
struct Queue {
    /// Each order's unpublished messages, in sequence order.
    pending: Vec<VecDeque<GeneratedMessage>>,
    /// Orders with a message awaiting its confirm: their next message waits.
    busy: Vec<bool>,
    /// The orders whose next message goes next, in publication order
    /// ([`schedule`]).
    slots: VecDeque<usize>,
}

impl Queue {
    fn new(orders: Vec<Vec<GeneratedMessage>>, window: usize) -> Queue {
        let slots = schedule(&orders, window).into();
        let busy = vec![false; orders.len()];
        let pending = orders.into_iter().map(VecDeque::from).collect();
        Queue { pending, busy, slots }
    }

    /// The order whose message is next, skipping orders with nothing left
    /// (the rest of an order is dropped when one of its messages fails).
    fn next(&mut self) -> Option<usize> {
        while let Some(&order) = self.slots.front() {
            if !self.pending[order].is_empty() {
                return Some(order);
            }
            self.slots.pop_front();
        }
        None
    }

    /// Messages never published.
    fn left(&self) -> usize {
        self.pending.iter().map(VecDeque::len).sum()
    }
}

/// The publication order of `orders` with `window` orders of each court in
/// flight together: one entry per message, the index of its order in
/// `orders` (an order's k-th entry stands for its k-th message).
///
/// Each court's orders, in their order in `orders`, are cut into windows of
/// `window` (`0` is taken as 1). Window by window, round by round, court by
/// court: round r of window w takes the r-th message of each of the court's
/// orders in its window w. With `window = 2` and one court: ISSUE 1, ISSUE 2,
/// MODIFY 1, MODIFY 2, …, then ISSUE 3, ISSUE 4, ….
pub fn schedule(orders: &[Vec<GeneratedMessage>], window: usize) -> Vec<usize> {
    let window = window.max(1);
    // Each court's order indices; courts in order of first appearance.
    let mut courts: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let Some(first) = order.first() else { continue };
        match courts.iter_mut().find(|court| court.0 == first.court_ori) {
            Some(court) => court.1.push(i),
            None => courts.push((first.court_ori.as_str(), vec![i])),
        }
    }
    let windows = courts.iter().map(|(_, o)| o.len().div_ceil(window)).max().unwrap_or(0);
    let mut slots = Vec::with_capacity(orders.iter().map(Vec::len).sum());
    for w in 0..windows {
        let in_window =
            |indices: &[usize]| -> Vec<usize> { indices.iter().skip(w * window).take(window).copied().collect() };
        let windowed: Vec<Vec<usize>> = courts.iter().map(|(_, o)| in_window(o)).collect();
        let rounds = windowed.iter().flatten().map(|&i| orders[i].len()).max().unwrap_or(0);
        for round in 0..rounds {
            for &i in windowed.iter().flatten() {
                if round < orders[i].len() {
                    slots.push(i);
                }
            }
        }
    }
    slots
}

/// The body and properties of one message, fixed at its first attempt.
struct Prepared {
    order: usize,
    message: GeneratedMessage,
    body: Arc<Vec<u8>>,
    properties: BasicProperties,
    attempt: u32,
    /// The generation of the link's channel it was last sent on.
    generation: u64,
}

/// How a published message's confirm settled.
enum Settled {
    Confirmed(Confirmation),
    Failed(lapin::Error),
    /// No confirm within [`CONFIRM_TIMEOUT`].
    TimedOut,
}

type InFlight = Pin<Box<dyn Future<Output = (Prepared, Settled)> + Send>>;

impl Publisher {
    /// Opens a channel on `connection` and puts it in confirm mode.
    pub async fn open(connection: &Connection) -> anyhow::Result<Publisher> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Publisher {
            source: Source::Fixed(channel),
        })
    }

    /// Publishes on `link`'s current channel, whichever connection it is on.
    pub fn on_link(link: Arc<Link>) -> Publisher {
        Publisher {
            source: Source::Link(link),
        }
    }

    /// Sends one prepared message and returns its confirm future.
    async fn send(&self, mut p: Prepared) -> Result<InFlight, (Prepared, SendError)> {
        let channel = match &self.source {
            Source::Fixed(channel) => channel.clone(),
            Source::Link(link) => match link.current() {
                Some(live) => {
                    p.generation = live.generation;
                    live.channel
                }
                None => return Err((p, SendError::Disconnected)),
            },
        };
        let sent = channel
            .basic_publish(
                INBOUND_EXCHANGE.into(),
                p.message.court_ori.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &p.body,
                p.properties.clone(),
            )
            .await;
        match sent {
            Ok(confirm) => Ok(Box::pin(tokio::time::timeout(CONFIRM_TIMEOUT, confirm).map(
                move |result| {
                    let settled = match result {
                        Ok(Ok(confirmation)) => Settled::Confirmed(confirmation),
                        Ok(Err(error)) => Settled::Failed(error),
                        Err(_) => Settled::TimedOut,
                    };
                    (p, settled)
                },
            ))),
            Err(error) => Err((p, SendError::Lapin(error))),
        }
    }
}

/// The wire body of a message in its court's format.
pub fn body(message: &GeneratedMessage) -> Vec<u8> {
    match message.format {
        CourtFormat::Xml => to_xml(message),
        CourtFormat::Fixed => to_fixed(message),
    }
}

/// The ICD §1 properties of a message.
pub fn properties(message: &GeneratedMessage) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(message.message_id.as_str().into())
        .with_content_type(message.format.content_type().into())
        .with_delivery_mode(2)
        .with_timestamp(message.sent_at.timestamp().max(0) as u64)
        .with_app_id(APP_ID.into())
}

/// Publishes `orders` (each the messages of one order, in sequence order) in
/// the order [`schedule`] gives for `window`, at `rate_per_sec` messages per
/// second (`0`: unthrottled), with at most [`CONFIRM_WINDOW`] confirms in
/// flight and each message only once its order's previous one was
/// confirmed, until all are done or `shutdown` completes. Each message's
/// `sent_at` is set when it is first published. `on_event` hears about every
/// message.
pub async fn publish_all<S>(
    publisher: &Publisher,
    orders: Vec<Vec<GeneratedMessage>>,
    window: usize,
    rate_per_sec: f64,
    mut on_event: impl FnMut(PublishEvent<'_>),
    mut shutdown: Pin<&mut S>,
) -> PublishSummary
where
    S: Future<Output = ()> + ?Sized,
{
    let mut summary = PublishSummary::default();
    let mut queue = Queue::new(orders, window);
    let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
    let mut ticker = (rate_per_sec > 0.0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / rate_per_sec));
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });

    loop {
        let next = queue.next();
        if next.is_none() && in_flight.is_empty() {
            break;
        }
        // A busy order has its message in flight, so waiting for it ends.
        let can_send = next.is_some_and(|order| !queue.busy[order]) && in_flight.len() < CONFIRM_WINDOW;
        tokio::select! {
            biased;
            () = &mut shutdown => {
                summary.interrupted = true;
                break;
            }
            Some((mut p, settled)) = in_flight.next(), if !in_flight.is_empty() => {
                let confirmation = match settled {
                    Settled::Confirmed(confirmation) => confirmation,
                    Settled::Failed(error) => {
                        match recover(publisher, p, SendError::Lapin(error)).await {
                            Ok(p) => retry(publisher, p, &mut in_flight, &mut summary, &mut queue, &mut on_event).await,
                            Err((p, reason)) => fail(p, &reason, &mut summary, &mut queue, &mut on_event),
                        }
                        continue;
                    }
                    Settled::TimedOut if p.attempt < MAX_ATTEMPTS => {
                        warn!(court = %p.message.court_ori, attempt = p.attempt, "No confirm in time; sending again.");
                        p.attempt += 1;
                        retry(publisher, p, &mut in_flight, &mut summary, &mut queue, &mut on_event).await;
                        continue;
                    }
                    Settled::TimedOut => {
                        let reason = format!("no confirm within {} s, {} attempts", CONFIRM_TIMEOUT.as_secs(), p.attempt);
                        fail(p, &reason, &mut summary, &mut queue, &mut on_event);
                        continue;
                    }
                };
                match failure_of(&confirmation, &p.message.court_ori) {
                    None => {
                        on_event(PublishEvent::Confirmed(&p.message));
                        summary.confirmed.push(p.message.message_id.clone());
                        queue.busy[p.order] = false;
                    }
                    Some(_) if confirmation.is_nack() && p.attempt < MAX_ATTEMPTS => {
                        warn!(court = %p.message.court_ori, attempt = p.attempt, "Publish nacked; sending again.");
                        let mut p = p;
                        if let Source::Link(link) = &publisher.source {
                            link.renew(p.generation);
                            let _ = link.after(p.generation, RENEW_TIMEOUT).await;
                        }
                        p.attempt += 1;
                        retry(publisher, p, &mut in_flight, &mut summary, &mut queue, &mut on_event).await;
                    }
                    Some(reason) => fail(p, &reason, &mut summary, &mut queue, &mut on_event),
                }
            }
            _ = tick(&mut ticker), if can_send => {
                let Some(order) = queue.slots.pop_front() else { continue };
                let Some(mut message) = queue.pending[order].pop_front() else { continue };
                queue.busy[order] = true;
                message.sent_at = now_pacific();
                on_event(PublishEvent::Publishing(&message));
                let prepared = Prepared {
                    order,
                    body: Arc::new(body(&message)),
                    properties: properties(&message),
                    message,
                    attempt: 1,
                    generation: 0,
                };
                retry(publisher, prepared, &mut in_flight, &mut summary, &mut queue, &mut on_event).await;
            }
        }
    }
    if summary.interrupted {
        // Settle what is already on the wire, briefly, without retrying.
        let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
            while let Some((p, settled)) = in_flight.next().await {
                let failure = match &settled {
                    Settled::Confirmed(confirmation) => failure_of(confirmation, &p.message.court_ori),
                    Settled::Failed(error) => Some(error.to_string()),
                    Settled::TimedOut => Some("no confirm in time".into()),
                };
                match failure {
                    None => {
                        on_event(PublishEvent::Confirmed(&p.message));
                        summary.confirmed.push(p.message.message_id.clone());
                    }
                    Some(reason) => fail(p, &reason, &mut summary, &mut queue, &mut on_event),
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                unconfirmed = in_flight.len(),
                "Stopped before every publish was confirmed."
            );
        }
    }
    summary.not_sent += queue.left();
    summary.not_sent += in_flight.len();
    summary
}

/// Why a confirmation is a failure, if it is one. The returned message's body
/// is never part of the reason: it holds personal data.
fn failure_of(confirmation: &Confirmation, court: &str) -> Option<String> {
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => None,
        Confirmation::Ack(Some(returned)) => Some(format!(
            "returned by RabbitMQ: {} {} (no queue bound for routing key {court})",
            returned.reply_code, returned.reply_text
        )),
        Confirmation::Nack(_) => Some("nacked by RabbitMQ".into()),
    }
}

/// Waits for the ticker, or not at all when unthrottled.
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    if let Some(t) = ticker {
        t.tick().await;
    }
}

/// Publishes `p` (again), waiting for recovery when the channel is down.
async fn retry(
    publisher: &Publisher,
    mut p: Prepared,
    in_flight: &mut FuturesUnordered<InFlight>,
    summary: &mut PublishSummary,
    queue: &mut Queue,
    on_event: &mut impl FnMut(PublishEvent<'_>),
) {
    loop {
        match publisher.send(p).await {
            Ok(confirm) => {
                in_flight.push(confirm);
                return;
            }
            Err((failed, error)) => match recover(publisher, failed, error).await {
                Ok(again) => p = again,
                Err((failed, reason)) => {
                    fail(failed, &reason, summary, queue, on_event);
                    return;
                }
            },
        }
    }
}

/// After a channel error: the message for another attempt once the channel
/// has recovered (or, on a link, been replaced), or the reason to give up.
async fn recover(publisher: &Publisher, mut p: Prepared, error: SendError) -> Result<Prepared, (Prepared, String)> {
    let reason = match &error {
        SendError::Lapin(error) => error.to_string(),
        SendError::Disconnected => "not connected".to_string(),
    };
    if p.attempt >= MAX_ATTEMPTS {
        let reason = format!("gave up after {} attempts: {reason}", p.attempt);
        return Err((p, reason));
    }
    warn!(court = %p.message.court_ori, attempt = p.attempt, error = %reason, "Publish failed; waiting for the connection.");
    let recovered = match (&publisher.source, error) {
        (Source::Link(link), _) => match link.after(p.generation, RECOVERY_TIMEOUT).await {
            Some(_) => Ok(()),
            None => Err(format!("no connection within {} s", RECOVERY_TIMEOUT.as_secs())),
        },
        (Source::Fixed(channel), SendError::Lapin(error)) => {
            match tokio::time::timeout(RECOVERY_TIMEOUT, channel.wait_for_recovery(error)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(format!("connection lost: {error}")),
                Err(_) => Err(format!(
                    "the connection did not recover within {} s",
                    RECOVERY_TIMEOUT.as_secs()
                )),
            }
        }
        (Source::Fixed(_), SendError::Disconnected) => Err(reason),
    };
    match recovered {
        Ok(()) => {
            p.attempt += 1;
            Ok(p)
        }
        Err(reason) => Err((p, reason)),
    }
}

/// Reports a failed message and drops the rest of its order.
fn fail(
    p: Prepared,
    reason: &str,
    summary: &mut PublishSummary,
    queue: &mut Queue,
    on_event: &mut impl FnMut(PublishEvent<'_>),
) {
    warn!(court = %p.message.court_ori, message_id = %p.message.message_id, reason, "Message not published.");
    on_event(PublishEvent::Failed(&p.message, reason));
    summary.failed.push((p.message.message_id.clone(), reason.to_string()));
    let rest = std::mem::take(&mut queue.pending[p.order]);
    queue.busy[p.order] = false;
    summary.not_sent += rest.len();
}
