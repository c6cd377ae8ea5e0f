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
//!   connection, topology, publisher and consumers from scratch, on the
//!   next node of `[amqp] urls` when its node failed.
//!
//! # Design note: heartbeat
//! The broker's connection asks for an AMQP heartbeat of `[amqp]
//! heartbeat_secs` (at most 10 s) through the URI's `heartbeat` query
//! parameter ([`node_uri`]), which lapin 4 reads when it tunes the
//! connection and lowers to the server's value when that is smaller.
//! RabbitMQ closes a connection after two missed heartbeats, so a frozen
//! broker (stopped, swapped out, deadlocked) loses its connection within
//! about 20 s and its unacknowledged deliveries go back to their queues
//! within 30 s, for another broker or its own restart. Without it RabbitMQ's
//! default (60 s) applies.
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

use lapin::uri::AMQPUri;

/// The URI the broker connects to `url` with: its `heartbeat` is at most
/// `heartbeat_secs` (a shorter one already in the URL is kept; `0`, which
/// would turn heartbeats off, is replaced). The error names the URL without
/// its credentials.
pub fn node_uri(url: &str, heartbeat_secs: u16) -> anyhow::Result<AMQPUri> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("{} is not an AMQP URL: {e}", topology::management::redact(url)))?;
    uri.query.heartbeat = Some(match uri.query.heartbeat {
        Some(h) if h > 0 => h.min(heartbeat_secs),
        _ => heartbeat_secs,
    });
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broker asks for the configured heartbeat whatever the URL says,
    /// keeps a shorter one from the URL, never turns it off, and leaves the
    /// rest of the URL as it was.
    #[test]
    fn node_uri_sets_the_heartbeat() {
        let uri = node_uri("amqp://guest:guest@127.0.0.1:5672/%2f", 10).unwrap();
        assert_eq!(uri.query.heartbeat, Some(10));
        assert_eq!(uri.authority.port, 5672);
        assert_eq!(uri.authority.userinfo.username, "guest");
        assert_eq!(uri.vhost, "/");
        let uri = node_uri("amqp://h/%2f?heartbeat=60&frame_max=8192", 10).unwrap();
        assert_eq!(uri.query.heartbeat, Some(10));
        assert_eq!(uri.query.frame_max, Some(8192));
        assert_eq!(
            node_uri("amqp://h/%2f?heartbeat=4", 10).unwrap().query.heartbeat,
            Some(4)
        );
        assert_eq!(
            node_uri("amqp://h/%2f?heartbeat=0", 7).unwrap().query.heartbeat,
            Some(7)
        );
        let err = node_uri("http://u:s3cret@h/", 10).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
