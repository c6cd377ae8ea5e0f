//! [`SqlStore`]: the [`Store`] over sqlx's `Any` driver, on a SQLite file or
//! on PostgreSQL.
//!
//! # Design note
//! - **One SQL, two backends.** The queries are portable SQL with `$1, $2, …`
//!   placeholders. PostgreSQL reads them natively; sqlx's SQLite driver binds
//!   `$N` by its number, so a placeholder may repeat or come out of order on
//!   both. Only basic types cross the `Any` driver: times are `BIGINT` unix
//!   milliseconds (UTC), JSON is `TEXT`, bytes are `BLOB`/`BYTEA`, and
//!   enumerations are `TEXT` in their wire spelling. The schemas live in
//!   `migrations/sqlite` and `migrations/postgres` and are embedded in the
//!   binary; each table and column is described there.
//! - **Durability.** Each connection is set up on connect: SQLite with
//!   `journal_mode=WAL`, `synchronous=FULL`, `busy_timeout=10000` and
//!   `foreign_keys=ON`; PostgreSQL with `synchronous_commit=on` (ICD §9).
//!   (A memory-mapped SQLite file would count the mapped pages in the
//!   broker's RSS; the group writer's own connection keeps its page cache
//!   warm instead.)
//! - **Writers.** Every write operation is all-or-nothing. The hot path's
//!   writes (intake batches, partner results, claims and renewals on
//!   SQLite, marking statuses and dead letters published) share
//!   transactions: the [`group`] writer commits every one waiting at once,
//!   each in a savepoint of its own, and answers each caller after the
//!   commit (group commit). SQLite allows one writer at a time, so the store serialises its write
//!   transactions through a mutex and opens them with `BEGIN IMMEDIATE`;
//!   reads use the pool freely. On PostgreSQL every write transaction
//!   takes one transaction-scoped advisory lock first ([`WRITER_LOCK`]),
//!   shared by every broker on the store: writers queue for it instead of
//!   taking row locks in different orders, so two brokers' batches can
//!   never deadlock (an intake batch and a partner record both touch
//!   orders, inbound messages and deliveries). Each write is a batch, so
//!   the queue costs one short wait per batch, not per message. Since every
//!   intake runs under it, the intake takes no lock of its own per message
//!   or order; the unique indexes on `(court_ori, message_id)` and on the
//!   order key back it up. Claims
//!   ([`deliveries`]) do not take the writer lock: they lock their rows
//!   `FOR UPDATE SKIP LOCKED`, never wait, and so never close a cycle.
//! - **Intake rules (ICD §5).** See [`intake`]. In short, per item: the same
//!   `(court, message_id)` is a duplicate (same body SHA-256) or a conflict
//!   (different body, kept in `conflicts`); a rejected verdict is stored with
//!   its `REJECTED` status and a dead letter at stage `validate`; an accepted
//!   verdict is checked against the order's history (same sequence, closed
//!   order, re-entry, ISSUE of an active order) and then stored with its
//!   deliveries and `ACCEPTED`. What a missing sequence could still make
//!   valid (a re-entry ISSUE before its CANCEL, say) is held, not rejected.
//! - **Orders are applied in sequence.** The `orders` row is the state that
//!   the gap-free prefix of accepted messages (sequences `1..=applied_sequence`)
//!   leaves. A message past a gap is accepted at intake, waits, and is settled
//!   once the gap fills: applied, or refused when the order is closed by then
//!   (`ORDER_CLOSED`: after a TERMINATE, or after a CANCEL unless it is the
//!   re-entry ISSUE right after it) or an ISSUE finds it active
//!   (`SEQUENCE_CONFLICT`). A refused message leaves the order as it was and
//!   gets a `REJECTED` status with the code and a dead letter at stage
//!   `sequence`; it was never routed, so it has no deliveries. `closed_sequence`
//!   remembers which TERMINATE or CANCEL closed the order (the re-entry
//!   ISSUE must be the one right after that CANCEL). Keeping the prefix on
//!   the order row (rather than recomputing it from the messages) keeps the
//!   sequence rules right after old messages are purged.
//! - **Deliveries go out in order** per order and partner: a delivery is due
//!   when it is pending, its time has come, its order has no gap below it
//!   (`sequence <= orders.applied_sequence`) and every earlier delivery of the
//!   same order to the same partner is `ACCEPTED` (or `DISCARDED` by an
//!   operator). A `REJECTED` or `DEAD` one holds the later ones back.
//! - **NIC.** `orders.clets_nic` is the CARPOS record id from the latest ACK
//!   that carried one. Jobs for every action but ISSUE carry it; an EPO (ISSUE)
//!   never does, so a re-entry gets a new one. It is cleared when CARPOS
//!   acknowledges the order's XPO (CANCEL), not at re-entry intake, because the
//!   XPO may still be waiting to go out with the old NIC then.
//! - **Statuses** are numbered per inbound message from a counter on its row
//!   (`UPDATE … SET status_count = status_count + 1 … RETURNING`), so
//!   concurrent writers never hand out the same `StatusSequence`. A
//!   `CONFLICT_REJECTED` status takes its number from the original's counter
//!   too, so every status under one correlation id is totally ordered, but it
//!   keeps `inbound_id` NULL: a duplicate of the original re-sends only the
//!   original's own statuses.
//! - **Purge** forgets an inbound message (its row, statuses, deliveries and
//!   attempts) once it is older than the cutoff, all of its statuses are
//!   published and every delivery is `ACCEPTED` or `DISCARDED`; an open dead
//!   letter (`REJECTED` or `DEAD` delivery) keeps its message. A conflicting
//!   arrival goes with its published `CONFLICT_REJECTED` once older than the
//!   cutoff. Dead letters and order rows are never purged.
//! - **Operator actions** (replay, edit-and-replay, discard of dead letters)
//!   and their audit rows: see [`operations`].
//! - **No NUL in text.** PostgreSQL refuses NUL in `TEXT`, and one refused
//!   value fails the whole batch (which the intake would then redeliver,
//!   forever). Every text that comes from a court or a partner (ids, content
//!   type, layout, order number, partner answers, reasons, NICs) is written
//!   and looked up through `rows::text`, which replaces NUL with U+FFFD; JSON
//!   columns need nothing, as serde writes NUL as `\u0000`.

mod deliveries;
mod gaps;
mod group;
mod intake;
mod operations;
mod queries;
mod results;
mod rows;

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::PartnerSet;
use super::{
    ActionDone, ActionError, AuditEntry, AuditFilter, ClaimRequest, DeadLetterFilter, DeliveryJob, DeliveryResult,
    DeliveryView, IntakeItem, IntakeOutcome, OperatorAction, PartnerAttempt, Produced, Store, StoreError, StoreResult,
    StoredDeadLetter, StoredStatus,
};
use crate::model::OrderMessage;
use crate::routing::{Candidates, Route};

/// The database behind a [`SqlStore`]: the few places where SQLite and
/// PostgreSQL need different statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn from_url(url: &str) -> StoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Statements run on every new connection (ICD §9 durability).
    fn session_setup(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &[
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA busy_timeout=10000",
                "PRAGMA foreign_keys=ON",
            ],
            // A broker frozen (SIGSTOP, a stalled VM) inside a transaction
            // would hold the writer lock and its rows for every other broker;
            // PostgreSQL ends such a session after 5 s idle in its
            // transaction, which no live broker comes near.
            Backend::Postgres => &[
                "SET synchronous_commit = on",
                "SET idle_in_transaction_session_timeout = '5s'",
            ],
        }
    }
}

/// The advisory lock every PostgreSQL write transaction takes first (see
/// the module note): "porterWR" as a big-endian number.
const WRITER_LOCK: i64 = 0x706f_7274_6572_5752;

/// Porter's store on SQLite (`sqlite://PATH`) or PostgreSQL
/// (`postgres://…`). Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// The single-writer lock for SQLite: without it, two write transactions
    /// could both start and one fail with `SQLITE_BUSY`. Unused on PostgreSQL.
    writer: Arc<Mutex<()>>,
    /// Routes each message when it is applied (see [`crate::routing`]).
    router: Arc<dyn Route>,
    /// The hot path's writes, committed in groups (see [`group`]).
    group: Option<group::GroupWriter>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A write transaction, holding the writer lock (SQLite) until it ends.
struct WriteTx<'a> {
    // Declared before the guard: the transaction ends before the lock is released.
    tx: Transaction<'a, Any>,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl SqlStore {
    /// Routes applied messages with `router` instead of the default
    /// [`Candidates`] (the intake verdict's partners only).
    pub fn with_router(mut self, router: Arc<dyn Route>) -> SqlStore {
        self.router = router;
        self
    }

    /// Opens the store at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` creates the file when it is missing; `postgres://…`
    /// needs an existing database (and takes `?options=-c search_path=…`).
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url: Cow<'_, str> = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Cow::Owned(format!("{url}{sep}mode=rwc"))
            }
            _ => Cow::Borrowed(url),
        };
        let max_connections = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for statement in backend.session_setup() {
                        conn.execute(*statement).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let mut store = SqlStore {
            router: Arc::new(Candidates),
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            group: None,
        };
        // The writer task holds a store without a group writer, so that it
        // ends once every clone of this one is dropped.
        store.group = Some(group::GroupWriter::start(store.clone()));
        Ok(store)
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for tests that look at rows no API returns.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database behind the store, for tests that query it directly.
    #[cfg(test)]
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `work` in the next group transaction (see [`group`]); without a
    /// group writer (the writer task's own store), in a transaction of its
    /// own.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> group::OpFuture<'c, T> + Send + 'static,
    {
        match &self.group {
            Some(group) => group.write(work).await,
            None => {
                let mut tx = self.begin_write().await?;
                let value = work(tx.conn()).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    }

    async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let guard = self.writer_guard().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        self.write_tx(tx, guard).await
    }

    /// [`SqlStore::begin_write`] on a connection the caller keeps (the group
    /// writer's, whose page cache then stays warm).
    async fn begin_write_on<'c>(&'c self, conn: &'c mut AnyConnection) -> StoreResult<WriteTx<'c>> {
        let guard = self.writer_guard().await;
        let tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        self.write_tx(tx, guard).await
    }

    /// The SQLite writer mutex; none on PostgreSQL.
    async fn writer_guard(&self) -> Option<MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Takes PostgreSQL's writer lock in `tx` (see the module note).
    async fn write_tx<'a>(
        &self,
        mut tx: Transaction<'a, Any>,
        guard: Option<MutexGuard<'a, ()>>,
    ) -> StoreResult<WriteTx<'a>> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITER_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(WriteTx { tx, _guard: guard })
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn intake(&self, items: Vec<IntakeItem>) -> StoreResult<Vec<IntakeOutcome>> {
        let router = self.router.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let mut outcomes = Vec::with_capacity(items.len());
                for item in items {
                    outcomes.push(intake::intake_one(conn, &*router, item).await?);
                }
                Ok(outcomes)
            })
        })
        .await
    }

    async fn intake_unstorable(&self, item: IntakeItem) -> StoreResult<IntakeOutcome> {
        let mut tx = self.begin_write().await?;
        let outcome = intake::intake_unstorable(tx.conn(), item).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn due_deliveries_in(
        &self,
        partners: &PartnerSet,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let mut conn = self.pool.acquire().await?;
        deliveries::due(&mut conn, partners, now, limit).await
    }

    async fn claim_deliveries(&self, request: &ClaimRequest) -> StoreResult<Vec<DeliveryJob>> {
        let leased = match self.backend {
            // One writer: the claim waits its turn like any write.
            Backend::Sqlite => {
                let request = request.clone();
                self.write(move |conn| {
                    Box::pin(async move { deliveries::claim(conn, Backend::Sqlite, &request).await })
                })
                .await?
            }
            // Rows locked with SKIP LOCKED: no writer lock, no waiting.
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                let leased = deliveries::claim(&mut tx, self.backend, request).await?;
                tx.commit().await?;
                leased
            }
        };
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        // Read outside the writer and the claim's transaction, which then
        // hold nobody up for it. If the read fails, the leases are ended at
        // once, so the lanes do not wait for them to run out.
        let read = async {
            let mut conn = self.pool.acquire().await?;
            deliveries::claimed_jobs(&mut conn, &leased).await
        };
        match read.await {
            Ok(jobs) => Ok(jobs),
            Err(e) => {
                if let Err(end) = self.renew_leases(&request.owner, &leased, Utc::now()).await {
                    tracing::warn!(error = %end, "Could not end the leases of unread claimed deliveries; they run out by themselves.");
                }
                Err(e)
            }
        }
    }

    async fn renew_leases(&self, owner: &str, held: &[(i64, i64)], until: DateTime<Utc>) -> StoreResult<Vec<i64>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        match self.backend {
            Backend::Sqlite => {
                let (owner, held) = (owner.to_string(), held.to_vec());
                self.write(move |conn| Box::pin(async move { deliveries::renew(conn, &owner, &held, until).await }))
                    .await
            }
            // Not behind the writer lock: a renewal must not wait for a long
            // write (or a frozen broker's open transaction), or leases would
            // run out under attempts still in flight. Each row is its own
            // statement, so it never holds one row while waiting for another.
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                deliveries::renew(&mut conn, owner, held, until).await
            }
        }
    }

    async fn release_leases(&self, owner: &str) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let released = deliveries::release(tx.conn(), owner).await?;
        tx.commit().await?;
        Ok(released)
    }

    async fn next_due_at(&self, partners: &PartnerSet, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        let mut conn = self.pool.acquire().await?;
        deliveries::next_due_at(&mut conn, partners, now).await
    }

    async fn lead(&self, task: &str, owner: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let held = sqlx::query(
            "INSERT INTO leads (task, owner, until) VALUES ($1, $2, $3) \
             ON CONFLICT (task) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE leads.owner = excluded.owner OR leads.until <= $4 \
             RETURNING owner",
        )
        .bind(task.to_string())
        .bind(owner.to_string())
        .bind(until.timestamp_millis())
        .bind(now.timestamp_millis())
        .fetch_optional(tx.conn())
        .await?
        .is_some();
        tx.commit().await?;
        Ok(held)
    }

    async fn image(&self, sha256: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT mime_type, data FROM images WHERE sha256 = $1")
            .bind(sha256.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("mime_type")?, row.try_get("data")?)),
            None => None,
        })
    }

    async fn record_deliveries(&self, results: Vec<DeliveryResult>) -> StoreResult<Produced> {
        let backend = self.backend;
        self.write(move |conn| {
            Box::pin(async move {
                let mut produced = Produced::default();
                results::record(conn, backend, results, &mut produced).await?;
                Ok(produced)
            })
        })
        .await
    }

    async fn pending_statuses(&self, limit: u32) -> StoreResult<Vec<StoredStatus>> {
        self.pending_statuses_after(0, limit).await
    }

    async fn pending_statuses_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredStatus>> {
        let mut conn = self.pool.acquire().await?;
        queries::pending_statuses(&mut conn, after, limit).await
    }

    async fn mark_statuses_published(&self, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |conn| Box::pin(async move { queries::mark_published(conn, "statuses", &ids).await }))
            .await
    }

    async fn pending_dead_letters(&self, limit: u32) -> StoreResult<Vec<StoredDeadLetter>> {
        self.pending_dead_letters_after(0, limit).await
    }

    async fn pending_dead_letters_after(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredDeadLetter>> {
        let mut conn = self.pool.acquire().await?;
        queries::pending_dead_letters(&mut conn, after, limit).await
    }

    async fn mark_dead_letters_published(&self, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |conn| Box::pin(async move { queries::mark_published(conn, "dead_letters", &ids).await }))
            .await
    }

    async fn statuses_for_message(&self, court_ori: &str, message_id: &str) -> StoreResult<Vec<StoredStatus>> {
        let mut conn = self.pool.acquire().await?;
        queries::statuses_for_message(&mut conn, court_ori, message_id).await
    }

    async fn deliveries_for_message(&self, court_ori: &str, message_id: &str) -> StoreResult<Vec<DeliveryView>> {
        let mut conn = self.pool.acquire().await?;
        queries::deliveries_for_message(&mut conn, court_ori, message_id).await
    }

    async fn dead_letters(&self, filter: &DeadLetterFilter) -> StoreResult<Vec<StoredDeadLetter>> {
        let mut conn = self.pool.acquire().await?;
        queries::dead_letters(&mut conn, filter).await
    }

    async fn dead_letter(&self, id: i64) -> StoreResult<Option<StoredDeadLetter>> {
        let mut conn = self.pool.acquire().await?;
        queries::dead_letter(&mut conn, id).await
    }

    async fn replay_dead_letter(&self, id: i64, by: &OperatorAction, bulk: bool) -> Result<ActionDone, ActionError> {
        let mut tx = self.begin_write().await?;
        let done = operations::replay(tx.conn(), id, by, bulk).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn edit_and_replay(
        &self,
        id: i64,
        by: &OperatorAction,
        order: OrderMessage,
    ) -> Result<ActionDone, ActionError> {
        let mut tx = self.begin_write().await?;
        let done = operations::edit_and_replay(tx.conn(), id, by, order).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn discard_dead_letter(&self, id: i64, by: &OperatorAction) -> Result<ActionDone, ActionError> {
        let mut tx = self.begin_write().await?;
        let done = operations::discard(tx.conn(), id, by).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let mut conn = self.pool.acquire().await?;
        operations::audit(&mut conn, filter).await
    }

    async fn partner_attempts(&self, delivery_id: i64) -> StoreResult<Vec<PartnerAttempt>> {
        let mut conn = self.pool.acquire().await?;
        queries::partner_attempts(&mut conn, delivery_id).await
    }

    async fn expire_gaps(&self, court_ori: &str, cutoff: DateTime<Utc>) -> StoreResult<Produced> {
        let mut tx = self.begin_write().await?;
        let produced = gaps::expire(tx.conn(), court_ori, cutoff.timestamp_millis()).await?;
        tx.commit().await?;
        Ok(produced)
    }

    async fn purge_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let purged = queries::purge_before(tx.conn(), cutoff).await?;
        tx.commit().await?;
        Ok(purged)
    }
}
