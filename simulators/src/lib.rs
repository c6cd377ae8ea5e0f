//! Realistic simulators of Porter's partners, for testers: real programs speaking the real protocols, not
//! mocks (ICD §11).
//!
//! Module map:
//! - [`common`]: what the partner simulators share: the faults body, the counters, the bounded message log,
//!   the control API, the simulator page (HTML at `/`), and the HTTP request pipeline of the DOJ and LEA
//!   simulators.
//! - [`clets`]: the CLETS/CARPOS simulator.
//!   - [`clets::records`]: the §6 request grammar and checks, and the CARPOS record table.
//!   - [`clets::server`]: the framed TCP endpoint.
//!   - [`clets::control`]: the HTTP control API (`/_sim/state`, `/_sim/messages`, `/_sim/faults`,
//!     `/_sim/reset`) and the simulator page (`/`).
//! - [`doj`]: the DOJ firearms simulator (ICD §7), HTTP.
//! - [`lea`]: the LEA RMS simulator (ICD §8), HTTP, one path prefix per agency.
//! - [`court`]: the court CMS simulator and load generator.
//!
//! The simulators do not depend on the broker crate: each reads the ICD independently, so the broker is
//! tested against the contract rather than against its own code. They share only the transport code of
//! `porter-adapters` (framing, reply rendering).

pub mod clets;
pub mod common;
pub mod court;
pub mod doj;
pub mod lea;
