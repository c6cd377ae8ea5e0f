//! The CLETS/CARPOS interface (ICD §6): a TCP protocol of length-prefixed ASCII frames, one response frame
//! per request frame, in request order on each connection.
//!
//! A request is `MKE.ORI.MCN.` followed by `TAG/value.` fields; the broker builds that text elsewhere.
//! This module moves frames ([`frame`]), understands the three reply shapes ([`reply`]) and keeps the
//! connections to the endpoint ([`client`]).

pub mod client;
pub mod frame;
pub mod reply;

pub use client::{CletsClient, CletsClientConfig, CletsError};
pub use reply::{CletsReply, ReplyError};
