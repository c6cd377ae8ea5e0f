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
//!   it gets a `REJECTED` status and a dead letter at stage `sequence`
//!   (reason `ORDER_CLOSED`, or `SEQUENCE_CONFLICT` for an ISSUE that finds
//!   the order active). It was never routed, so it has no deliveries.
//! - **Text.** Every text the store writes or looks up from input has NUL
//!   replaced by U+FFFD (PostgreSQL refuses NUL in `TEXT`).
//! - **Images once.** An order's signed image (up to 10 MiB) is kept once,
//!   by SHA-256, in `images`, written in the intake transaction that stores
//!   the accepted message. Every JSON copy of the order (`canonical_json`,
//!   each later message's `state_json`, `orders.order_json`, `revisions`)
//!   holds a reference (`mime_type`, `sha256`, `size`; see
//!   [`crate::model::OrderImage`]), never the bytes, so a job or a record
//!   reads kilobytes, not megabytes. The raw message body keeps the court's
//!   original bytes. The same-sequence duplicate rule compares canonical
//!   content with the reference, so with the image's SHA-256. A partner
//!   attempt that inlined the image (DOJ) is kept without its base64 text
//!   and with the image's SHA-256 and offset ([`AttemptImage`]); the
//!   attempt download puts it back. Due-delivery and record queries select
//!   neither `images.data` nor a raw body (a dead letter copies the body
//!   when one is made).
//! - **Operator actions** on dead letters (ICD §9: replay, edit-and-replay,
//!   discard) are store operations, each one transaction with its audit row
//!   (table `audit`); see [`sql`]'s `operations` module for the rules. A
//!   refused action ([`Refusal`]) changes nothing.

pub mod lead;
pub mod sql;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{Action, ErrorCode, FieldError, OrderMessage, PartnerId, PartnerRecordId, StatusMessage};

pub use lead::Lead;
pub use sql::SqlStore;

/// A store failure. Nothing was committed, so nothing is acknowledged.
/// Callers tell an outage of the store ([`StoreError::is_outage`]: wait
/// and try again, however long) from a failure of the work in hand (an
/// item the store cannot take, which the intake gives up after a few tries).
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
    /// The group transaction an operation ran in was not kept (see
    /// `sql::group`); another operation of the group got the cause.
    #[error("the store's group commit failed: {0}")]
    GroupFailed(String),
}

impl StoreError {
    /// Whether this is the store failing as a whole (unreachable, restarting,
    /// out of resources, busy, a schema or driver fault) rather than the
    /// work in hand. Only a failure the data itself causes counts as not an
    /// outage: a constraint it breaks, a value the database cannot hold
    /// (PostgreSQL classes 22, 23 and 54; SQLite `TOOBIG`, `CONSTRAINT`,
    /// `MISMATCH` and `RANGE`), a value that cannot be encoded or decoded,
    /// and stored data found corrupt. Anything unknown is an outage, so a
    /// doubt never turns good work into a dead letter.
    pub fn is_outage(&self) -> bool {
        match self {
            StoreError::Database(e) => !caused_by_data(e),
            StoreError::Corrupt(_) => false,
            StoreError::Migrate(_) | StoreError::UnsupportedUrl(_) | StoreError::GroupFailed(_) => true,
        }
    }
}

/// See [`StoreError::is_outage`].
fn caused_by_data(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            if db.kind() != sqlx::error::ErrorKind::Other {
                return true;
            }
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return matches!(pg.code().get(..2), Some("22" | "23" | "54"));
            }
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                const TOOBIG: u32 = 18;
                const CONSTRAINT: u32 = 19;
                const MISMATCH: u32 = 20;
                const RANGE: u32 = 25;
                let primary = db.code().and_then(|c| c.parse::<u32>().ok()).map(|c| c & 0xff);
                return matches!(primary, Some(TOOBIG | CONSTRAINT | MISMATCH | RANGE));
            }
            false
        }
        sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => true,
        _ => false,
    }
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
        /// The canonical message. Its image, if any, carries its bytes
        /// (checked against its SHA-256 by the validator): the store keeps
        /// them once in `images` and the rest of the order by reference.
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
    /// accepted message fills a sequence gap, the `REJECTED` statuses and
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
    /// Storing at intake: the store refused the message itself, try after
    /// try ([`Store::intake_unstorable`]). Nothing was routed or sent.
    Store,
}

impl DeadLetterStage {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStage::Validate => "validate",
            DeadLetterStage::Sequence => "sequence",
            DeadLetterStage::Deliver => "deliver",
            DeadLetterStage::Store => "store",
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
    /// The original bytes; empty in a list ([`Store::dead_letters`]), which
    /// never reads them: see `body_bytes`.
    pub body: Vec<u8>,
    /// The length of the original bytes.
    pub body_bytes: u64,
    pub content_type: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// How an operator closed it; `None` while open.
    pub resolution: Option<Resolution>,
}

/// How an operator closed a dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// `REPLAYED`, `EDIT_REPLAYED` or `DISCARDED`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub by: String,
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
    /// `Some(true)`: only open ones; `Some(false)`: only resolved ones.
    pub open: Option<bool>,
    pub limit: Option<u32>,
}

/// Who acts on a dead letter, and why (both required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAction {
    pub operator: String,
    pub reason: String,
}

/// The operator actions the audit table records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Replay,
    EditReplay,
    Discard,
    /// One replay of a bulk replay by filter.
    BulkReplay,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Replay => "REPLAY",
            AuditAction::EditReplay => "EDIT_REPLAY",
            AuditAction::Discard => "DISCARD",
            AuditAction::BulkReplay => "BULK_REPLAY",
        }
    }
}

/// One audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub operator: String,
    pub action: String,
    pub dead_letter_id: i64,
    pub reason: String,
    /// What the action did: delivery, revision, dead letters it produced, ….
    pub details: serde_json::Value,
}

/// Filters for [`Store::audit`]; `None` means any. Newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub dead_letter_id: Option<i64>,
    pub operator: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

/// Why an operator action was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("no dead letter {0}")]
    NotFound(i64),
    #[error("an operator and a reason are required")]
    ReasonRequired,
    #[error("dead letter {id} is already resolved ({kind})")]
    Resolved { id: i64, kind: String },
    #[error("partner {0} already accepted this message; Porter does not replay it")]
    AlreadyAccepted(String),
    #[error("cannot replay: {0}")]
    NotReplayable(String),
    #[error("the edited order is invalid")]
    InvalidEdit(Vec<FieldError>),
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// An operator action that did not happen: refused, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> Self {
        ActionError::Store(StoreError::Database(e))
    }
}

/// What an operator action did.
#[derive(Debug, Clone, Default)]
pub struct ActionDone {
    pub dead_letter_id: i64,
    /// The delivery it put back in line or discarded, if any.
    pub delivery_id: Option<i64>,
    /// The delivery's revision afterwards.
    pub revision: Option<u32>,
    /// Statuses and dead letters to publish (a discarded EPO's later CLETS
    /// messages, `DEAD_LETTERED` with `UNKNOWN_ORDER`).
    pub produced: Produced,
    pub audit_id: i64,
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

/// What a broker asks for when it claims deliveries
/// ([`Store::claim_deliveries`]).
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub partners: PartnerSet,
    /// The most deliveries this claim takes for any one partner (one LEA
    /// agency counts as one partner), unless `room` says less.
    pub per_partner: u32,
    /// Partners with less room than `per_partner`, because some of their
    /// deliveries are already in flight; `0` takes none of theirs.
    pub room: Vec<(PartnerId, u32)>,
    /// The most deliveries in all.
    pub limit: u32,
    /// The claiming broker (its lease owner name).
    pub owner: String,
    pub now: DateTime<Utc>,
    /// When the lease ends unless renewed.
    pub until: DateTime<Utc>,
}

/// Work for a partner adapter: one inbound message to one partner.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub id: i64,
    /// The fencing token of the claim that handed out this job: its result
    /// is recorded only while the delivery still carries it
    /// ([`DeliveryResult::lease_token`]).
    pub lease_token: i64,
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
    /// Attempts made so far (since the latest operator replay).
    pub attempts: u32,
    /// When the first of those attempts was made; `None` before it. The
    /// retry max age counts from it (see [`crate::delivery::retry`]).
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// When the delivery was created, or last replayed by an operator.
    pub created_at: DateTime<Utc>,
    /// When the content sent under this delivery's key (MCN or
    /// Idempotency-Key) was made: the delivery's creation at revision 0,
    /// else the edit that made its revision. Neither a resend nor a plain
    /// replay moves it, so a request that needs a time (the LEA image
    /// link's expiry) takes it from here and stays byte-identical.
    pub key_created_at: DateTime<Utc>,
}

/// One request to a partner and what came back.
#[derive(Debug, Clone)]
pub struct PartnerAttempt {
    pub at: DateTime<Utc>,
    /// The request as recorded: when it inlined an order image, without the
    /// image's base64 text (see `image`).
    pub request: Vec<u8>,
    /// The order image the request inlined, by reference.
    pub image: Option<AttemptImage>,
    /// The partner's answer, when there was one.
    pub response: Option<String>,
    /// A transport problem, when there was no answer.
    pub error: Option<String>,
}

/// Where an inlined order image was cut out of a recorded request: the
/// request as sent is `request[..offset]`, the image's base64 text, then
/// `request[offset..]` (see [`crate::delivery::http::rebuild_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptImage {
    /// Lowercase hex SHA-256 of the image (its key in the store's images).
    pub sha256: String,
    /// The byte offset in the recorded request where the text stood.
    pub offset: usize,
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
    /// The job's [`DeliveryJob::lease_token`]. A result under an older
    /// token (another broker has claimed the delivery since) changes
    /// nothing but the attempt history.
    pub lease_token: i64,
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

    /// Records an intake item that [`Store::intake`] refused, try after try,
    /// for a reason of its own (not an outage): in one transaction, the
    /// message (outcome `REJECTED`, so a redelivery is a duplicate), a
    /// `REJECTED` status (`INVALID_FORMAT` on field `message`, as for any
    /// internal error at intake) and a dead letter at stage `store` with
    /// the original bytes. Nothing about its order changes. A message
    /// already stored (the earlier try did commit) gets its usual
    /// `Duplicate` or `Conflict` outcome instead.
    async fn intake_unstorable(&self, item: IntakeItem) -> StoreResult<IntakeOutcome>;

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

    /// Claims due deliveries for one broker: like
    /// [`Store::due_deliveries_in`], but only deliveries no other broker
    /// holds a live lease on, at most `per_partner` (or the partner's
    /// `room`) per partner, oldest first, and each comes back leased to
    /// `owner` until `until` under a new fencing token. On PostgreSQL the
    /// rows are taken with `FOR UPDATE SKIP LOCKED`, so brokers claiming at
    /// once never take the same delivery and never wait for each other.
    async fn claim_deliveries(&self, request: &ClaimRequest) -> StoreResult<Vec<DeliveryJob>>;

    /// Extends `owner`'s leases on these `(delivery id, token)` pairs to
    /// `until`; returns the ids whose lease it no longer holds.
    async fn renew_leases(&self, owner: &str, held: &[(i64, i64)], until: DateTime<Utc>) -> StoreResult<Vec<i64>>;

    /// Ends every lease `owner` holds, so that other brokers may take those
    /// deliveries at once (a broker shutting down). Returns how many.
    async fn release_leases(&self, owner: &str) -> StoreResult<u64>;

    /// When the next delivery for `partners` that is not due now falls due
    /// (a retry's time). `None` when there is none. Leases that run out are
    /// not counted: a scheduler looks again every few seconds anyway.
    async fn next_due_at(&self, partners: &PartnerSet, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>>;

    /// Takes or keeps the lead of background `task` for `owner` until
    /// `until`: true when `owner` holds it now (it was free, had run out at
    /// `now`, or was already `owner`'s). Brokers sharing a store run a
    /// background task only while they lead it, so it runs once.
    async fn lead(&self, task: &str, owner: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool>;

    /// An order image by its SHA-256: `(mime type, bytes)`. The only way
    /// the bytes leave the store: jobs and orders carry a reference.
    async fn image(&self, sha256: &str) -> StoreResult<Option<(String, Vec<u8>)>>;

    /// Records a batch of attempts and their outcomes in one transaction,
    /// with the statuses and dead letters they produce.
    async fn record_deliveries(&self, results: Vec<DeliveryResult>) -> StoreResult<Produced>;

    /// Statuses not yet confirmed by RabbitMQ, oldest first.
    async fn pending_statuses(&self, limit: u32) -> StoreResult<Vec<StoredStatus>>;
    /// [`Store::pending_statuses`] with an id above `after`: the outbox
    /// read page by page, so rows that keep failing never hide later ones.
    async fn pending_statuses_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredStatus>>;
    async fn mark_statuses_published(&self, ids: &[i64]) -> StoreResult<()>;

    /// Dead letters not yet confirmed on `por.dead`, oldest first.
    async fn pending_dead_letters(&self, limit: u32) -> StoreResult<Vec<StoredDeadLetter>>;
    /// [`Store::pending_dead_letters`] with an id above `after`, page by page.
    async fn pending_dead_letters_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredDeadLetter>>;
    async fn mark_dead_letters_published(&self, ids: &[i64]) -> StoreResult<()>;

    /// Every status under one correlation id (inbound `message_id`), by
    /// status sequence: the stored message's, and the `CONFLICT_REJECTED`
    /// of each conflicting arrival among them.
    async fn statuses_for_message(&self, court_ori: &str, message_id: &str) -> StoreResult<Vec<StoredStatus>>;

    /// The deliveries of one inbound message.
    async fn deliveries_for_message(&self, court_ori: &str, message_id: &str) -> StoreResult<Vec<DeliveryView>>;

    /// Dead letters matching `filter`, newest first, without their bodies
    /// (`body` is empty; `body_bytes` gives the length): a list never reads
    /// the original bytes.
    async fn dead_letters(&self, filter: &DeadLetterFilter) -> StoreResult<Vec<StoredDeadLetter>>;
    async fn dead_letter(&self, id: i64) -> StoreResult<Option<StoredDeadLetter>>;

    /// Replays an open dead letter at stage `deliver`: its delivery, `REJECTED`
    /// or `DEAD`, is `PENDING` and due again with the same revision (so the
    /// same MCN / Idempotency-Key), its attempts and retry age start afresh.
    /// Refused at stages `validate` and `sequence`, and when the partner
    /// already accepted the message. `bulk` audits it as `BULK_REPLAY`.
    async fn replay_dead_letter(&self, id: i64, by: &OperatorAction, bulk: bool) -> Result<ActionDone, ActionError>;

    /// Like [`Store::replay_dead_letter`], with `order` (already checked by
    /// the stateless validator) as a new revision of the message to that
    /// partner. The original stays; the court, order number, sequence and
    /// action cannot change.
    async fn edit_and_replay(
        &self,
        id: i64,
        by: &OperatorAction,
        order: OrderMessage,
    ) -> Result<ActionDone, ActionError>;

    /// Discards an open dead letter: its delivery (if `REJECTED` or `DEAD`)
    /// becomes `DISCARDED`, which releases the later sequences. A discarded
    /// CLETS EPO (ISSUE) makes the order's later pending CLETS deliveries
    /// `DEAD_LETTERED` with `UNKNOWN_ORDER` (ICD §5).
    async fn discard_dead_letter(&self, id: i64, by: &OperatorAction) -> Result<ActionDone, ActionError>;

    /// Audit rows, newest first (100 by default).
    async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;

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

#[cfg(test)]
mod outage_tests {
    use sqlx::Connection as _;

    use super::StoreError;

    /// A constraint the data breaks (a real SQLite error) and corrupt
    /// stored data are the work's failures; an unreachable or exhausted
    /// database is an outage.
    #[tokio::test]
    async fn data_failures_are_told_from_outages() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES ('a')")
            .execute(&mut conn)
            .await
            .unwrap();
        let unique = sqlx::query("INSERT INTO t VALUES ('a')")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(!StoreError::Database(unique).is_outage());
        assert!(!StoreError::Corrupt("bad JSON".into()).is_outage());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_outage());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(StoreError::Database(sqlx::Error::Io(refused)).is_outage());
    }
}
