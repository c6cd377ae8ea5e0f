//! The gap timeout (ICD §5): a sweep that gives up messages which waited
//! too long for a missing earlier sequence.
//!
//! Every court has its own timeout (`gap_timeout_secs`, 1 h by default).
//! The sweep runs at a tenth of the shortest timeout (between 1 s and
//! 60 s), asks the store to expire what waited past each court's cutoff
//! ([`Store::expire_gaps`]) and hands the statuses and dead letters to the
//! [`Relay`]; if publishing fails, the outbox sweep sends them later.
//! Where several brokers share the store, only the one that leads the task
//! `gap_expiry` sweeps ([`Lead`]), so an expired gap gives one dead letter.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::CourtConfig;
use crate::status::Relay;
use crate::store::{Lead, Store};

/// The background task's name for [`Lead`].
pub const TASK: &str = "gap_expiry";

/// Runs until `stop`.
pub async fn run(store: Arc<dyn Store>, lead: Lead, relay: Relay, courts: Vec<CourtConfig>, stop: CancellationToken) {
    let tick = sweep_interval(&courts);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.cancelled() => return,
        }
        if !lead.leads(TASK, tick).await {
            continue;
        }
        for court in &courts {
            let cutoff = chrono::Utc::now() - chrono::Duration::seconds(court.gap_timeout_secs as i64);
            match store.expire_gaps(&court.ori, cutoff).await {
                Ok(produced) if produced.dead_letters.is_empty() => {}
                Ok(produced) => {
                    tracing::warn!(
                        court = %court.ori,
                        messages = produced.dead_letters.len(),
                        "Messages waited past the gap timeout; dead-lettered with SEQUENCE_GAP."
                    );
                    if let Err(e) = relay.send(&produced.statuses, &produced.dead_letters).await {
                        tracing::warn!(error = %e, "Gap statuses not confirmed yet; the outbox sweep will resend them.");
                    }
                }
                Err(e) => tracing::warn!(court = %court.ori, error = %e, "Gap sweep failed; will try again."),
            }
        }
    }
}

/// A tenth of the shortest gap timeout, between 1 s and 60 s.
fn sweep_interval(courts: &[CourtConfig]) -> Duration {
    let shortest = courts.iter().map(|c| c.gap_timeout_secs).min().unwrap_or(3600);
    Duration::from_millis(shortest.saturating_mul(100)).clamp(Duration::from_secs(1), Duration::from_secs(60))
}
