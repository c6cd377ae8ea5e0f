//! Retry timing: exponential backoff with jitter (backon), computed from the
//! attempt count kept in the store, so it survives restarts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;

use crate::config::RetryConfig;
use crate::model::{ErrorCode, PartnerId};
use crate::store::{DeliveryJob, DeliveryOutcome};

/// One partner's retry policy: backoff bounds and the maximum age.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub partner: &'static str,
    pub min: Duration,
    pub max: Duration,
    pub max_age: Duration,
}

impl RetryPolicy {
    pub fn new(partner: &'static str, config: &RetryConfig) -> RetryPolicy {
        RetryPolicy {
            partner,
            min: Duration::from_millis(config.min_ms),
            max: Duration::from_millis(config.max_ms),
            max_age: Duration::from_secs(config.max_age_secs),
        }
    }

    /// After a transient failure: a retry at the next backoff step (or at
    /// the partner's `Retry-After`, when that is later), or, once the
    /// message is older than the maximum age, a dead letter
    /// (`RETRIES_EXHAUSTED`).
    pub fn after_transient(&self, job: &DeliveryJob, reason: String, retry_after: Option<Duration>) -> DeliveryOutcome {
        let age = (Utc::now() - job.created_at).to_std().unwrap_or_default();
        if age >= self.max_age {
            tracing::error!(partner = %job.partner, delivery = job.id, "Retries exhausted; the message is now a dead letter for operators.");
            return DeliveryOutcome::DeadLettered {
                code: ErrorCode::RetriesExhausted,
                reason: format!(
                    "not delivered to {} within {} s: {reason}",
                    job.partner,
                    self.max_age.as_secs()
                ),
            };
        }
        let wait = delay(job.attempts, self.min, self.max).max(retry_after.unwrap_or_default());
        let next_attempt_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
        tracing::warn!(
            partner = %job.partner,
            delivery = job.id,
            attempt = job.attempts + 1,
            wait_ms = wait.as_millis() as u64,
            "Partner did not take the message; will retry."
        );
        let label = match &job.partner {
            PartnerId::Lea(_) => "LEA",
            _ => self.partner,
        };
        metrics::counter!("porter_partner_retries_total", "partner" => label).increment(1);
        DeliveryOutcome::Retry {
            next_attempt_at,
            reason,
        }
    }
}

/// The delay before attempt `attempts + 1`.
pub fn delay(attempts: u32, min: Duration, max: Duration) -> Duration {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build();
    backoff.nth(attempts.min(64) as usize).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delays grow with the attempt count and never pass the maximum (plus jitter).
    #[test]
    fn delays_grow_and_are_capped() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        let first = delay(0, min, max);
        assert!(first >= min && first <= min * 2, "{first:?}");
        let late = delay(30, min, max);
        assert!(late >= max && late <= max * 2, "{late:?}");
    }
}
