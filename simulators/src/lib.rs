//! Realistic simulators of Porter's partners, for testers: real programs speaking the real protocols, not
//! mocks (ICD §11).
//!
//! Module map:
//! - [`clets`]: the CLETS/CARPOS simulator.
//!   - [`clets::records`]: the §6 request grammar and checks, and the CARPOS record table.
//!   - [`clets::server`]: the framed TCP endpoint.
//!   - [`clets::control`]: the HTTP control API (`/_sim/state`, `/_sim/messages`, `/_sim/faults`,
//!     `/_sim/reset`).
//! - [`court`]: the court CMS simulator and load generator.
//!
//! The simulators do not depend on the broker crate: each reads the ICD independently, so the broker is
//! tested against the contract rather than against its own code. They share only the transport code of
//! `porter-adapters` (framing, reply rendering).

pub mod clets;
pub mod court;
