//! A delivery's life: one inbound message at one partner (`deliveries`),
//! from `PENDING` to a finished state, and what each attempt's outcome does.
//!
//! ```text
//!            Retry (attempts + 1, due again later)
//!            ┌──────┐
//!            ▼      │
//!          PENDING ─┴─ Accepted ──────▶ ACCEPTED      (PARTNER_ACCEPTED; the CLETS NIC)
//!             │  └──── Rejected ──────▶ REJECTED      (PARTNER_REJECTED + dead letter)
//!             └─────── DeadLettered ──▶ DEAD          (DEAD_LETTERED + dead letter)
//!   REJECTED, DEAD ─ operator discard ─▶ DISCARDED
//!   REJECTED, DEAD ─ operator replay ──▶ PENDING
//! ```
//!
//! An outcome reported for a delivery that is no longer `PENDING` (a late or
//! repeated report) is recorded as an attempt and changes nothing else, so
//! it can never produce a second partner status. Per order and partner a
//! delivery holds back the later sequences until it is `ACCEPTED` or
//! `DISCARDED` ([`DeliveryState::holds_back`]).
//!
//! [`record_outcome`] is the rule: the delivery's state and the outcome in,
//! the new state and the effects the store must carry out
//! ([`DeliveryEffect`]) out, in the order it must carry them out.

use crate::model::{Action, ErrorCode, FieldError, PartnerId, StatusKind};
use crate::store::DeliveryOutcome;

/// A delivery's state (`deliveries.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not finished: due now or at its next attempt time.
    Pending,
    /// The partner accepted it.
    Accepted,
    /// The partner rejected it permanently; a dead letter.
    Rejected,
    /// Given up (retries exhausted, gap timeout, unknown order); a dead letter.
    Dead,
    /// An operator discarded its dead letter.
    Discarded,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Pending,
        DeliveryState::Accepted,
        DeliveryState::Rejected,
        DeliveryState::Dead,
        DeliveryState::Discarded,
    ];

    /// The stored spelling (`PENDING`, `ACCEPTED`, `REJECTED`, `DEAD`,
    /// `DISCARDED`).
    pub fn name(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Accepted => "ACCEPTED",
            DeliveryState::Rejected => "REJECTED",
            DeliveryState::Dead => "DEAD",
            DeliveryState::Discarded => "DISCARDED",
        }
    }

    /// The state spelled `s`, if it is one.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|state| state.name() == s)
    }

    /// Whether an outcome still changes it: only a `PENDING` delivery takes one.
    pub fn is_finished(self) -> bool {
        self != DeliveryState::Pending
    }

    /// Whether it holds back the later sequences of its order at its
    /// partner (ICD §5): everything but `ACCEPTED` and `DISCARDED`.
    pub fn holds_back(self) -> bool {
        !matches!(self, DeliveryState::Accepted | DeliveryState::Discarded)
    }

    /// Whether it stands as a dead letter an operator may replay or
    /// discard: `REJECTED` or `DEAD`.
    pub fn is_dead_letter(self) -> bool {
        matches!(self, DeliveryState::Rejected | DeliveryState::Dead)
    }
}

/// What one attempt came to, as the delivery's rules see it (the parts of a
/// [`DeliveryOutcome`] that decide anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryReport<'a> {
    /// The partner accepted; `nic` when its answer gave the order its CARPOS
    /// record id.
    Accepted { nic: Option<&'a str> },
    /// A permanent rejection, with the partner's reason.
    Rejected { reason: &'a str },
    /// A transient failure; the outcome says when to try again.
    Retry { reason: &'a str },
    /// Given up, with the code the court reads (`RETRIES_EXHAUSTED`,
    /// `SEQUENCE_GAP`, `UNKNOWN_ORDER`, …).
    DeadLettered { code: ErrorCode, reason: &'a str },
}

impl DeliveryReport<'_> {
    /// The spelling of `partner_attempts.outcome` for an attempt with this
    /// report.
    pub fn attempt_outcome(&self) -> &'static str {
        match self {
            DeliveryReport::Accepted { .. } => "ACCEPTED",
            DeliveryReport::Rejected { .. } => "REJECTED",
            DeliveryReport::Retry { .. } => "RETRY",
            DeliveryReport::DeadLettered { .. } => "DEAD",
        }
    }
}

impl<'a> From<&'a DeliveryOutcome> for DeliveryReport<'a> {
    fn from(outcome: &'a DeliveryOutcome) -> Self {
        match outcome {
            DeliveryOutcome::Accepted { nic, .. } => DeliveryReport::Accepted { nic: nic.as_deref() },
            DeliveryOutcome::Rejected { reason, .. } => DeliveryReport::Rejected { reason },
            DeliveryOutcome::Retry { reason, .. } => DeliveryReport::Retry { reason },
            DeliveryOutcome::DeadLettered { code, reason } => DeliveryReport::DeadLettered { code: *code, reason },
        }
    }
}

/// One thing the store must do for an attempt's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryEffect {
    /// Record the attempt (`partner_attempts`) with this outcome spelling.
    /// Always the first effect, whatever the delivery's state.
    RecordAttempt { outcome: &'static str },
    /// The delivery was finished already (`state`): a late or repeated
    /// report. Nothing else changes; say so in a WARN log.
    IgnoreLate { state: DeliveryState },
    /// Finish the delivery: set its `state`, count the attempt, keep
    /// `last_error` (`None` clears it), and set `first_attempt_at` to the
    /// attempt's time unless set.
    Finish {
        state: DeliveryState,
        last_error: Option<String>,
    },
    /// Keep it `PENDING`: count the attempt, make it due again at the
    /// outcome's `next_attempt_at`, keep `last_error`, and set
    /// `first_attempt_at` to the attempt's time unless set.
    Reschedule { last_error: String },
    /// Set the order's CLETS NIC; `None` clears it (CARPOS cancelled the
    /// record, and a re-entry's EPO brings a new one).
    SetNic(Option<String>),
    /// A status of the delivery's message to the court, about its partner,
    /// with these errors. The store adds the outcome's partner record ids
    /// and warnings where it has them.
    Status { kind: StatusKind, errors: Vec<FieldError> },
    /// A dead letter at stage `deliver` for the partner, with this reason
    /// code and errors, the original bytes and the attempt count.
    DeadLetter { reason: ErrorCode, errors: Vec<FieldError> },
}

/// The result of [`record_outcome`]: the delivery's state after the
/// attempt, and the effects in the order the store carries them out.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryStep {
    pub state: DeliveryState,
    pub effects: Vec<DeliveryEffect>,
}

/// What an attempt's outcome does to a delivery of `action` to `partner`
/// that is in `state`:
/// - finished already: the attempt is recorded, nothing else;
/// - `Accepted`: `ACCEPTED`, the NIC the answer gave (a CLETS CANCEL accepted
///   without one clears the order's NIC), then `PARTNER_ACCEPTED`;
/// - `Rejected`: `REJECTED` with the reason, `PARTNER_REJECTED`
///   (`PARTNER_REJECTED` on field `partner`) and a dead letter;
/// - `Retry`: stays `PENDING`, due again later;
/// - `DeadLettered`: `DEAD` with the reason, `DEAD_LETTERED` with the code
///   (on field `sequence` for `SEQUENCE_GAP`, `order.order_number` for
///   `UNKNOWN_ORDER`, else `partner`) and a dead letter.
pub fn record_outcome(
    state: DeliveryState,
    partner: &PartnerId,
    action: Action,
    report: &DeliveryReport<'_>,
) -> DeliveryStep {
    let mut effects = vec![DeliveryEffect::RecordAttempt {
        outcome: report.attempt_outcome(),
    }];
    if state.is_finished() {
        effects.push(DeliveryEffect::IgnoreLate { state });
        return DeliveryStep { state, effects };
    }
    let state = match *report {
        DeliveryReport::Accepted { nic } => {
            effects.push(DeliveryEffect::Finish {
                state: DeliveryState::Accepted,
                last_error: None,
            });
            if let Some(nic) = nic {
                effects.push(DeliveryEffect::SetNic(Some(nic.to_string())));
            } else if *partner == PartnerId::Clets && action == Action::Cancel {
                effects.push(DeliveryEffect::SetNic(None));
            }
            effects.push(DeliveryEffect::Status {
                kind: StatusKind::PartnerAccepted,
                errors: Vec::new(),
            });
            DeliveryState::Accepted
        }
        DeliveryReport::Rejected { reason } => {
            let error = FieldError::new(ErrorCode::PartnerRejected, "partner", reason);
            effects.extend(finish(
                DeliveryState::Rejected,
                StatusKind::PartnerRejected,
                reason,
                error,
            ));
            DeliveryState::Rejected
        }
        DeliveryReport::Retry { reason } => {
            effects.push(DeliveryEffect::Reschedule {
                last_error: reason.to_string(),
            });
            DeliveryState::Pending
        }
        DeliveryReport::DeadLettered { code, reason } => {
            let field = match code {
                ErrorCode::SequenceGap => "sequence",
                ErrorCode::UnknownOrder => "order.order_number",
                _ => "partner",
            };
            let error = FieldError::new(code, field, reason);
            effects.extend(finish(DeliveryState::Dead, StatusKind::DeadLettered, reason, error));
            DeliveryState::Dead
        }
    };
    DeliveryStep { state, effects }
}

/// The effects of a delivery given up as a dead letter.
fn finish(state: DeliveryState, kind: StatusKind, reason: &str, error: FieldError) -> [DeliveryEffect; 3] {
    [
        DeliveryEffect::Finish {
            state,
            last_error: Some(reason.to_string()),
        },
        DeliveryEffect::Status {
            kind,
            errors: vec![error.clone()],
        },
        DeliveryEffect::DeadLetter {
            reason: error.code,
            errors: vec![error],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryState::{Accepted, Dead, Discarded, Pending, Rejected};

    #[test]
    fn states_read_back_as_stored_and_nothing_else() {
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(state.name()), Some(state));
        }
        for bad in ["", "pending", "RETRY", "DEAD "] {
            assert_eq!(DeliveryState::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_each_state_means() {
        // (state, finished, holds back later sequences, a dead letter)
        let table = [
            (Pending, false, true, false),
            (Accepted, true, false, false),
            (Rejected, true, true, true),
            (Dead, true, true, true),
            (Discarded, true, false, false),
        ];
        for (state, finished, holds_back, dead_letter) in table {
            assert_eq!(state.is_finished(), finished, "{state:?}");
            assert_eq!(state.holds_back(), holds_back, "{state:?}");
            assert_eq!(state.is_dead_letter(), dead_letter, "{state:?}");
        }
    }

    fn status(kind: StatusKind, errors: Vec<FieldError>) -> DeliveryEffect {
        DeliveryEffect::Status { kind, errors }
    }

    fn finished(state: DeliveryState, last_error: Option<&str>) -> DeliveryEffect {
        DeliveryEffect::Finish {
            state,
            last_error: last_error.map(str::to_string),
        }
    }

    /// Every outcome on a pending delivery: the new state and the effects,
    /// in order.
    #[test]
    fn outcomes_of_a_pending_delivery() {
        let attempt = |outcome| DeliveryEffect::RecordAttempt { outcome };
        let rejected = FieldError::new(ErrorCode::PartnerRejected, "partner", "REJ bad NIC");
        let exhausted = FieldError::new(ErrorCode::RetriesExhausted, "partner", "24 h of BSY");
        let gap = FieldError::new(ErrorCode::SequenceGap, "sequence", "gap");
        let unknown = FieldError::new(ErrorCode::UnknownOrder, "order.order_number", "no EPO");
        /// (case, partner, action, report, state after, effects)
        type Case<'a> = (
            &'a str,
            PartnerId,
            Action,
            DeliveryReport<'a>,
            DeliveryState,
            Vec<DeliveryEffect>,
        );
        let table: Vec<Case<'_>> = vec![
            (
                "EPO accepted with its NIC",
                PartnerId::Clets,
                Action::Issue,
                DeliveryReport::Accepted { nic: Some("H1") },
                Accepted,
                vec![
                    attempt("ACCEPTED"),
                    finished(Accepted, None),
                    DeliveryEffect::SetNic(Some("H1".into())),
                    status(StatusKind::PartnerAccepted, vec![]),
                ],
            ),
            (
                "MPO accepted",
                PartnerId::Clets,
                Action::Modify,
                DeliveryReport::Accepted { nic: None },
                Accepted,
                vec![
                    attempt("ACCEPTED"),
                    finished(Accepted, None),
                    status(StatusKind::PartnerAccepted, vec![]),
                ],
            ),
            (
                "XPO accepted: the NIC is dead",
                PartnerId::Clets,
                Action::Cancel,
                DeliveryReport::Accepted { nic: None },
                Accepted,
                vec![
                    attempt("ACCEPTED"),
                    finished(Accepted, None),
                    DeliveryEffect::SetNic(None),
                    status(StatusKind::PartnerAccepted, vec![]),
                ],
            ),
            (
                "a CANCEL accepted by DOJ leaves the NIC",
                PartnerId::Doj,
                Action::Cancel,
                DeliveryReport::Accepted { nic: None },
                Accepted,
                vec![
                    attempt("ACCEPTED"),
                    finished(Accepted, None),
                    status(StatusKind::PartnerAccepted, vec![]),
                ],
            ),
            (
                "rejected",
                PartnerId::Clets,
                Action::Modify,
                DeliveryReport::Rejected { reason: "REJ bad NIC" },
                Rejected,
                vec![
                    attempt("REJECTED"),
                    finished(Rejected, Some("REJ bad NIC")),
                    status(StatusKind::PartnerRejected, vec![rejected.clone()]),
                    DeliveryEffect::DeadLetter {
                        reason: ErrorCode::PartnerRejected,
                        errors: vec![rejected],
                    },
                ],
            ),
            (
                "retry",
                PartnerId::Lea("CA0340000".into()),
                Action::Issue,
                DeliveryReport::Retry { reason: "503" },
                Pending,
                vec![
                    attempt("RETRY"),
                    DeliveryEffect::Reschedule {
                        last_error: "503".into(),
                    },
                ],
            ),
            (
                "retries exhausted",
                PartnerId::Clets,
                Action::Issue,
                DeliveryReport::DeadLettered {
                    code: ErrorCode::RetriesExhausted,
                    reason: "24 h of BSY",
                },
                Dead,
                vec![
                    attempt("DEAD"),
                    finished(Dead, Some("24 h of BSY")),
                    status(StatusKind::DeadLettered, vec![exhausted.clone()]),
                    DeliveryEffect::DeadLetter {
                        reason: ErrorCode::RetriesExhausted,
                        errors: vec![exhausted],
                    },
                ],
            ),
            (
                "sequence gap",
                PartnerId::Doj,
                Action::Modify,
                DeliveryReport::DeadLettered {
                    code: ErrorCode::SequenceGap,
                    reason: "gap",
                },
                Dead,
                vec![
                    attempt("DEAD"),
                    finished(Dead, Some("gap")),
                    status(StatusKind::DeadLettered, vec![gap.clone()]),
                    DeliveryEffect::DeadLetter {
                        reason: ErrorCode::SequenceGap,
                        errors: vec![gap],
                    },
                ],
            ),
            (
                "unknown order",
                PartnerId::Clets,
                Action::Modify,
                DeliveryReport::DeadLettered {
                    code: ErrorCode::UnknownOrder,
                    reason: "no EPO",
                },
                Dead,
                vec![
                    attempt("DEAD"),
                    finished(Dead, Some("no EPO")),
                    status(StatusKind::DeadLettered, vec![unknown.clone()]),
                    DeliveryEffect::DeadLetter {
                        reason: ErrorCode::UnknownOrder,
                        errors: vec![unknown],
                    },
                ],
            ),
        ];
        for (case, partner, action, report, state, effects) in table {
            let step = record_outcome(Pending, &partner, action, &report);
            assert_eq!(step, DeliveryStep { state, effects }, "{case}");
        }
    }

    /// A report for a finished delivery is recorded and changes nothing.
    #[test]
    fn a_late_report_changes_nothing() {
        let reports = [
            DeliveryReport::Accepted { nic: Some("H2") },
            DeliveryReport::Rejected { reason: "late" },
            DeliveryReport::Retry { reason: "late" },
            DeliveryReport::DeadLettered {
                code: ErrorCode::RetriesExhausted,
                reason: "late",
            },
        ];
        for state in [Accepted, Rejected, Dead, Discarded] {
            for report in &reports {
                let step = record_outcome(state, &PartnerId::Clets, Action::Issue, report);
                let expected = DeliveryStep {
                    state,
                    effects: vec![
                        DeliveryEffect::RecordAttempt {
                            outcome: report.attempt_outcome(),
                        },
                        DeliveryEffect::IgnoreLate { state },
                    ],
                };
                assert_eq!(step, expected, "{state:?} {report:?}");
            }
        }
    }

    #[test]
    fn a_store_outcome_reads_as_its_report() {
        let outcome = DeliveryOutcome::Accepted {
            record_ids: Vec::new(),
            nic: Some("H3".into()),
            warnings: Vec::new(),
        };
        assert_eq!(
            DeliveryReport::from(&outcome),
            DeliveryReport::Accepted { nic: Some("H3") }
        );
        let outcome = DeliveryOutcome::Retry {
            next_attempt_at: chrono::Utc::now(),
            reason: "BSY".into(),
        };
        assert_eq!(DeliveryReport::from(&outcome), DeliveryReport::Retry { reason: "BSY" });
        let outcome = DeliveryOutcome::DeadLettered {
            code: ErrorCode::UnknownOrder,
            reason: "x".into(),
        };
        assert_eq!(
            DeliveryReport::from(&outcome),
            DeliveryReport::DeadLettered {
                code: ErrorCode::UnknownOrder,
                reason: "x"
            }
        );
        let outcome = DeliveryOutcome::Rejected {
            reason: "REJ".into(),
            warnings: Vec::new(),
        };
        assert_eq!(
            DeliveryReport::from(&outcome),
            DeliveryReport::Rejected { reason: "REJ" }
        );
    }
}
