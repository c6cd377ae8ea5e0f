//! Formats: turning bytes into the canonical model and back.
//!
//! - [`xml`]: the ICD §2 order message and the §4 status message.
//! - [`fixed`]: fixed-width records read through declarative layouts
//!   (ICD §3), with `cms-a/1` shipped as a data file under `schemas/`.
//! - [`clets`]: the ICD §6 request text written for CARPOS.
//! - [`batch`]: batch files (ICD §3): header, order messages, trailer, for
//!   the court-side file-drop adapter and `porter validate`.
//!
//! Every reader is total: it never panics on any input, bounds what it reads,
//! and reports every problem as a [`FieldError`] naming the field, its
//! location and the reason. A reader returns whatever it could read even when
//! it also returns errors, so that a `REJECTED` status can still name the
//! order number and sequence.

pub mod batch;
pub mod clets;
pub mod fixed;
pub mod xml;

use crate::model::{FieldError, Locations, OrderMessage};

/// AMQP message size bound (ICD §0): 16 MiB.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// What a reader made of one inbound message.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Everything that could be read, even when `errors` is not empty.
    pub message: OrderMessage,
    /// Where each field was found, for errors raised later.
    pub locations: Locations,
    /// Format errors; empty when the input is well formed.
    pub errors: Vec<FieldError>,
}

impl Parsed {
    /// An empty result with room for `locations` field locations.
    pub fn with_capacity(locations: usize) -> Parsed {
        Parsed {
            locations: Locations::with_capacity(locations),
            ..Parsed::default()
        }
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}
