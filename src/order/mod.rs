//! The rules of an order's life and of its deliveries, with no I/O: what
//! ICD §5 says happens to a message given what is known of its order, and
//! what a partner's answer does to a delivery.
//!
//! # Design note
//! - **State in enums, decisions as values.** The order's state
//!   ([`OrderState`]) and a delivery's ([`DeliveryState`]) are enums. Every
//!   rule is a function that takes the state as read and the input (an
//!   arriving message, the message whose turn came, a partner's answer) and
//!   returns what must happen: [`Admission`] for an arrival, [`Turn`] for a
//!   message applied in sequence, [`DeliveryStep`] for an attempt's outcome.
//!   The caller (the store, `src/store/sql/`) reads the rows, calls the rule
//!   and carries out the answer; the rule never reads or writes anything.
//! - **The store owns what to read.** A rule names what it needs as plain
//!   data ([`Progress`], [`SameSequence`], [`Waiting`]); the store reads
//!   exactly that inside its transaction, under its locks. A value the store
//!   cannot turn into these types (an unknown state, a sequence out of
//!   range) is corrupt and an error there, never a default here.
//! - **Texts with the rules.** The errors and warnings a rule produces
//!   (code, field and the sentence a court reads) are built here, so a rule
//!   and its explanation change together.
//! - **Tested as tables.** Each module tests its rules case by case without a
//!   database; the store's tests check the same rules end to end on SQLite
//!   and PostgreSQL.
//!
//! # Modules
//! - [`lifecycle`]: an order's state, ICD §5's sequence rules and
//!   deduplication decisions, refusals, and applying a message to the order.
//! - [`delivery`]: a delivery's state and what an attempt's outcome does to it.

pub mod delivery;
pub mod lifecycle;

pub use delivery::{DeliveryEffect, DeliveryReport, DeliveryState, DeliveryStep};
pub use lifecycle::{Admission, Arrival, OrderState, Position, Progress, Repeat, SameSequence, Turn, Waiting};
