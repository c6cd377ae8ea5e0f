//! Transport: Porter's side of RabbitMQ (AMQP 0-9-1, lapin 4).
//!
//! - [`topology`]: the ICD §1 exchanges and queues, declared idempotently.
//! - [`publisher`]: publishing with `mandatory` and a window of publisher
//!   confirms in flight; a returned message is a failure.
//! - [`consumer`]: one consumer per court queue, manual acks, prefetch.
//! - [`supervisor`]: owns the connection. lapin's auto-recovery handles
//!   short outages; when it gives up, the supervisor rebuilds the
//!   connection, topology, publisher and consumers from scratch, on the
//!   next node of `[amqp] urls` when its node failed.
//!
//! # Design note: heartbeat
//! Every broker connection asks for a heartbeat of `[amqp] heartbeat_secs`
//! (at most 10 s; RabbitMQ takes the smaller of its own and the client's).
//! RabbitMQ closes a connection after two missed heartbeats, so a frozen
//! broker (stopped, swapped out, deadlocked) loses its connection within
//! about 20 s and its unacknowledged deliveries go back to their queues
//! within 30 s, for another broker or its own restart.
//!
//! # Design note: acknowledgements across reconnects
//! An inbound delivery is acknowledged only once its effect is committed to
//! the store and the statuses it caused are confirmed. If the connection
//! drops first, RabbitMQ requeues the delivery; its redelivery is recognised
//! by the store's deduplication and answered by re-sending its statuses.
//! An ack that fails because its channel is gone is therefore harmless.

pub mod consumer;
pub mod publisher;
pub mod supervisor;
pub mod topology;

pub use publisher::{Outgoing, PublishError, Publisher};

use lapin::uri::AMQPUri;

/// How long a TCP connect to one RabbitMQ node may take before the next
/// node is tried, unless the URL sets `connection_timeout` itself.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// An AMQP (or any `scheme://user:password@host…`) URL with its password
/// replaced by `***`, for logs and errors.
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

/// The URI to connect to `url` with: the heartbeat is at most
/// `heartbeat_secs` (a smaller one in the URL is kept), and a TCP connect
/// gives up after [`CONNECT_TIMEOUT_MS`] unless the URL says otherwise.
pub fn node_uri(url: &str, heartbeat_secs: u16) -> anyhow::Result<AMQPUri> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("{} is not an AMQP URL: {e}", redact_url(url)))?;
    let heartbeat = match uri.query.heartbeat {
        Some(h) if h > 0 => h.min(heartbeat_secs),
        _ => heartbeat_secs,
    };
    uri.query.heartbeat = Some(heartbeat);
    uri.query.connection_timeout.get_or_insert(CONNECT_TIMEOUT_MS);
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The password never reaches a log line; the user, host and vhost do.
    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact_url("amqp://guest:s3cret@10.0.0.2:5672/%2f"),
            "amqp://guest:***@10.0.0.2:5672/%2f"
        );
        assert_eq!(redact_url("amqp://10.0.0.2:5672/%2f"), "amqp://10.0.0.2:5672/%2f");
        assert_eq!(redact_url("amqp://u:p@h/a@b"), "amqp://u:***@h/a@b");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }

    /// The broker asks for the configured heartbeat (at most 10 s) whatever
    /// the URL says, keeps a shorter one from the URL, and bounds the TCP
    /// connect so that a dead node does not hold up the next one.
    #[test]
    fn node_uri_sets_the_heartbeat_and_connect_timeout() {
        let uri = node_uri("amqp://guest:guest@127.0.0.1:5672/%2f", 10).unwrap();
        assert_eq!(uri.query.heartbeat, Some(10));
        assert_eq!(uri.query.connection_timeout, Some(CONNECT_TIMEOUT_MS));
        assert_eq!(uri.authority.port, 5672);
        assert_eq!(uri.vhost, "/");
        let uri = node_uri("amqp://h/%2f?heartbeat=60&connection_timeout=500", 10).unwrap();
        assert_eq!(uri.query.heartbeat, Some(10));
        assert_eq!(uri.query.connection_timeout, Some(500));
        assert_eq!(
            node_uri("amqp://h/%2f?heartbeat=4", 10).unwrap().query.heartbeat,
            Some(4)
        );
        assert_eq!(
            node_uri("amqp://h/%2f?heartbeat=0", 10).unwrap().query.heartbeat,
            Some(10)
        );
        let err = node_uri("http://u:s3cret@h/", 10).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
