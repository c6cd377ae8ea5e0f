//! The simulator's HTTP control API (ICD §11), the routes shared by every partner simulator
//! ([`crate::common::control`]):
//! - `GET /_sim/state`: counters, faults and records;
//! - `GET /_sim/messages`: every request received, in order, with its reply;
//! - `GET /_sim/faults`, `POST /_sim/faults`: read or replace the injected faults (`agency` is ignored);
//! - `POST /_sim/reset`: forget records, messages, counters and faults.
//!
//! It also serves the simulator page at `/` with its two forms (`POST /_sim/faults/form`,
//! `POST /_sim/reset/form`; [`crate::common::page`]): with the defaults, `http://127.0.0.1:7101/`.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Faults, MessageEntry, Simulator, StateView};
use crate::common::control::{self, SimControl};

impl SimControl for Simulator {
    const NAME: &'static str = "CLETS";
    type State = StateView;
    type Message = MessageEntry;
    type FaultsView = Faults;

    fn state(&self) -> StateView {
        Simulator::state(self)
    }

    fn messages(&self) -> Vec<MessageEntry> {
        Simulator::messages(self)
    }

    /// The page shows a request frame's header only (`MKE.ORI.MCN.`): its fields name the restrained
    /// and protected persons. The reply (ids and codes) is shown whole.
    fn page_entry(message: &MessageEntry) -> serde_json::Value {
        serde_json::json!({
            "at": message.at,
            "request": frame_header(&message.request),
            "reply": message.reply,
        })
    }

    fn faults(&self) -> Faults {
        Simulator::faults(self)
    }

    fn set_faults(&self, faults: Faults) -> Result<(), String> {
        Simulator::set_faults(self, faults);
        Ok(())
    }

    fn reset(&self) {
        Simulator::reset(self);
    }
}

/// The control API's routes over a simulator.
pub fn router(sim: Arc<Simulator>) -> Router {
    control::router(sim)
}

/// Serves the control API until `stop` turns true.
pub async fn serve(listener: TcpListener, sim: Arc<Simulator>, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
}

/// The first three `.`-terminated fields of a request frame (message key, ORI, MCN), with an ellipsis
/// when more follows.
fn frame_header(request: &str) -> String {
    let end = request.match_indices('.').nth(2).map_or(request.len(), |(i, _)| i + 1);
    let more = if end < request.len() { "…" } else { "" };
    format!("{}{more}", &request[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page shows a frame's first three fields; the person fields after them are not shown.
    #[test]
    fn the_page_shows_a_frames_header_only() {
        assert_eq!(
            frame_header("EPO.CA034025J.00011ABC.NAM/DOE, JOHN.DOB/19850214."),
            "EPO.CA034025J.00011ABC.…"
        );
        assert_eq!(frame_header("EPO.CA0"), "EPO.CA0");
        assert_eq!(frame_header("A.B.C."), "A.B.C.");
    }
}
