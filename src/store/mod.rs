//! The store: Porter's durable record, behind one [`Store`] trait.
//!
//! # Design note
//! Everything Porter promises rests on this module. An inbound AMQP delivery
//! is acknowledged only once its effect is committed here; waiting and
//! retried work lives here, not unacknowledged in RabbitMQ (ICD §1, §9).
//!
//! - **Backends.** One implementation, [`sql::SqlStore`], over sqlx's `Any`
//!   driver: a SQLite file by default (WAL, `synchronous=FULL`) or PostgreSQL
//!   by URL (`synchronous_commit=on`). Each backend has its own migrations
//!   under `migrations/sqlite` and `migrations/postgres`; the SQL of the
//!   queries is portable. The same test suite runs against both.
//! - **Group commit.** The write operations take batches ([`Store::intake`],
//!   [`Store::record_deliveries`]) and apply each batch in one transaction,
//!   so there is one fsync per batch, not per message.
//! - **Outboxes.** Statuses and dead letters are rows first and AMQP
//!   messages second: the publisher reads the rows not yet confirmed
//!   ([`Store::pending_statuses`]) and marks them once RabbitMQ confirms. A
//!   crash between the two re-publishes, which the ICD allows (statuses are
//!   at-least-once and carry `StatusSequence`).
//! - **Tables.** `inbound_messages` (raw bytes, SHA-256, outcome: the
//!   deduplication record of ICD §5), `conflicts` (each arrival of a known
//!   `message_id` with a different body: its bytes, SHA-256 and time),
//!   `orders` (current state per order key), `deliveries` (one per inbound
//!   message and routed partner, in sequence order), `partner_attempts`
//!   (every request and response), `statuses` and `dead_letters`.
//! - **Status order.** Every status under one correlation id (inbound
//!   `message_id`) takes its `StatusSequence` from one counter, the stored
//!   message's, `CONFLICT_REJECTED` included, so they are totally ordered.
//! - **Orders stay closed.** Messages are applied to their order in
//!   sequence. A message that waited past a gap and finds the order closed
//!   (by a TERMINATE or CANCEL that filled the gap, ICD §5) is not applied:
//!   its deliveries become `DEAD`, with a `DEAD_LETTERED` status and a dead
//!   letter at stage `sequence` (reason `ORDER_CLOSED`) per routed partner.
//! - **Text.** Every text the store writes or looks up from input has NUL
//!   replaced by U+FFFD (PostgreSQL refuses NUL in `TEXT`).

pub mod sql;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{Action, ErrorCode, FieldError, OrderMessage, PartnerId, PartnerRecordId, StatusMessage};

pub use sql::SqlStore;

/// A store failure. Callers treat every variant as transient for the work
/// in hand: nothing was committed, so nothing is acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported store URL {0:?} (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One inbound AMQP message as received.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub court_ori: String,
    pub message_id: String,
    pub body: Vec<u8>,
    /// Lowercase hex SHA-256 of `body`.
    pub body_sha256: String,
    pub content_type: String,
    pub layout: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// What parsing and validation decided about a new inbound message.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Valid: route it to these partners.
    Accepted {
        order: Box<OrderMessage>,
        /// Hex SHA-256 of the canonical JSON of `order` (for ICD §5's
        /// "same sequence under a new message_id" rule).
        canonical_sha256: String,
        partners: Vec<PartnerId>,
        warnings: Vec<FieldError>,
    },
    /// Invalid: one `REJECTED` status and a dead letter at stage `validate`.
    Rejected {
        order_number: Option<String>,
        sequence: Option<u32>,
        errors: Vec<FieldError>,
    },
}

/// One inbound message and its verdict, for [`Store::intake`].
#[derive(Debug, Clone)]
pub struct IntakeItem {
    pub inbound: InboundMessage,
    pub verdict: Verdict,
}

/// What [`Store::intake`] did with one item.
#[derive(Debug, Clone)]
pub enum IntakeOutcome {
    /// First arrival: stored with the statuses and dead letters it produced:
    /// its own `ACCEPTED`, or `REJECTED` plus its dead letter; and, when an
    /// accepted message fills a sequence gap, the `DEAD_LETTERED` statuses and
    /// dead letters of the waiting messages it left refused (a closed order).
    Stored {
        statuses: Vec<StoredStatus>,
        dead_letters: Vec<StoredDeadLetter>,
    },
    /// Same court, `message_id` and body as before: nothing changed. These
    /// are every status recorded for it so far, to be sent again.
    Duplicate { statuses: Vec<StoredStatus> },
    /// Same court and `message_id`, different body: the original is
    /// untouched; this `CONFLICT_REJECTED` status answers the newcomer (the
    /// same status again when the same conflicting body comes again).
    Conflict { status: StoredStatus },
}

/// A status row: the court it goes to and the message itself.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStatus {
    pub id: i64,
    pub message: StatusMessage,
}

/// The stage at which a message became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterStage {
    /// Parsing, validation and the intake's sequence rules (`REJECTED`).
    Validate,
    /// Applying an accepted message in sequence, once its gap filled: the
    /// order was closed (`ORDER_CLOSED`) or already issued
    /// (`SEQUENCE_CONFLICT`) by then. Nothing was sent; not to be replayed.
    Sequence,
    /// Delivery to a partner.
    Deliver,
}

impl DeadLetterStage {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStage::Validate => "validate",
            DeadLetterStage::Sequence => "sequence",
            DeadLetterStage::Deliver => "deliver",
        }
    }
}

/// A dead letter (ICD §9): the original bytes, the stage, the reason, the
/// attempts and the times.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub court_ori: String,
    pub message_id: String,
    pub order_number: Option<String>,
    pub sequence: Option<u32>,
    pub stage: String,
    pub partner: Option<PartnerId>,
    /// The ICD §4 code that sums it up (`MISSING`, `PARTNER_REJECTED`, …).
    pub reason: String,
    pub errors: Vec<FieldError>,
    pub body: Vec<u8>,
    pub content_type: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// Filters for [`Store::dead_letters`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub court_ori: Option<String>,
    pub stage: Option<String>,
    pub partner: Option<PartnerId>,
    pub reason: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

/// The partners one delivery loop serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerSet {
    One(PartnerId),
    /// Every LEA agency but these ORIs (whose circuits are open).
    Lea {
        except: Vec<String>,
    },
}

/// Work for a partner adapter: one inbound message to one partner.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub id: i64,
    pub partner: PartnerId,
    pub court_ori: String,
    pub message_id: String,
    pub order_number: String,
    pub sequence: u32,
    pub action: Action,
    /// 0 until an edit-and-replay (ICD §5).
    pub revision: u32,
    /// The canonical message as accepted.
    pub order: OrderMessage,
    /// The whole order as it stands once this message is applied (what the
    /// HTTP partners receive, ICD §7–§8).
    pub state: OrderMessage,
    /// The CARPOS record id, once the order's `EPO` was acknowledged.
    pub nic: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// One request to a partner and what came back.
#[derive(Debug, Clone)]
pub struct PartnerAttempt {
    pub at: DateTime<Utc>,
    pub request: Vec<u8>,
    /// The partner's answer, when there was one.
    pub response: Option<String>,
    /// A transport problem, when there was no answer.
    pub error: Option<String>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    /// The partner accepted: `PARTNER_ACCEPTED` with these ids. `nic` is set
    /// when this answer gave the order its CARPOS record id.
    Accepted {
        record_ids: Vec<PartnerRecordId>,
        nic: Option<String>,
        warnings: Vec<FieldError>,
    },
    /// A permanent rejection: `PARTNER_REJECTED` and a dead letter.
    Rejected { reason: String, warnings: Vec<FieldError> },
    /// A transient failure: try again at `next_attempt_at`.
    Retry {
        next_attempt_at: DateTime<Utc>,
        reason: String,
    },
    /// Given up (retries exhausted, gap timeout, unknown order):
    /// `DEAD_LETTERED` and a dead letter.
    DeadLettered { code: ErrorCode, reason: String },
}

/// The result of one delivery attempt, for [`Store::record_deliveries`].
#[derive(Debug, Clone)]
pub struct DeliveryResult {
    pub delivery_id: i64,
    pub attempt: PartnerAttempt,
    pub outcome: DeliveryOutcome,
}

/// The statuses and dead letters one recorded result produced.
#[derive(Debug, Clone, Default)]
pub struct Produced {
    pub statuses: Vec<StoredStatus>,
    pub dead_letters: Vec<StoredDeadLetter>,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryView {
    pub id: i64,
    pub partner: PartnerId,
    pub state: String,
    pub attempts: u32,
}

/// Porter's durable record. See the module note.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a batch of intake decisions in one transaction, in order.
    /// Deduplicates by `(court, message_id, body SHA-256)` and keeps each
    /// conflicting arrival; for accepted messages applies ICD §5's sequence
    /// rules (`SEQUENCE_CONFLICT`, `ORDER_CLOSED`, re-entry after CANCEL,
    /// sequence 1 must be new), queues one delivery per routed partner, and
    /// applies to the order every message no longer behind a gap, refusing
    /// those the order is closed to by then.
    async fn intake(&self, items: Vec<IntakeItem>) -> StoreResult<Vec<IntakeOutcome>>;

    /// Deliveries for `partner` that may go now: pending, due, and with
    /// every earlier sequence of the same order to that partner finished.
    /// At most one per order, oldest first.
    async fn due_deliveries(
        &self,
        partner: &PartnerId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryJob>> {
        self.due_deliveries_in(&PartnerSet::One(partner.clone()), now, limit)
            .await
    }

    /// [`Store::due_deliveries`] for a set of partners: at most one per
    /// order and partner.
    async fn due_deliveries_in(
        &self,
        partners: &PartnerSet,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryJob>>;

    /// An order image by its SHA-256: `(mime type, bytes)`.
    async fn image(&self, sha256: &str) -> StoreResult<Option<(String, Vec<u8>)>>;

    /// Records a batch of attempts and their outcomes in one transaction,
    /// with the statuses and dead letters they produce.
    async fn record_deliveries(&self, results: Vec<DeliveryResult>) -> StoreResult<Produced>;

    /// Statuses not yet confirmed by RabbitMQ, oldest first.
    async fn pending_statuses(&self, limit: u32) -> StoreResult<Vec<StoredStatus>>;
    async fn mark_statuses_published(&self, ids: &[i64]) -> StoreResult<()>;

    /// Dead letters not yet confirmed on `por.dead`, oldest first.
    async fn pending_dead_letters(&self, limit: u32) -> StoreResult<Vec<StoredDeadLetter>>;
    async fn mark_dead_letters_published(&self, ids: &[i64]) -> StoreResult<()>;

    /// Every status under one correlation id (inbound `message_id`), by
    /// status sequence: the stored message's, and the `CONFLICT_REJECTED`
    /// of each conflicting arrival among them.
    async fn statuses_for_message(&self, court_ori: &str, message_id: &str) -> StoreResult<Vec<StoredStatus>>;

    /// The deliveries of one inbound message.
    async fn deliveries_for_message(&self, court_ori: &str, message_id: &str) -> StoreResult<Vec<DeliveryView>>;

    async fn dead_letters(&self, filter: &DeadLetterFilter) -> StoreResult<Vec<StoredDeadLetter>>;
    async fn dead_letter(&self, id: i64) -> StoreResult<Option<StoredDeadLetter>>;

    /// Every partner attempt of one delivery, oldest first.
    async fn partner_attempts(&self, delivery_id: i64) -> StoreResult<Vec<PartnerAttempt>>;

    /// Gives up the messages of `court_ori` that have waited for a missing
    /// earlier sequence since before `cutoff` (the court's gap timeout, ICD
    /// §5): each gets `ACCEPTED` and `DEAD_LETTERED` `SEQUENCE_GAP` and a
    /// dead letter at stage `sequence`, and its sequence is freed.
    async fn expire_gaps(&self, court_ori: &str, cutoff: DateTime<Utc>) -> StoreResult<Produced>;

    /// Forgets deduplication records older than `cutoff` (ICD §5: 400 days
    /// by default). Returns how many inbound messages were forgotten.
    async fn purge_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}
