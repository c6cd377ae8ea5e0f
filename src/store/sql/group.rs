//! Group commit: the hot path's write operations share transactions.
//!
//! # Design note
//! Every write of the hot path (an intake batch, a claim on SQLite, a batch
//! of partner results, marking statuses and dead letters published, lease
//! renewals on SQLite) is an operation sent to one writer task per store.
//! The writer takes every operation waiting (up to [`GROUP_MAX`]), runs them
//! one after the other in **one** transaction, each inside a savepoint of
//! its own, commits once, and only then answers each caller. So a burst of
//! small writes costs one commit (one fsync on SQLite with
//! `synchronous=FULL`; one WAL flush on PostgreSQL), not one each, and a
//! caller still learns of its work only once it is durable.
//!
//! - **Failure of one operation.** An operation that fails is rolled back to
//!   its savepoint and answered with its error; the others of the group go
//!   on. That keeps each operation all-or-nothing, exactly as when it had a
//!   transaction of its own.
//! - **Failure of the group.** When the transaction cannot begin, a
//!   savepoint cannot be rolled back (the connection is gone), or the
//!   commit fails, every operation of the group is answered with an
//!   outage error ([`StoreError::GroupFailed`] for all but one, which gets
//!   the original error), and nothing of the group is kept.
//! - **Ordering.** Operations run in the order they were sent. A caller that
//!   awaits its answer before sending its next operation sees its writes in
//!   order.
//! - **Writers.** The group transaction is an ordinary write transaction
//!   of the store (`begin_write`): on SQLite it holds the store's writer
//!   mutex, on PostgreSQL the advisory writer lock, so writes outside the
//!   group (operator actions, the purge) still take turns with it.
//! - **Latency.** An operation waits for the group being committed, then
//!   for its own group's commit: about two commits at most while the store
//!   is busy, one when it is idle.
//! - An operation must do its work on the connection it is given and never
//!   call the store itself: the writer would wait for itself.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::FutureExt;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::{mpsc, oneshot};

use super::SqlStore;
use crate::store::{StoreError, StoreResult};

/// Operations committed together at most.
pub const GROUP_MAX: usize = 256;

/// A boxed future borrowing the group's connection.
pub type OpFuture<'c, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'c>>;

/// One operation of a group, type-erased for the writer's queue.
trait GroupOp: Send {
    /// Runs the operation on the group's connection; `false` if it failed
    /// (its answer is then its error, whatever the commit does).
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>>;
    /// Answers the caller once the group's fate is known.
    fn answer(self: Box<Self>, group: Result<(), StoreError>);
}

/// An operation with its result slot and the caller's answer channel.
struct Op<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> GroupOp for Op<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> OpFuture<'c, T> + Send + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            let result = work(conn).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn answer(self: Box<Self>, group: Result<(), StoreError>) {
        let answer = match (self.result, group) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(e),
            (None, Ok(())) => Err(StoreError::GroupFailed("the operation did not run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// The sending side of a store's group writer.
#[derive(Clone)]
pub struct GroupWriter {
    ops: mpsc::UnboundedSender<Box<dyn GroupOp>>,
}

impl GroupWriter {
    /// Starts the writer task for `store`. It ends when every clone of the
    /// returned sender is dropped.
    pub fn start(store: SqlStore) -> GroupWriter {
        let (ops, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_groups(store, queue));
        GroupWriter { ops }
    }

    /// Runs `work` in the next group transaction and returns its result once
    /// that transaction is committed.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> OpFuture<'c, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op = Op {
            work: Some(work),
            result: None,
            reply,
        };
        self.ops
            .send(Box::new(op))
            .map_err(|_| StoreError::GroupFailed("the store's writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::GroupFailed("the store's writer has stopped".into()))?
    }
}

/// The writer task: one group transaction after another, on a connection
/// of its own (taken again after a failure).
async fn write_groups(store: SqlStore, mut queue: mpsc::UnboundedReceiver<Box<dyn GroupOp>>) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    let mut conn: Option<PoolConnection<Any>> = None;
    // Closing the pool waits for every connection: the writer gives its
    // own back at once, and from then on takes one per group.
    let closing = store.pool.close_event();
    tokio::pin!(closing);
    let mut closed = false;
    loop {
        tokio::select! {
            received = queue.recv_many(&mut group, GROUP_MAX) => if received == 0 {
                return;
            },
            () = &mut closing, if !closed => {
                closed = true;
                conn = None;
                continue;
            }
        }
        metrics::histogram!("porter_store_group_size").record(group.len() as f64);
        let mut error = run_group(&store, &mut conn, &mut group).await.err();
        let failed = error.is_some();
        if failed || closed || store.pool.is_closed() {
            conn = None;
        }
        for op in group.drain(..) {
            let fate = match failed {
                false => Ok(()),
                true => Err(error
                    .take()
                    .unwrap_or_else(|| StoreError::GroupFailed("the group's transaction failed".into()))),
            };
            op.answer(fate);
        }
    }
}

/// Runs one group in one transaction; `Err` when nothing of it is kept.
async fn run_group(
    store: &SqlStore,
    conn: &mut Option<PoolConnection<Any>>,
    group: &mut [Box<dyn GroupOp>],
) -> StoreResult<()> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(store.pool.acquire().await?),
    };
    let mut tx = store.begin_write_on(conn).await?;
    for op in group.iter_mut() {
        sqlx::query("SAVEPOINT group_op").execute(tx.conn()).await?;
        // A panic in one operation fails that operation, not the writer.
        let ok = AssertUnwindSafe(op.run(tx.conn()))
            .catch_unwind()
            .await
            .unwrap_or(false);
        if !ok {
            sqlx::query("ROLLBACK TO SAVEPOINT group_op").execute(tx.conn()).await?;
        }
        sqlx::query("RELEASE SAVEPOINT group_op").execute(tx.conn()).await?;
    }
    tx.commit().await
}
