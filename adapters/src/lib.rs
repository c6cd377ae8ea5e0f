//! Porter's partner-side transport adapters: the code that speaks a partner's wire protocol.
//!
//! Module map:
//! - [`clets`]: the CLETS/CARPOS interface of ICD §6, a framed TCP protocol.
//!   - [`clets::frame`]: the 4-byte length-prefixed ASCII framing.
//!   - [`clets::reply`]: parsing and rendering of CARPOS response frames (`ACK`, `REJ`, `BSY`).
//!   - [`clets::client`]: a small connection pool that sends one request and reads its reply.
//!
//! The crate knows nothing about orders or courts; the broker translates orders into request text and
//! decides what a reply means for the order. The CLETS simulator reuses the framing and reply modules.
#![warn(missing_docs)]

pub mod clets;
