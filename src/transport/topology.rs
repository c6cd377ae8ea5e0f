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
/// Safe to run again: the declarations are identical each time.
pub async fn declare(channel: &Channel, courts: &[CourtConfig]) -> lapin::Result<()> {
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
    declare_queue(channel, DEAD_QUEUE).await?;
    for court in courts {
        declare_queue(channel, &court.inbound_queue()).await?;
        bind(channel, &court.inbound_queue(), INBOUND_EXCHANGE, &court.ori).await?;
        declare_queue(channel, &court.responses_queue()).await?;
        bind(channel, &court.responses_queue(), RESPONSES_EXCHANGE, &court.ori).await?;
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
