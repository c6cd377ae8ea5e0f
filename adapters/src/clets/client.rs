//! A client for one CLETS endpoint: sends a request frame and returns the reply frame, parsed.
//!
//! Design:
//! - The client keeps a small pool of `connections` TCP connections. Each is a `tokio::sync::Mutex` around
//!   an `Option<TcpStream>`: `None` until first use, and again after any failure, so the next request on
//!   that slot reconnects. Holding the lock for the whole exchange gives one in-flight request per
//!   connection, which is what keeps replies in request order.
//! - A request takes the first idle slot, scanning from a round-robin start. When every slot is busy, it
//!   waits for the round-robin slot.
//! - `request_timeout` bounds connecting (when needed), writing the request and reading the reply. Waiting
//!   for a busy slot is not counted: it is bounded by the other request's own timeout.
//! - Before reuse, an idle connection is probed without waiting; one the endpoint has closed (it restarted,
//!   or dropped idle connections) is replaced rather than failing the request.
//! - Every failure drops the slot's connection, because after a timeout or an unexpected reply the stream
//!   may hold a late answer that would be taken for the next request's.
//! - The reply must echo the request's MCN (the third `.`-separated field of the request); a reply for
//!   another MCN is a [`ProtocolError::McnMismatch`].
//!
//! The client does not retry: [`CletsError::is_transient`] tells the caller whether a retry can help, and
//! a `BSY` reply is returned as a reply, for the caller to retry too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};
use tracing::debug;

use super::frame::{self, FrameError};
use super::reply::{CletsReply, ReplyError};

/// Where and how to reach a CLETS endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CletsClientConfig {
    /// `host:port` of the CLETS endpoint, such as `127.0.0.1:7001`.
    pub addr: String,
    /// The longest one request may take: connecting when needed, writing the request, reading the reply.
    pub request_timeout: Duration,
    /// How many connections to keep open. Each carries one request at a time. Zero is taken as one.
    pub connections: usize,
}

impl CletsClientConfig {
    /// Default per-request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of connections.
    pub const DEFAULT_CONNECTIONS: usize = 2;

    /// A configuration for `addr` with the default timeout and connection count.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            connections: Self::DEFAULT_CONNECTIONS,
        }
    }
}

impl Default for CletsClientConfig {
    /// The ICD's default CLETS address (`127.0.0.1:7001`, the simulator's).
    fn default() -> Self {
        Self::new("127.0.0.1:7001")
    }
}

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum CletsError {
    /// The connection failed, timed out or closed. Transient: the same request may be sent again.
    #[error("CLETS transport failed: {0}")]
    Transport(#[from] TransportError),
    /// The endpoint answered something that breaks ICD §6.
    #[error("CLETS protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The request cannot be sent at all (no MCN, too long, not ASCII); nothing was sent.
    #[error("CLETS request refused before sending: {0}")]
    InvalidRequest(String),
}

impl CletsError {
    /// Whether sending the same request again may succeed. Only transport failures are transient.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(_))
    }
}

/// A failure of the connection itself.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The endpoint address.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Connecting, sending and answering took longer than the request timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The endpoint closed the connection before replying.
    #[error("connection closed before the reply")]
    Closed,
    /// Reading or writing failed, or the connection closed inside the reply frame.
    #[error(transparent)]
    Frame(FrameError),
}

/// A reply that breaks the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The reply frame is over 8 KiB or not ASCII.
    #[error("reply frame unusable: {0}")]
    Frame(FrameError),
    /// The reply frame is not an `ACK`, `REJ` or `BSY` reply.
    #[error("reply unparseable: {0}")]
    Reply(#[from] ReplyError),
    /// The reply answers another request.
    #[error("reply MCN {got:?} does not match request MCN {expected:?}")]
    McnMismatch {
        /// The request's MCN.
        expected: String,
        /// The reply's MCN.
        got: String,
    },
}

impl From<FrameError> for CletsError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLong { .. } | FrameError::NotAscii { .. } => ProtocolError::Frame(e).into(),
            FrameError::Truncated | FrameError::Io(_) => TransportError::Frame(e).into(),
        }
    }
}

/// A pool of connections to one CLETS endpoint. Share it (for example in an `Arc`) between tasks.
#[derive(Debug)]
pub struct CletsClient {
    /// The endpoint and limits.
    config: CletsClientConfig,
    /// One slot per connection; `None` means "connect on next use".
    slots: Vec<Mutex<Option<TcpStream>>>,
    /// Round-robin start for choosing a slot.
    next: AtomicUsize,
}

impl CletsClient {
    /// A client for the CLETS endpoint at `addr` (`host:port`), keeping up to `connections` connections
    /// (zero is taken as one), each request bounded by `request_timeout`. Connections open on first use.
    pub fn new(addr: impl Into<String>, connections: usize, request_timeout: Duration) -> Self {
        Self::from_config(CletsClientConfig {
            addr: addr.into(),
            request_timeout,
            connections,
        })
    }

    /// A client for the configured endpoint. Connections open on first use.
    pub fn from_config(config: CletsClientConfig) -> Self {
        let slots = (0..config.connections.max(1)).map(|_| Mutex::new(None)).collect();
        Self {
            config,
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &CletsClientConfig {
        &self.config
    }

    /// Sends one request frame and returns the endpoint's reply, which echoes the request's MCN.
    ///
    /// `REJ` and `BSY` replies are `Ok`: they are answers. Errors drop the connection used.
    pub async fn send(&self, request: &[u8]) -> Result<CletsReply, CletsError> {
        let mcn = request_mcn(request)?;
        frame::check_payload(request).map_err(|e| CletsError::InvalidRequest(e.to_string()))?;
        let mut slot = self.acquire().await;
        let timeout = self.config.request_timeout;
        let result = match tokio::time::timeout(timeout, self.exchange(&mut slot, request)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(TransportError::Timeout(timeout).into()),
        }
        .and_then(|reply| {
            if reply.mcn() == mcn {
                Ok(reply)
            } else {
                Err(ProtocolError::McnMismatch {
                    expected: mcn.to_owned(),
                    got: reply.mcn().to_owned(),
                }
                .into())
            }
        });
        if let Err(e) = &result
            && slot.take().is_some()
        {
            debug!(addr = %self.config.addr, error = %e, "Dropped CLETS connection after a failed request.");
        }
        result
    }

    /// Locks the first idle slot from the round-robin start, or waits for the round-robin slot.
    async fn acquire(&self) -> MutexGuard<'_, Option<TcpStream>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(guard) = self.slots[(start + i) % n].try_lock() {
                return guard;
            }
        }
        self.slots[start].lock().await
    }

    /// Connects the slot if needed, writes the request and reads one reply.
    async fn exchange(&self, slot: &mut Option<TcpStream>, request: &[u8]) -> Result<CletsReply, CletsError> {
        if slot.as_ref().is_some_and(|stream| !is_idle_and_open(stream)) {
            debug!(addr = %self.config.addr, "Replacing a CLETS connection closed while idle.");
            *slot = None;
        }
        let stream = match slot {
            Some(stream) => stream,
            None => {
                let addr = &self.config.addr;
                let stream = TcpStream::connect(addr)
                    .await
                    .map_err(|source| TransportError::Connect {
                        addr: addr.clone(),
                        source,
                    })?;
                // Frames are small and each waits for its answer: Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                debug!(addr = %addr, "Connected to CLETS.");
                slot.insert(stream)
            }
        };
        frame::write_frame(stream, request).await?;
        let payload = frame::read_frame(stream).await?.ok_or(TransportError::Closed)?;
        Ok(CletsReply::parse(&payload).map_err(ProtocolError::Reply)?)
    }
}

/// Whether a pooled connection can carry a request: nothing to read yet, and not closed by the peer.
///
/// Without this check, the first request after the endpoint restarted or dropped idle connections would
/// fail on every stale connection of the pool. The probe never waits: it only sees what the reactor has
/// already reported, and `WouldBlock` is the healthy answer.
fn is_idle_and_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    match stream.try_read(&mut probe) {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        // Ok(0) is the peer's close; unsolicited bytes would be taken for the next reply.
        Ok(_) => false,
    }
}

/// The MCN of a request: its third `.`-terminated field.
fn request_mcn(request: &[u8]) -> Result<&str, CletsError> {
    let mut fields = request.splitn(4, |b| *b == b'.');
    let (_mke, _ori, mcn, rest) = (fields.next(), fields.next(), fields.next(), fields.next());
    match (mcn, rest) {
        (Some(mcn), Some(_)) if !mcn.is_empty() => {
            std::str::from_utf8(mcn).map_err(|_| CletsError::InvalidRequest("the request's MCN is not ASCII".into()))
        }
        _ => Err(CletsError::InvalidRequest(
            "the request has no MKE.ORI.MCN. header".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::net::TcpListener;

    use super::*;

    const ORI: &str = "CA034025J";

    fn request(mcn: &str) -> Vec<u8> {
        format!("EPO.{ORI}.{mcn}.PNO/24DV01234.").into_bytes()
    }

    fn ack_for(mcn: &str) -> String {
        format!("ACK.EPO.{ORI}.{mcn}.NIC/H000000001.FCN/0340000000001")
    }

    /// A CLETS endpoint that answers each request with `answer(mcn)`; `None` closes the connection.
    /// Returns its address and a count of accepted connections.
    async fn endpoint(answer: fn(&str) -> Option<String>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    while let Ok(Some(req)) = frame::read_frame(&mut socket).await {
                        let text = String::from_utf8(req).unwrap();
                        let mcn = text.split('.').nth(2).unwrap().to_owned();
                        match answer(&mcn) {
                            Some(reply) => frame::write_frame(&mut socket, reply.as_bytes()).await.unwrap(),
                            None => return,
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn client(addr: &str, connections: usize) -> CletsClient {
        CletsClient::new(addr, connections, Duration::from_secs(5))
    }

    /// Replies come back parsed, and one connection carries consecutive requests.
    #[tokio::test]
    async fn consecutive_requests_reuse_one_connection() {
        let (addr, accepted) = endpoint(|mcn| Some(ack_for(mcn))).await;
        let client = client(&addr, 1);
        for seq in 1..=3 {
            let mcn = format!("000{seq}0ABCDEFGHIJKLMNO");
            let reply = client.send(&request(&mcn)).await.unwrap();
            assert_eq!(reply, CletsReply::parse_str(&ack_for(&mcn)).unwrap());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// With a pool of two, consecutive requests alternate and open exactly two connections.
    #[tokio::test]
    async fn pool_opens_at_most_its_size() {
        let (addr, accepted) = endpoint(|mcn| Some(ack_for(mcn))).await;
        let client = client(&addr, 2);
        for _ in 0..5 {
            client.send(&request("00010ABCDEFGHIJKLMNO")).await.unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// Many concurrent requests over a small pool each get their own reply.
    #[tokio::test]
    async fn concurrent_requests_get_their_own_replies() {
        let (addr, accepted) = endpoint(|mcn| Some(ack_for(mcn))).await;
        let client = Arc::new(client(&addr, 2));
        let mut tasks = tokio::task::JoinSet::new();
        for seq in 0..20 {
            let client = client.clone();
            tasks.spawn(async move {
                let mcn = format!("{seq:04}0ABCDEFGHIJKLMNO");
                let reply = client.send(&request(&mcn)).await.unwrap();
                assert_eq!(reply.mcn(), mcn);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert!(accepted.load(Ordering::SeqCst) <= 2);
    }

    /// `REJ` and `BSY` are replies, not errors.
    #[tokio::test]
    async fn rejections_and_busy_are_replies() {
        let (addr, _) = endpoint(|mcn| {
            Some(if mcn.starts_with("0001") {
                format!("REJ.EPO.{ORI}.{mcn}.ERR/E03.MSG/INVALID VALUE")
            } else {
                format!("BSY.EPO.{ORI}.{mcn}.MSG/BUSY")
            })
        })
        .await;
        let client = client(&addr, 1);
        assert!(matches!(
            client.send(&request("00010ABCDEFGHIJKLMNO")).await,
            Ok(CletsReply::Rej { .. })
        ));
        assert!(matches!(
            client.send(&request("00020ABCDEFGHIJKLMNO")).await,
            Ok(CletsReply::Bsy { .. })
        ));
    }

    /// A reply for another MCN is a protocol error, and the connection is replaced.
    #[tokio::test]
    async fn reply_for_another_mcn_is_protocol_error() {
        let (addr, accepted) = endpoint(|mcn| {
            Some(if mcn.starts_with("9999") {
                ack_for("00010ABCDEFGHIJKLMNO")
            } else {
                ack_for(mcn)
            })
        })
        .await;
        let client = client(&addr, 1);
        let err = client.send(&request("99990ABCDEFGHIJKLMNO")).await.unwrap_err();
        assert!(
            matches!(err, CletsError::Protocol(ProtocolError::McnMismatch { .. })),
            "{err:?}"
        );
        assert!(!err.is_transient());
        client.send(&request("00020ABCDEFGHIJKLMNO")).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// A connection the endpoint closed while idle is replaced before use, without an error.
    #[tokio::test]
    async fn connection_closed_while_idle_is_replaced() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                // Answer one request per connection, then hang up.
                let (mut socket, _) = listener.accept().await.unwrap();
                let req = frame::read_frame(&mut socket).await.unwrap().unwrap();
                let mcn = String::from_utf8(req).unwrap().split('.').nth(2).unwrap().to_owned();
                frame::write_frame(&mut socket, ack_for(&mcn).as_bytes()).await.unwrap();
            }
        });
        let client = client(&addr, 1);
        for seq in 1..=3 {
            client
                .send(&request(&format!("000{seq}0ABCDEFGHIJKLMNO")))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An unparseable reply is a protocol error.
    #[tokio::test]
    async fn garbage_reply_is_protocol_error() {
        let (addr, _) = endpoint(|_| Some("HELLO".into())).await;
        let err = client(&addr, 1)
            .send(&request("00010ABCDEFGHIJKLMNO"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CletsError::Protocol(ProtocolError::Reply(ReplyError::UnknownKind(_)))
            ),
            "{err:?}"
        );
    }

    /// A connection closed without a reply is a transient transport error; the next request reconnects.
    #[tokio::test]
    async fn close_without_reply_is_transient_and_reconnects() {
        let (addr, accepted) = endpoint(|mcn| {
            if mcn.starts_with("0001") {
                None
            } else {
                Some(ack_for(mcn))
            }
        })
        .await;
        let client = client(&addr, 1);
        let err = client.send(&request("00010ABCDEFGHIJKLMNO")).await.unwrap_err();
        assert!(matches!(err, CletsError::Transport(TransportError::Closed)), "{err:?}");
        assert!(err.is_transient());
        client.send(&request("00020ABCDEFGHIJKLMNO")).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// An endpoint that never answers gives a transient timeout after `request_timeout`.
    #[tokio::test]
    async fn silent_endpoint_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(listener.accept().await.unwrap().0);
            }
        });
        let client = CletsClient::from_config(CletsClientConfig {
            request_timeout: Duration::from_millis(100),
            ..CletsClientConfig::new(addr)
        });
        let started = std::time::Instant::now();
        let err = client.send(&request("00010ABCDEFGHIJKLMNO")).await.unwrap_err();
        assert!(
            matches!(err, CletsError::Transport(TransportError::Timeout(_))),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    /// Nothing listening is a transient connect error.
    #[tokio::test]
    async fn unreachable_endpoint_is_transient() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = client(&addr, 1)
            .send(&request("00010ABCDEFGHIJKLMNO"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CletsError::Transport(TransportError::Connect { .. })),
            "{err:?}"
        );
        assert!(err.is_transient());
    }

    /// Requests without an MCN, over 8 KiB or not ASCII are refused without connecting.
    #[tokio::test]
    async fn unsendable_requests_are_refused_without_connecting() {
        let (addr, accepted) = endpoint(|mcn| Some(ack_for(mcn))).await;
        let client = client(&addr, 1);
        let mut too_long = request("00010ABCDEFGHIJKLMNO");
        too_long.resize(frame::MAX_FRAME_LEN + 1, b'A');
        for bad in [
            b"EPO.CA034025J.".to_vec(),
            b"EPO.CA034025J.00010ABCDEFGHIJKLMNO".to_vec(),
            too_long,
            "EPO.CA034025J.00010ABCDEFGHIJKLMNO.NAM/PEÑA.".as_bytes().to_vec(),
        ] {
            let err = client.send(&bad).await.unwrap_err();
            assert!(matches!(err, CletsError::InvalidRequest(_)), "{err:?}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    /// The default configuration points at the ICD's simulator address with a pool of two.
    #[test]
    fn default_config_matches_icd() {
        let config = CletsClientConfig::default();
        assert_eq!(config.addr, "127.0.0.1:7001");
        assert_eq!(config.connections, 2);
    }
}
