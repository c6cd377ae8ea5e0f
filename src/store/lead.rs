//! Background tasks run once across brokers: a broker runs a round of gap
//! expiry, the outbox sweep or the purge only while it leads that task
//! ([`Store::lead`]). The lead lasts two of the task's periods (and at
//! least [`MIN_HOLD`]), so its holder keeps it from round to round, and
//! another broker takes it once the holder has missed its rounds (killed,
//! frozen, stopped).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Store;

/// The shortest a lead is held.
pub const MIN_HOLD: Duration = Duration::from_secs(10);

/// One broker's claim to lead background tasks.
#[derive(Clone)]
pub struct Lead {
    pub store: Arc<dyn Store>,
    /// The broker's name (its delivery lease owner).
    pub owner: String,
}

impl Lead {
    /// Whether this broker should run this round of `task`, which runs
    /// every `period`. A store error counts as not leading: the round is
    /// skipped and tried again next period.
    pub async fn leads(&self, task: &str, period: Duration) -> bool {
        let hold = (period * 2).max(MIN_HOLD);
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::hours(2));
        match self.store.lead(task, &self.owner, now, until).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(task, error = %e, "Could not take the lead of a background task; skipping this round.");
                false
            }
        }
    }
}
