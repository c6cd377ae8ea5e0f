//! Transport: Porter's side of RabbitMQ (AMQP 0-9-1, lapin 4).
//!
//! - [`topology`]: the ICD §1 exchanges and queues, declared idempotently.
//! - [`publisher`]: publishing with `mandatory` and a window of publisher
//!   confirms in flight; a returned message is a failure.
//! - [`consumer`]: one consumer per court queue, manual acks, prefetch.
//! - [`court_queue`]: each court's queues declared and consumed on their own
//!   channel, and tried again alone when they fail.
//! - [`supervisor`]: owns the connection. lapin's auto-recovery handles
//!   short outages; when it gives up, the supervisor rebuilds the
//!   connection, topology, publisher and consumers from scratch.
//!
//! # Design note: acknowledgements across reconnects
//! An inbound delivery is acknowledged only once its effect is committed to
//! the store and the statuses it caused are confirmed. If the connection
//! drops first, RabbitMQ requeues the delivery; its redelivery is recognised
//! by the store's deduplication and answered by re-sending its statuses.
//! An ack that fails because its channel is gone is therefore harmless.

pub mod consumer;
pub mod court_queue;
pub mod publisher;
pub mod supervisor;
pub mod topology;

pub use publisher::{Outgoing, PublishError, Publisher};
