//! Routing: which partners an accepted message goes to.
//!
//! Every order goes to CLETS/CARPOS. DOJ (when the order's state prohibits
//! firearms, ICD §7) and the LEA agencies (ICD §8) are computed from the
//! order's state after the message is applied; they join this table as
//! their adapters land.

use crate::config::CourtConfig;
use crate::model::{OrderMessage, PartnerId};

/// The partners `message` is routed to.
pub fn route(_message: &OrderMessage, _court: &CourtConfig) -> Vec<PartnerId> {
    vec![PartnerId::Clets]
}
