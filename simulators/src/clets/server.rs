//! The simulator's CLETS endpoint: accepts TCP connections and answers each request frame in order.
//!
//! - A semaphore bounds the connections served at once (`max_connections`).
//! - While the `down` fault is on, accepted sockets are closed at once and not counted, and every open
//!   connection closes itself.
//! - On shutdown the accept loop stops, every connection closes at its next step, and `serve` returns
//!   once they all have.

use std::sync::Arc;
use std::time::Duration;

use porter_adapters::clets::frame;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::Simulator;

/// Accepts and serves CLETS connections until `stop` turns true.
pub async fn serve(listener: TcpListener, sim: Arc<Simulator>, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(sim.config().max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors: wait for some to be released rather than spin.
                warn!(error = %e, "Accepting a CLETS connection failed; retrying.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if sim.is_down() {
            debug!(%peer, "Refused a CLETS connection: the simulator is down.");
            sim.connection_refused();
            continue;
        }
        sim.connection_opened();
        connections.spawn(connection(socket, sim.clone(), stop.clone(), permit));
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection: reads a request, answers it, repeats; each request is answered before the next
/// is read, so replies keep request order.
async fn connection(
    mut socket: TcpStream,
    sim: Arc<Simulator>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = socket.set_nodelay(true);
    let peer = socket.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut down = sim.watch_down();
    debug!(%peer, "CLETS connection opened.");
    loop {
        // Biased: once stopped or down, no further request is answered.
        let frame = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = down.wait_for(|down| *down) => break,
            frame = frame::read_frame(&mut socket) => frame,
        };
        let request = match frame {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => break,
            Err(e) => {
                warn!(%peer, error = %e, "Closing a CLETS connection after a framing error.");
                break;
            }
        };
        let reply = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = down.wait_for(|down| *down) => break,
            reply = sim.answer(&request) => reply,
        };
        let Some(reply) = reply else { break };
        if let Err(e) = frame::write_frame(&mut socket, reply.as_bytes()).await {
            debug!(%peer, error = %e, "A CLETS reply could not be written.");
            break;
        }
    }
    debug!(%peer, "CLETS connection closed.");
}
