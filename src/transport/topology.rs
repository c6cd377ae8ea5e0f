//! The ICD §1 topology: `por.inbound` (topic), `por.responses` (direct),
//! `por.inbound.<ORI>` and `por.responses.<ORI>` quorum queues per court,
//! and `por.dead`. Queues carry `x-queue-type=quorum` and no other `x-`
//! argument; limits are policies (see `porter topology`).
//!
//! - [`definitions`]: the definitions document: topology, policies, court
//!   users and permissions (the design note on the policies is there).
//! - [`password`]: RabbitMQ's salted SHA-256 password hash.
//! - [`management`]: the management HTTP API client.
//! - [`command`]: `porter topology`, printing and `--apply`.

pub mod command;
pub mod definitions;
pub mod management;
pub mod password;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::config::CourtConfig;

pub const INBOUND_EXCHANGE: &str = "por.inbound";
pub const RESPONSES_EXCHANGE: &str = "por.responses";
pub const DEAD_QUEUE: &str = "por.dead";

/// The only queue argument Porter sets.
pub fn quorum_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args
}

/// Declares the exchanges, `por.dead`, and each court's queues and bindings.
/// Safe to run again: the declarations are identical each time. The first
/// failure ends it (`porter topology --apply`); the broker declares each
/// court on its own channel instead ([`declare_shared`], [`declare_court`]).
pub async fn declare(channel: &Channel, courts: &[CourtConfig]) -> lapin::Result<()> {
    declare_shared(channel).await?;
    for court in courts {
        declare_court(channel, court).await.map_err(|e| e.error)?;
    }
    Ok(())
}

/// Declares what every court shares: the two exchanges and `por.dead`.
pub async fn declare_shared(channel: &Channel) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            INBOUND_EXCHANGE.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            RESPONSES_EXCHANGE.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    declare_queue(channel, DEAD_QUEUE).await
}

/// A court queue RabbitMQ refused to declare or bind.
#[derive(Debug, thiserror::Error)]
#[error("declaring {queue}: {error}")]
pub struct CourtDeclareError {
    /// The queue (`por.inbound.<ORI>` or `por.responses.<ORI>`).
    pub queue: String,
    /// RabbitMQ's answer (its text is in the message, so it is not a
    /// `source` that would print it twice).
    pub error: lapin::Error,
}

/// Declares one court's queues and binds them. A refusal (for example
/// `PRECONDITION_FAILED`: the queue exists with other arguments) closes the
/// channel and names the queue.
pub async fn declare_court(channel: &Channel, court: &CourtConfig) -> Result<(), CourtDeclareError> {
    for (queue, exchange) in [
        (court.inbound_queue(), INBOUND_EXCHANGE),
        (court.responses_queue(), RESPONSES_EXCHANGE),
    ] {
        let declared = match declare_queue(channel, &queue).await {
            Ok(()) => bind(channel, &queue, exchange, &court.ori).await,
            Err(e) => Err(e),
        };
        declared.map_err(|error| CourtDeclareError { queue, error })?;
    }
    Ok(())
}

async fn declare_queue(channel: &Channel, name: &str) -> lapin::Result<()> {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(name.into(), options, quorum_arguments())
        .await
        .map(|_| ())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
