//! One consumer per court queue, with manual acks and a prefetch window.
//! Deliveries are handed to the intake with the court they came from; the
//! intake acknowledges them once their effect is durable.

use futures::StreamExt;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A delivery from `por.inbound.<court_ori>`.
#[derive(Debug)]
pub struct InboundDelivery {
    pub court_ori: String,
    pub delivery: Delivery,
}

/// Consumes `queue` until `stop` fires, the channel fails beyond recovery
/// or RabbitMQ cancels the consumer. Returns `Ok` only when stopped.
///
/// On `stop` the consumer is cancelled but its channel stays open until
/// `close`, so that deliveries already handed to the intake can still be
/// acknowledged on it (closing the channel would requeue them).
pub async fn consume(
    channel: Channel,
    court_ori: String,
    queue: String,
    prefetch: u16,
    intake: mpsc::Sender<InboundDelivery>,
    stop: CancellationToken,
    close: CancellationToken,
) -> anyhow::Result<()> {
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let tag = format!("porter-{court_ori}");
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    loop {
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = stop.cancelled() => {
                if let Err(e) = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await {
                    tracing::warn!(queue = %queue, error = %e, "Could not cancel the consumer; unacknowledged deliveries will be redelivered.");
                }
                close.cancelled().await;
                return Ok(());
            }
        };
        match next {
            Some(Ok(delivery)) => {
                let item = InboundDelivery {
                    court_ori: court_ori.clone(),
                    delivery,
                };
                if intake.send(item).await.is_err() {
                    return Ok(());
                }
            }
            Some(Err(e)) => channel.wait_for_recovery(e).await?,
            None => anyhow::bail!("the consumer of {queue} was cancelled by RabbitMQ (was the queue deleted?)"),
        }
    }
}
