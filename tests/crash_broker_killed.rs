//! Crash test (a): the broker is killed while full order lifecycles flow to
//! CLETS, DOJ and the LEA agencies (real simulators, real RabbitMQ, a real
//! store), and restarted, again and again. Nothing may be lost and nothing
//! applied twice.
//!
//! The broker runs as its own process (`porter broker --config`). Its runs:
//! 1. three runs, each with one failpoint enabled (`src/failpoint.rs`), so
//!    the process aborts right after a store commit (before the ack), right
//!    after a partner answered (before the answer is recorded), and right
//!    after a status was published (before its confirm); each must fire;
//! 2. three runs SIGKILLed at seeded random moments;
//! 3. a last run that finishes the work.
//!
//! Counts are configurable: `PORTER_CRASH_ORDERS` orders in all (CI uses the
//! default, 2,000, over two courts: ISSUE, MODIFY, SERVICE, then TERMINATE
//! or, for about one in ten, CANCEL),
//! `PORTER_CRASH_SEED` for the kill moments.

mod common;
#[path = "crash/support.rs"]
mod support;

use support::{CrashRun, Store};

/// Proves crash test (a) on SQLite: every message reaches every partner it
/// should, every court gets the final statuses, `double_records` is 0 on
/// every simulator and `duplicates` is above 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_repeatedly_loses_nothing_and_applies_nothing_twice_on_sqlite() {
    CrashRun::new(Store::Sqlite).await.run_with_kills().await;
}

/// The same crash test on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_repeatedly_loses_nothing_and_applies_nothing_twice_on_postgres() {
    CrashRun::new(Store::Postgres).await.run_with_kills().await;
}
