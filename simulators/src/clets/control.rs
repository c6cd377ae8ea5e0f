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
