//! An order's life under ICD §5: its state, what happens to an accepted
//! message given what is known of its order, and what applying a message
//! does to the order.
//!
//! An order's **progress** ([`Progress`]) is its state, its applied prefix
//! (every sequence up to `applied` is settled: applied or refused) and the
//! applied TERMINATE or CANCEL that closed it. A message arrives at, below
//! or above the prefix ([`Position`]):
//! - **at or below** it (sequence `<= applied`): a repeat of an accepted
//!   sequence ([`admit`], rule (a));
//! - **next** (`applied + 1`): applied at once, then every message that
//!   waited right behind it;
//! - **past a gap** (`> applied + 1`): held until the gap fills (or the
//!   court's gap timeout gives it up, `store::sql::gaps`).
//!
//! Two kinds of decision:
//! - [`admit`], on arrival: accept (store it; apply it when its turn comes),
//!   a duplicate of the same sequence, or a rejection. It looks at the
//!   order's sequence history (the prefix and the messages waiting past
//!   it), not only at its latest state, and rejects only what no missing
//!   sequence could make valid; the rest waits.
//! - [`settle`], when a message's turn comes: the order as it is by then
//!   takes it ([`Turn::Apply`]) or refuses it ([`Turn::Refuse`]:
//!   `ORDER_CLOSED` after a TERMINATE, or after a CANCEL other than for the
//!   re-entry ISSUE right after it; `SEQUENCE_CONFLICT` for an ISSUE of an
//!   active order). Either way the sequence is settled.
//!
//! [`apply_message`] is what applying does to the order's content. A
//! repeated `message_id` is decided by [`repeated_message_id`].

use crate::model::{Action, ErrorCode, FieldError, OrderMessage};

/// An order's state (`orders.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Nothing applied yet: only messages waiting past a gap are known.
    New,
    /// Issued (or re-entered after a CANCEL) and in force.
    Active,
    /// Closed by a TERMINATE; nothing reopens it.
    Terminated,
    /// Closed by a CANCEL; only the ISSUE right after it re-enters it.
    Cancelled,
}

impl OrderState {
    pub const ALL: [OrderState; 4] = [
        OrderState::New,
        OrderState::Active,
        OrderState::Terminated,
        OrderState::Cancelled,
    ];

    /// The stored spelling (`NEW`, `ACTIVE`, `TERMINATED`, `CANCELLED`).
    pub fn name(self) -> &'static str {
        match self {
            OrderState::New => "NEW",
            OrderState::Active => "ACTIVE",
            OrderState::Terminated => "TERMINATED",
            OrderState::Cancelled => "CANCELLED",
        }
    }

    /// The state spelled `s`, if it is one.
    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|state| state.name() == s)
    }

    /// The state once a message of `action` is applied: TERMINATE and CANCEL
    /// close the order, an ISSUE makes it active, a MODIFY or SERVICE makes a
    /// new order active and leaves any other state as it is. (Which messages
    /// a closed order takes at all is [`settle`]'s question.)
    pub fn after(self, action: Action) -> OrderState {
        match action {
            Action::Terminate => OrderState::Terminated,
            Action::Cancel => OrderState::Cancelled,
            Action::Issue => OrderState::Active,
            Action::Modify | Action::Service if self == OrderState::New => OrderState::Active,
            Action::Modify | Action::Service => self,
        }
    }
}

/// An order's applied prefix, as its `orders` row keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub state: OrderState,
    /// Every sequence up to this one is settled (applied or refused).
    pub applied: u32,
    /// The applied TERMINATE or CANCEL that closed the order; `None` while
    /// it is new or active.
    pub closed: Option<u32>,
}

impl Progress {
    /// An order of which nothing is known.
    pub const NEW: Progress = Progress {
        state: OrderState::New,
        applied: 0,
        closed: None,
    };

    /// Where `sequence` stands against the applied prefix.
    pub fn position(&self, sequence: u32) -> Position {
        let next = u64::from(self.applied) + 1;
        match u64::from(sequence) {
            s if s < next => Position::Settled,
            s if s == next => Position::Next,
            _ => Position::PastGap,
        }
    }
}

/// Where a sequence stands against an order's applied prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Inside the prefix: settled already.
    Settled,
    /// Right after the prefix: its turn has come.
    Next,
    /// Past a gap: it waits for the missing sequences.
    PastGap,
}

/// An accepted message arriving for its order.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub order_number: &'a str,
    pub sequence: u32,
    pub action: Action,
    /// SHA-256 of its canonical form (ICD §5's same-sequence rule compares it).
    pub canonical_sha256: &'a str,
}

/// The accepted message stored for the arrival's `(court, order, sequence)`.
#[derive(Debug, Clone, Copy)]
pub struct SameSequence<'a> {
    /// Its stored row's id.
    pub id: i64,
    pub message_id: &'a str,
    pub canonical_sha256: Option<&'a str>,
}

/// An accepted message waiting past the applied prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub sequence: u32,
    pub action: Action,
}

/// What ICD §5 does with an accepted verdict on arrival.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Store it as accepted; apply it now when its [`Position`] is
    /// [`Position::Next`], else hold it until the gap fills.
    Accept,
    /// The same sequence with the same content: store it as a duplicate of
    /// `original_id`, answered `ACCEPTED` to no partner with this warning,
    /// and with no other effect.
    Duplicate { original_id: i64, warning: FieldError },
    /// Store it as `REJECTED` with this error, and a dead letter at stage
    /// `validate`. Its sequence stays free.
    Reject(FieldError),
}

/// Decides an accepted verdict against what is known of its order, first
/// match wins:
/// - (a) `same`, an accepted message with the same sequence: the same
///   canonical content is a duplicate, other content `SEQUENCE_CONFLICT`;
///   a sequence inside the applied prefix whose message was purged is
///   `SEQUENCE_CONFLICT` too;
/// - (b) the latest known ISSUE, TERMINATE or CANCEL before it is a
///   TERMINATE, or a CANCEL: `ORDER_CLOSED`, except the re-entry ISSUE right
///   after the CANCEL, and except what a still-missing re-entry could make
///   valid (held);
/// - (c) an ISSUE past sequence 1 whose known predecessor is not a CANCEL:
///   `SEQUENCE_CONFLICT` (held while the predecessor is missing);
/// - (d) otherwise it is accepted.
///
/// `waiting` holds the accepted messages waiting past the applied prefix,
/// by ascending sequence; only those below the arrival count. Only an
/// arrival past a gap with no `same` needs them; the store may leave them
/// out otherwise.
pub fn admit(
    progress: &Progress,
    same: Option<&SameSequence<'_>>,
    waiting: &[Waiting],
    arrival: &Arrival<'_>,
) -> Admission {
    let Arrival {
        order_number: number,
        sequence,
        action,
        canonical_sha256,
    } = *arrival;
    if let Some(same) = same {
        let original = same.message_id;
        if same.canonical_sha256 == Some(canonical_sha256) {
            return Admission::Duplicate {
                original_id: same.id,
                warning: FieldError::new(
                    ErrorCode::Duplicate,
                    "sequence",
                    format!(
                        "sequence {sequence} of order {number} was already accepted as message \
                         {original} with the same content; this message has no second effect"
                    ),
                ),
            };
        }
        return Admission::Reject(FieldError::new(
            ErrorCode::SequenceConflict,
            "sequence",
            format!(
                "sequence {sequence} of order {number} was already accepted as message {original} \
                 with different content"
            ),
        ));
    }
    if progress.position(sequence) == Position::Settled {
        // Inside the applied prefix but no accepted message: it was purged.
        return Admission::Reject(FieldError::new(
            ErrorCode::SequenceConflict,
            "sequence",
            format!("sequence {sequence} of order {number} was already used"),
        ));
    }
    let between: Vec<Waiting> = waiting
        .iter()
        .copied()
        .filter(|w| w.sequence > progress.applied && w.sequence < sequence)
        .collect();
    match sequence_rule(progress, &between, i64::from(sequence), action, number) {
        None => Admission::Accept,
        Some(error) => Admission::Reject(error),
    }
}

/// Rules (b) and (c) for an arrival at `seq` past the applied prefix, given
/// the messages `waiting` between the two: the error that rejects it, or
/// `None` to accept it (and hold it when it is past a gap). It rejects only
/// what no missing sequence could make valid.
fn sequence_rule(
    progress: &Progress,
    waiting: &[Waiting],
    seq: i64,
    action: Action,
    number: &str,
) -> Option<FieldError> {
    let applied = i64::from(progress.applied);
    let closed = progress.closed.map(i64::from);
    // What is known at sequence `s`: `Some(true)` for the CANCEL that
    // closed the order (or a waiting CANCEL), `Some(false)` for any other
    // known message, `None` for a gap.
    let known = |s: i64| -> Option<bool> {
        if s <= applied {
            Some(progress.state == OrderState::Cancelled && closed == Some(s))
        } else {
            waiting
                .iter()
                .find(|w| i64::from(w.sequence) == s)
                .map(|w| w.action == Action::Cancel)
        }
    };
    let at = closed.unwrap_or(applied);
    let latest = waiting
        .iter()
        .rev()
        .find(|w| matches!(w.action, Action::Issue | Action::Terminate | Action::Cancel))
        .map(|w| (w.action, i64::from(w.sequence)))
        .or(match progress.state {
            OrderState::Active => Some((Action::Issue, applied)),
            OrderState::Terminated => Some((Action::Terminate, at)),
            OrderState::Cancelled => Some((Action::Cancel, at)),
            OrderState::New => None,
        });
    match latest {
        // Nothing reopens a terminated order.
        Some((Action::Terminate, t)) => Some(closed_error(number, "terminated", t)),
        // After a CANCEL at c only the ISSUE at c + 1 re-enters. A later
        // sequence can still be valid while c + 1 is missing: a re-entry may
        // fill it (and, for an ISSUE, a second CANCEL its own predecessor).
        Some((Action::Cancel, c)) if action == Action::Issue => {
            let held = seq > c + 2 && known(c + 1).is_none() && known(seq - 1).is_none();
            (seq != c + 1 && !held).then(|| closed_error(number, "cancelled", c))
        }
        Some((Action::Cancel, c)) => {
            let held = seq > c + 1 && known(c + 1).is_none();
            (!held).then(|| closed_error(number, "cancelled", c))
        }
        // An ISSUE past sequence 1 must follow a CANCEL: when its
        // predecessor is known and is not one, the order is issued; when the
        // predecessor is missing it may be the CANCEL, so the ISSUE waits.
        latest if action == Action::Issue && seq > 1 => match known(seq - 1) {
            Some(false) if seq - 1 == applied && progress.state == OrderState::Active => {
                let at = latest.map_or(applied, |(_, at)| at);
                Some(FieldError::new(
                    ErrorCode::SequenceConflict,
                    "sequence",
                    format!("order {number} was already issued (by sequence {at} or earlier) and is active"),
                ))
            }
            Some(false) => Some(FieldError::new(
                ErrorCode::SequenceConflict,
                "sequence",
                format!(
                    "sequence {} of order {number} is not a CANCEL, so an ISSUE cannot follow it",
                    seq - 1
                ),
            )),
            Some(true) | None => None,
        },
        _ => None,
    }
}

fn closed_error(number: &str, how: &str, at: i64) -> FieldError {
    FieldError::new(
        ErrorCode::OrderClosed,
        "order.order_number",
        format!("order {number} was {how} (by sequence {at} or earlier)"),
    )
}

/// What happens to the message whose turn came.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// The order takes it: apply it ([`apply_message`]), route it and
    /// create its deliveries, and answer `ACCEPTED`.
    Apply,
    /// The order refuses it: it stays unapplied and unrouted (no
    /// deliveries, nothing held back), answered `REJECTED` with this error
    /// and dead-lettered at stage `sequence`. Its sequence is settled all
    /// the same.
    Refuse(FieldError),
}

/// Settles the message of `action` at the order's next sequence: the
/// order's progress after it, and whether the order takes it. A TERMINATEd
/// order refuses everything, a CANCELled one everything but the re-entry
/// ISSUE right after the CANCEL (`ORDER_CLOSED`); an active order refuses an
/// ISSUE (`SEQUENCE_CONFLICT`).
pub fn settle(progress: Progress, action: Action, order_number: &str) -> (Progress, Turn) {
    let seq = progress.applied.saturating_add(1);
    let settled = Progress {
        applied: seq,
        ..progress
    };
    if let Some(error) = refusal(&progress, seq, action, order_number) {
        return (settled, Turn::Refuse(error));
    }
    let closed = match action {
        Action::Terminate | Action::Cancel => Some(seq),
        Action::Issue => None,
        Action::Modify | Action::Service => progress.closed,
    };
    let applied = Progress {
        state: progress.state.after(action),
        closed,
        ..settled
    };
    (applied, Turn::Apply)
}

/// Why the order, as `progress` has it, refuses the message at `seq`.
fn refusal(progress: &Progress, seq: u32, action: Action, number: &str) -> Option<FieldError> {
    let by = progress
        .closed
        .map_or_else(String::new, |c| format!(" by sequence {c}"));
    let closed = |text: String| Some(FieldError::new(ErrorCode::OrderClosed, "order.order_number", text));
    match progress.state {
        OrderState::Terminated => closed(format!(
            "order {number} was terminated{by}; sequence {seq} was not applied"
        )),
        OrderState::Cancelled if action == Action::Issue && progress.closed == seq.checked_sub(1) => None,
        OrderState::Cancelled => closed(format!(
            "order {number} was cancelled{by}; sequence {seq} is not a re-entry ISSUE right after \
             it and was not applied"
        )),
        OrderState::Active if action == Action::Issue => Some(FieldError::new(
            ErrorCode::SequenceConflict,
            "sequence",
            format!(
                "order {number} was already issued and active when its sequence {seq} (an ISSUE \
                 that follows no CANCEL) came to be applied; it was not applied"
            ),
        )),
        OrderState::New | OrderState::Active => None,
    }
}

/// The order once `message` (of `action`) is applied to `current`, the
/// order as it stood (`None` before anything was applied). ISSUE and MODIFY
/// replace the order; a MODIFY without an image keeps the order's (the
/// partners go on receiving the latest one the court sent). TERMINATE,
/// CANCEL and SERVICE keep the order, take the message's header (action,
/// sequence, sent time) and add their own fields (termination date, cancel
/// reason, service) where they have them.
pub fn apply_message(current: Option<OrderMessage>, action: Action, message: OrderMessage) -> OrderMessage {
    match action {
        Action::Issue | Action::Modify => {
            let mut message = message;
            if action == Action::Modify && message.image.is_none() {
                message.image = current.and_then(|order| order.image);
            }
            message
        }
        Action::Terminate | Action::Cancel | Action::Service => {
            let mut order = current.unwrap_or_else(|| message.clone());
            order.action = message.action;
            order.sequence = message.sequence;
            order.sent_at = message.sent_at;
            let from = message.order;
            let to = &mut order.order;
            to.termination_date = from.termination_date.or(to.termination_date);
            to.cancel_reason = from.cancel_reason.or(to.cancel_reason.take());
            to.service = from.service.or(to.service.take());
            order
        }
    }
}

/// What a `message_id` already stored for the court means for an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// The same body: no second effect; every status of the earlier message
    /// is sent again.
    Duplicate,
    /// Another body: `CONFLICT_REJECTED` ([`conflict_error`]); the original
    /// stands.
    Conflict,
}

/// ICD §5's deduplication by `(court, message_id)`: the same body SHA-256
/// is a duplicate, another a conflict.
pub fn repeated_message_id(stored_body_sha256: &str, body_sha256: &str) -> Repeat {
    if stored_body_sha256 == body_sha256 {
        Repeat::Duplicate
    } else {
        Repeat::Conflict
    }
}

/// The error of a `CONFLICT_REJECTED` for `message_id` (as it came).
pub fn conflict_error(message_id: &str) -> FieldError {
    FieldError::new(
        ErrorCode::DuplicateConflict,
        "message_id",
        format!("message_id {message_id} was already received with a different body; the original stands"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrderImage, Service};
    use Action::{Cancel, Issue, Modify, Service as Svc, Terminate};
    use OrderState::{Active, Cancelled, New, Terminated};

    fn progress(state: OrderState, applied: u32, closed: Option<u32>) -> Progress {
        Progress { state, applied, closed }
    }

    fn waiting(list: &[(u32, Action)]) -> Vec<Waiting> {
        list.iter()
            .map(|&(sequence, action)| Waiting { sequence, action })
            .collect()
    }

    fn arrival(sequence: u32, action: Action) -> Arrival<'static> {
        Arrival {
            order_number: "26DV00001",
            sequence,
            action,
            canonical_sha256: "aaaa",
        }
    }

    /// The code an admission rejects with, or `None` when it accepts.
    fn rejection(admission: &Admission) -> Option<ErrorCode> {
        match admission {
            Admission::Accept => None,
            Admission::Reject(error) => Some(error.code),
            Admission::Duplicate { .. } => panic!("unexpected duplicate: {admission:?}"),
        }
    }

    #[test]
    fn states_read_back_as_stored_and_nothing_else() {
        for state in OrderState::ALL {
            assert_eq!(OrderState::parse(state.name()), Some(state));
        }
        for bad in ["", "active", "CLOSED", "ACTIVE "] {
            assert_eq!(OrderState::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn state_after_each_action() {
        let table = [
            (New, Issue, Active),
            (New, Modify, Active),
            (New, Svc, Active),
            (New, Terminate, Terminated),
            (New, Cancel, Cancelled),
            (Active, Issue, Active),
            (Active, Modify, Active),
            (Active, Svc, Active),
            (Active, Terminate, Terminated),
            (Active, Cancel, Cancelled),
            (Cancelled, Issue, Active),
            (Cancelled, Modify, Cancelled),
            (Terminated, Svc, Terminated),
        ];
        for (before, action, after) in table {
            assert_eq!(before.after(action), after, "{before:?} + {action:?}");
        }
    }

    #[test]
    fn position_against_the_applied_prefix() {
        let table = [
            (progress(New, 0, None), 1, Position::Next),
            (progress(New, 0, None), 2, Position::PastGap),
            (progress(Active, 3, None), 1, Position::Settled),
            (progress(Active, 3, None), 3, Position::Settled),
            (progress(Active, 3, None), 4, Position::Next),
            (progress(Active, 3, None), 9, Position::PastGap),
            (progress(Active, u32::MAX, None), u32::MAX, Position::Settled),
        ];
        for (p, seq, expected) in table {
            assert_eq!(p.position(seq), expected, "{p:?} at {seq}");
        }
    }

    /// Rule (a): the same sequence again under another `message_id`.
    #[test]
    fn same_sequence_is_a_duplicate_or_a_conflict() {
        let p = progress(Active, 1, None);
        let same = SameSequence {
            id: 41,
            message_id: "cms-1",
            canonical_sha256: Some("aaaa"),
        };
        match admit(&p, Some(&same), &[], &arrival(1, Issue)) {
            Admission::Duplicate { original_id, warning } => {
                assert_eq!(original_id, 41);
                assert_eq!(
                    (warning.code, warning.field.as_str()),
                    (ErrorCode::Duplicate, "sequence")
                );
                assert!(warning.text.contains("cms-1"), "{}", warning.text);
            }
            other => panic!("{other:?}"),
        }
        for other_sha in [Some("bbbb"), None] {
            let same = SameSequence {
                canonical_sha256: other_sha,
                ..same
            };
            let admission = admit(&p, Some(&same), &[], &arrival(1, Issue));
            assert_eq!(rejection(&admission), Some(ErrorCode::SequenceConflict));
        }
        // A held message counts the same way: the rule looks at what is
        // stored, wherever it stands.
        let held = SameSequence {
            id: 42,
            message_id: "cms-5",
            canonical_sha256: Some("aaaa"),
        };
        assert!(matches!(
            admit(&p, Some(&held), &[], &arrival(5, Modify)),
            Admission::Duplicate { original_id: 42, .. }
        ));
    }

    /// A sequence inside the applied prefix with no stored message (purged)
    /// is used up.
    #[test]
    fn a_purged_sequence_stays_used() {
        for (p, seq) in [
            (progress(Active, 3, None), 1),
            (progress(Active, 3, None), 3),
            (progress(Terminated, 4, Some(4)), 2),
        ] {
            let error = match admit(&p, None, &[], &arrival(seq, Modify)) {
                Admission::Reject(error) => error,
                other => panic!("{other:?}"),
            };
            assert_eq!(
                (error.code, error.field.as_str()),
                (ErrorCode::SequenceConflict, "sequence")
            );
            assert!(error.text.contains("already used"), "{}", error.text);
        }
    }

    /// Rules (b), (c) and (d), case by case: the applied prefix, what waits
    /// past it, the arrival, and the code it is rejected with (`None`:
    /// accepted, applied now or held).
    #[test]
    fn sequence_rules() {
        use ErrorCode::{OrderClosed as Closed, SequenceConflict as Conflict};
        /// (case, applied prefix, waiting past it, arrival's sequence and action, rejection)
        type Case<'a> = (&'a str, Progress, &'a [(u32, Action)], u32, Action, Option<ErrorCode>);
        #[rustfmt::skip]
        let table: &[Case<'_>] = &[
            // A new order.
            ("first ISSUE", progress(New, 0, None), &[], 1, Issue, None),
            ("first message past a gap waits", progress(New, 0, None), &[], 3, Modify, None),
            ("ISSUE past a gap may follow a missing CANCEL", progress(New, 0, None), &[], 3, Issue, None),
            ("ISSUE after a waiting MODIFY", progress(New, 0, None), &[(2, Modify)], 3, Issue, Some(Conflict)),
            ("ISSUE after a waiting CANCEL", progress(New, 0, None), &[(2, Cancel)], 3, Issue, None),
            // An active order.
            ("MODIFY", progress(Active, 1, None), &[], 2, Modify, None),
            ("SERVICE past a gap", progress(Active, 1, None), &[], 4, Svc, None),
            ("TERMINATE", progress(Active, 2, None), &[], 3, Terminate, None),
            ("ISSUE of an active order", progress(Active, 1, None), &[], 2, Issue, Some(Conflict)),
            ("ISSUE after a waiting MODIFY", progress(Active, 1, None), &[(2, Modify)], 3, Issue, Some(Conflict)),
            ("ISSUE after a missing sequence", progress(Active, 1, None), &[], 3, Issue, None),
            ("ISSUE after a waiting CANCEL", progress(Active, 1, None), &[(2, Cancel)], 3, Issue, None),
            ("MODIFY after a waiting TERMINATE", progress(Active, 1, None), &[(2, Terminate)], 3, Modify, Some(Closed)),
            ("MODIFY filling a gap below a waiting TERMINATE", progress(Active, 1, None), &[(3, Terminate)], 2, Modify, None),
            ("MODIFY after a waiting CANCEL", progress(Active, 1, None), &[(2, Cancel)], 3, Modify, Some(Closed)),
            ("MODIFY past a missing re-entry after a waiting CANCEL", progress(Active, 1, None), &[(2, Cancel)], 4, Modify, None),
            ("re-entry after a waiting CANCEL, then a later re-entry", progress(Active, 1, None), &[(2, Cancel), (3, Issue)], 4, Issue, Some(Conflict)),
            // A terminated order.
            ("MODIFY after TERMINATE", progress(Terminated, 3, Some(3)), &[], 4, Modify, Some(Closed)),
            ("ISSUE after TERMINATE", progress(Terminated, 3, Some(3)), &[], 4, Issue, Some(Closed)),
            ("past a gap after TERMINATE", progress(Terminated, 3, Some(3)), &[], 7, Svc, Some(Closed)),
            ("terminated, closing sequence unknown", progress(Terminated, 3, None), &[], 4, Modify, Some(Closed)),
            // A cancelled order.
            ("re-entry ISSUE right after CANCEL", progress(Cancelled, 3, Some(3)), &[], 4, Issue, None),
            ("MODIFY after CANCEL", progress(Cancelled, 3, Some(3)), &[], 4, Modify, Some(Closed)),
            ("ISSUE one past the re-entry, next to it missing", progress(Cancelled, 3, Some(3)), &[], 5, Issue, Some(Closed)),
            ("ISSUE past a missing re-entry and a missing CANCEL", progress(Cancelled, 3, Some(3)), &[], 6, Issue, None),
            ("ISSUE past a missing re-entry after a waiting MODIFY", progress(Cancelled, 3, Some(3)), &[(5, Modify)], 6, Issue, Some(Closed)),
            ("MODIFY past a missing re-entry", progress(Cancelled, 3, Some(3)), &[], 5, Modify, None),
            ("MODIFY after a waiting re-entry", progress(Cancelled, 3, Some(3)), &[(4, Issue)], 5, Modify, None),
            ("ISSUE after a waiting re-entry", progress(Cancelled, 3, Some(3)), &[(4, Issue)], 5, Issue, Some(Conflict)),
            ("MODIFY past a waiting non-re-entry", progress(Cancelled, 3, Some(3)), &[(4, Modify)], 5, Modify, Some(Closed)),
            // A re-entered order is an active one.
            ("ISSUE after a re-entry", progress(Active, 4, None), &[], 5, Issue, Some(Conflict)),
            ("MODIFY after a re-entry", progress(Active, 4, None), &[], 5, Modify, None),
        ];
        for &(case, p, list, seq, action, expected) in table {
            let admission = admit(&p, None, &waiting(list), &arrival(seq, action));
            assert_eq!(rejection(&admission), expected, "{case}: {admission:?}");
            if let Admission::Reject(error) = &admission {
                let field = if error.code == ErrorCode::OrderClosed {
                    "order.order_number"
                } else {
                    "sequence"
                };
                assert_eq!(error.field, field, "{case}");
                assert!(error.text.contains("26DV00001"), "{case}: {}", error.text);
            }
        }
    }

    /// The closing sequence a rejection names: the latest known closing
    /// message, or the prefix when the row does not say.
    #[test]
    fn closed_rejections_name_the_closing_sequence() {
        let text = |p: Progress, list: &[(u32, Action)], seq, action| match admit(
            &p,
            None,
            &waiting(list),
            &arrival(seq, action),
        ) {
            Admission::Reject(error) => error.text,
            other => panic!("{other:?}"),
        };
        assert!(
            text(progress(Terminated, 3, Some(2)), &[], 4, Modify).contains("terminated (by sequence 2 or earlier)")
        );
        assert!(text(progress(Terminated, 3, None), &[], 4, Modify).contains("terminated (by sequence 3 or earlier)"));
        assert!(
            text(progress(Active, 1, None), &[(2, Cancel)], 3, Modify).contains("cancelled (by sequence 2 or earlier)")
        );
    }

    /// The order as each message's turn comes: what it takes, what it
    /// refuses, and its progress after.
    #[test]
    fn settling_in_sequence() {
        use ErrorCode::{OrderClosed as Closed, SequenceConflict as Conflict};
        #[rustfmt::skip]
        let table: &[(&str, Progress, Action, Option<ErrorCode>, Progress)] = &[
            ("ISSUE of a new order", progress(New, 0, None), Issue, None, progress(Active, 1, None)),
            ("MODIFY of a new order", progress(New, 0, None), Modify, None, progress(Active, 1, None)),
            ("MODIFY", progress(Active, 1, None), Modify, None, progress(Active, 2, None)),
            ("SERVICE", progress(Active, 2, None), Svc, None, progress(Active, 3, None)),
            ("TERMINATE", progress(Active, 2, None), Terminate, None, progress(Terminated, 3, Some(3))),
            ("CANCEL", progress(Active, 2, None), Cancel, None, progress(Cancelled, 3, Some(3))),
            ("ISSUE of an active order", progress(Active, 2, None), Issue, Some(Conflict), progress(Active, 3, None)),
            ("anything after TERMINATE", progress(Terminated, 3, Some(3)), Modify, Some(Closed), progress(Terminated, 4, Some(3))),
            ("ISSUE after TERMINATE", progress(Terminated, 3, Some(3)), Issue, Some(Closed), progress(Terminated, 4, Some(3))),
            ("re-entry right after CANCEL", progress(Cancelled, 3, Some(3)), Issue, None, progress(Active, 4, None)),
            ("MODIFY after CANCEL", progress(Cancelled, 3, Some(3)), Modify, Some(Closed), progress(Cancelled, 4, Some(3))),
            ("ISSUE not right after CANCEL", progress(Cancelled, 4, Some(3)), Issue, Some(Closed), progress(Cancelled, 5, Some(3))),
            ("CANCEL after a re-entry", progress(Active, 4, None), Cancel, None, progress(Cancelled, 5, Some(5))),
        ];
        for &(case, before, action, refused, after) in table {
            let (progress, turn) = settle(before, action, "26DV00001");
            assert_eq!(progress, after, "{case}");
            match (turn, refused) {
                (Turn::Apply, None) => {}
                (Turn::Refuse(error), Some(code)) => {
                    assert_eq!(error.code, code, "{case}");
                    let field = if code == ErrorCode::OrderClosed {
                        "order.order_number"
                    } else {
                        "sequence"
                    };
                    assert_eq!(error.field, field, "{case}");
                    assert!(
                        error.text.contains(&format!("sequence {}", after.applied)),
                        "{case}: {}",
                        error.text
                    );
                }
                (turn, refused) => panic!("{case}: {turn:?}, expected {refused:?}"),
            }
        }
    }

    /// A lifecycle in sequence, with a refusal in the middle: the refused
    /// message settles its sequence and changes nothing else.
    #[test]
    fn a_lifecycle_settles_one_sequence_at_a_time() {
        let mut p = Progress::NEW;
        let mut turns = Vec::new();
        for action in [Issue, Modify, Cancel, Modify, Issue, Svc, Terminate, Modify] {
            let (next, turn) = settle(p, action, "26DV00001");
            turns.push(matches!(turn, Turn::Apply));
            p = next;
        }
        assert_eq!(turns, [true, true, true, false, false, false, false, false]);
        // The MODIFY at 4 was refused, so the ISSUE at 5 came too late to
        // re-enter, and the cancelled order refuses everything after it.
        assert_eq!(p, progress(Cancelled, 8, Some(3)));
    }

    fn message(action: Action, sequence: u32, case: &str) -> OrderMessage {
        let mut m = OrderMessage {
            action: Some(action),
            sequence: Some(sequence),
            ..OrderMessage::default()
        };
        m.order.case_number = Some(case.into());
        m
    }

    fn with_image(mut m: OrderMessage, sha: &str) -> OrderMessage {
        m.image = Some(OrderImage::new("application/pdf", sha, Vec::new()));
        m
    }

    #[test]
    fn issue_and_modify_replace_the_order() {
        let issue = with_image(message(Issue, 1, "A"), "i1");
        assert_eq!(apply_message(None, Issue, issue.clone()), issue);
        let modify = message(Modify, 2, "B");
        let after = apply_message(Some(issue.clone()), Modify, modify.clone());
        assert_eq!(after.order.case_number.as_deref(), Some("B"));
        assert_eq!(after.sequence, Some(2));
        // A MODIFY without an image keeps the order's; with one, it replaces it.
        assert_eq!(after.image.as_ref().map(|i| i.sha256.as_str()), Some("i1"));
        let modify = with_image(message(Modify, 2, "B"), "m2");
        let after = apply_message(Some(issue.clone()), Modify, modify);
        assert_eq!(after.image.as_ref().map(|i| i.sha256.as_str()), Some("m2"));
        // An ISSUE never keeps the old image (a re-entry is a new order).
        let reentry = message(Issue, 4, "C");
        assert_eq!(apply_message(Some(issue), Issue, reentry.clone()), reentry);
    }

    #[test]
    fn terminate_cancel_and_service_add_their_fields() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let mut issue = with_image(message(Issue, 1, "A"), "i1");
        issue.order.cancel_reason = Some("old".into());
        let mut service = message(Svc, 2, "ignored");
        service.order.service = Some(Service::default());
        let after = apply_message(Some(issue.clone()), Svc, service);
        assert_eq!((after.action, after.sequence), (Some(Svc), Some(2)));
        assert_eq!(
            after.order.case_number.as_deref(),
            Some("A"),
            "the order's content stays"
        );
        assert!(after.order.service.is_some());
        assert_eq!(
            after.order.cancel_reason.as_deref(),
            Some("old"),
            "a field the message lacks stays"
        );
        assert_eq!(after.image.as_ref().map(|i| i.sha256.as_str()), Some("i1"));

        let mut terminate = message(Terminate, 3, "ignored");
        terminate.order.termination_date = Some(date);
        let after = apply_message(Some(after), Terminate, terminate);
        assert_eq!(after.order.termination_date, Some(date));
        assert!(after.order.service.is_some());

        let mut cancel = message(Cancel, 4, "ignored");
        cancel.order.cancel_reason = Some("new".into());
        let after = apply_message(Some(after), Cancel, cancel);
        assert_eq!(after.order.cancel_reason.as_deref(), Some("new"));
        assert_eq!(after.order.termination_date, Some(date));
        assert_eq!(after.action, Some(Cancel));

        // With no order yet, the message is its own base.
        let lone = message(Svc, 1, "Z");
        assert_eq!(apply_message(None, Svc, lone.clone()), lone);
    }

    #[test]
    fn a_repeated_message_id_is_a_duplicate_or_a_conflict() {
        assert_eq!(repeated_message_id("ab", "ab"), Repeat::Duplicate);
        assert_eq!(repeated_message_id("ab", "cd"), Repeat::Conflict);
        let error = conflict_error("cms-1");
        assert_eq!(
            (error.code, error.field.as_str()),
            (ErrorCode::DuplicateConflict, "message_id")
        );
        assert!(error.text.contains("cms-1"));
    }
}
