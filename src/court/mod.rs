//! Court-side adapters: programs that run for a court, next to its CMS, and
//! speak to Porter exactly as the ICD asks a court to (`porter court …`).
//!
//! # Design note
//!
//! An adapter here is a *court*, not part of the broker. It holds no state
//! of its own beyond what it keeps on disk for the court, uses only what a
//! court may use on RabbitMQ (publish to `por.inbound` with its ORI as the
//! routing key; it declares nothing), and publishes with publisher confirms
//! and `mandatory`, treating a `basic.return` or a nack as a failure. It
//! relies on the broker's deduplication (ICD §5: same court, `message_id`
//! and body) for crash safety, so its message ids must be deterministic:
//! the same input always gives the same id and the same bytes.
//!
//! - [`file_drop`]: `porter court file-drop`, which watches a directory for
//!   batch files (ICD §3, [`crate::formats::batch`]) and publishes each order
//!   message of each well-framed file.

pub mod file_drop;
