//! What the partner simulators share (ICD §11): the faults body, the state counters, the bounded message
//! log and the control API ([`control`]); and, for the two HTTP partners (DOJ and LEA), the request
//! pipeline pieces in [`http`].

#![warn(missing_docs)]

pub mod control;
pub mod http;
pub mod page;

use std::collections::VecDeque;

use chrono::SecondsFormat;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// Injected faults (`POST /_sim/faults`, ICD §11). A post replaces the faults it scopes to: an absent field
/// is no fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Delay before answering each request, in milliseconds.
    pub latency_ms: u64,
    /// Share of requests answered busy (0.0 to 1.0): CLETS `BSY`, HTTP `503` with `Retry-After: 1`.
    pub busy_rate: f64,
    /// Share of requests rejected at random (0.0 to 1.0): CLETS `REJ` `E03`, HTTP `400` with a reason.
    pub reject_rate: f64,
    /// Share of requests whose connection is dropped without an answer (0.0 to 1.0). CLETS drops the
    /// request unprocessed; the HTTP simulators process it first, so the reply is what gets lost.
    pub disconnect_rate: f64,
    /// CLETS refuses connections and drops the open ones; the HTTP simulators answer every request `503`.
    pub down: bool,
    /// Scopes the faults to one LEA agency (its ORI). The other simulators accept and ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
}

/// Which of the random faults hit one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultRoll {
    /// Drop the connection instead of answering.
    pub disconnect: bool,
    /// Answer busy.
    pub busy: bool,
    /// Reject.
    pub reject: bool,
}

impl Faults {
    /// Checks that each rate is a number from 0.0 to 1.0 and that `agency`, when given, is an ORI.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("busy_rate", self.busy_rate),
            ("reject_rate", self.reject_rate),
            ("disconnect_rate", self.disconnect_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0.0 and 1.0"));
            }
        }
        if let Some(agency) = &self.agency
            && !is_ori(agency)
        {
            return Err("agency must be an ORI: 9 characters [A-Z0-9]".into());
        }
        Ok(())
    }

    /// Rolls the dice for one request: each random fault independently, at its rate.
    pub fn roll(&self) -> FaultRoll {
        let mut rng = rand::rng();
        // A comparison, unlike `random_bool`, cannot panic on a rate outside 0..1 (NaN is no fault).
        let mut roll = |rate: f64| rate > 0.0 && rng.random::<f64>() < rate;
        FaultRoll {
            disconnect: roll(self.disconnect_rate),
            busy: roll(self.busy_rate),
            reject: roll(self.reject_rate),
        }
    }
}

/// The state counters of ICD §11.
///
/// For every simulator, `received` = `accepted` + `rejected` + `busy` + `duplicates` (+ the CLETS
/// disconnects, which are not answered at all). `out_of_order` and `gaps` are not further terms of that
/// sum but details of two of them: an out-of-order message is also counted in `rejected`, and a message
/// after a gap also in `accepted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests received.
    pub received: u64,
    /// Requests accepted and applied (`ACK`, HTTP `201`), not counting duplicates.
    pub accepted: u64,
    /// Requests rejected, including injected rejections (`REJ`; HTTP `400`, `401`, `404`, `413`, `422`).
    pub rejected: u64,
    /// Busy or transient answers given (`BSY`; HTTP `503`, also while `down`).
    pub busy: u64,
    /// Connections opened and served (CLETS: not those refused while down). Counted globally only.
    pub connections: u64,
    /// Repeated MCNs or idempotency keys answered from memory (expected under at-least-once).
    pub duplicates: u64,
    /// The same (ORI, order number, sequence) applied twice under different MCNs or keys; must stay 0.
    /// (DOJ and LEA refuse such a message as `out_of_order`, so for them it stays 0 by construction.)
    pub double_records: u64,
    /// (DOJ, LEA) A sequence at or below the last one applied for that order, under another key:
    /// answered `422` with a JSON reason, and also counted in `rejected`. Always 0 for CLETS.
    pub out_of_order: u64,
    /// (DOJ, LEA) A sequence more than one past the last one applied for that order: accepted (an
    /// operator may have discarded a message), and also counted in `accepted`. Always 0 for CLETS.
    pub gaps: u64,
}

/// A bounded log of recent requests for `GET /_sim/messages`: the oldest entries are dropped first.
#[derive(Debug, Clone)]
pub struct MessageLog<T> {
    entries: VecDeque<T>,
    capacity: usize,
}

impl<T: Clone> MessageLog<T> {
    /// An empty log keeping at most `capacity` entries (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// Appends an entry, dropping the oldest one when full.
    pub fn push(&mut self, entry: T) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// The entries, oldest first.
    pub fn to_vec(&self) -> Vec<T> {
        self.entries.iter().cloned().collect()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The default size of every simulator's message log.
pub fn default_message_log_capacity() -> usize {
    10_000
}

/// The actions of ICD §0, spelled out.
pub const ACTIONS: [&str; 5] = ["ISSUE", "MODIFY", "TERMINATE", "CANCEL", "SERVICE"];

/// What identifies one message about an order at an HTTP partner: which order, which step of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderStep {
    /// The issuing court's ORI.
    pub court_ori: String,
    /// The order number.
    pub order_number: String,
    /// The message's sequence within the order (1 or more).
    pub sequence: u32,
    /// `ISSUE`, `MODIFY`, `TERMINATE`, `CANCEL` or `SERVICE`.
    pub action: String,
}

/// Whether `s` is a well-formed order number: 1 to 15 characters `[A-Z0-9-]` (ICD §0).
pub fn is_order_number(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` is a well-formed ORI: 9 characters `[A-Z0-9]` (ICD §0).
pub fn is_ori(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The current time as RFC 3339 in UTC, with milliseconds (the log and record timestamps).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log keeps the newest entries up to its capacity, and a zero capacity keeps nothing.
    #[test]
    fn message_log_is_bounded() {
        let mut log = MessageLog::new(2);
        for i in 1..=3 {
            log.push(i);
        }
        assert_eq!(log.to_vec(), vec![2, 3]);
        log.clear();
        assert!(log.to_vec().is_empty());
        let mut none = MessageLog::new(0);
        none.push(1);
        assert!(none.to_vec().is_empty());
    }

    /// Rates of 0 and 1 always miss and always hit; the agency must be an ORI.
    #[test]
    fn rolls_and_agency_validation() {
        assert_eq!(Faults::default().roll(), FaultRoll::default());
        let all = Faults {
            busy_rate: 1.0,
            reject_rate: 1.0,
            disconnect_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(
            all.roll(),
            FaultRoll {
                disconnect: true,
                busy: true,
                reject: true
            }
        );
        let bad_agency = Faults {
            agency: Some("ca0341100".into()),
            ..Faults::default()
        };
        assert!(bad_agency.validate().is_err());
    }
}
