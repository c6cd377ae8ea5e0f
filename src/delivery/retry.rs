//! Retry timing: exponential backoff with jitter (backon), computed from the
//! attempt count kept in the store, so it survives restarts.
//!
//! # Design note
//! When retries run out is one rule, [`exhausted`]: a delivery is given up
//! (`DEAD_LETTERED` with `RETRIES_EXHAUSTED`, ICD §8, §9) only when both
//! - the maximum age (24 h by default, per partner) has passed since its
//!   **first attempt**, not since the delivery was created: a delivery that
//!   waited behind a dead letter, a sequence gap or an open circuit has not
//!   been retried at all meanwhile; and
//! - it has had at least [`MIN_ATTEMPTS`] attempts, the failed one included,
//!   so an outage longer than the maximum age between two attempts does not
//!   give up a delivery at its second try.
//!
//! Both count within the delivery's current life: an operator replay sets
//! the attempts to 0 and clears the first attempt time (the store's
//! `deliveries.first_attempt_at`, set by the first attempt recorded after
//! the delivery's creation or its latest replay), so a replayed delivery has
//! the whole maximum age and three attempts again.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};

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
    /// the partner's `Retry-After`, when that is later), or, once retries
    /// have run out ([`exhausted`]), a dead letter (`RETRIES_EXHAUSTED`).
    pub fn after_transient(&self, job: &DeliveryJob, reason: String, retry_after: Option<Duration>) -> DeliveryOutcome {
        let attempts = job.attempts.saturating_add(1);
        if exhausted(attempts, job.first_attempt_at, Utc::now(), self.max_age) {
            tracing::error!(
                partner = %job.partner,
                delivery = job.id,
                attempts,
                "Retries exhausted; the message is now a dead letter for operators."
            );
            return DeliveryOutcome::DeadLettered {
                code: ErrorCode::RetriesExhausted,
                reason: format!(
                    "not delivered to {} in {attempts} attempts over {} s: {reason}",
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

/// The fewest attempts a delivery gets before it may be given up.
pub const MIN_ATTEMPTS: u32 = 3;

/// Whether retries have run out after a failed attempt (see the module
/// note): `attempts` made in the delivery's current life, this one
/// included; `first_attempt_at` of that life, `None` when this failed
/// attempt is the first. Exhausted only once `max_age` has passed since the
/// first attempt *and* at least [`MIN_ATTEMPTS`] were made.
pub fn exhausted(
    attempts: u32,
    first_attempt_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> bool {
    let age = first_attempt_at
        .map(|first| (now - first).to_std().unwrap_or_default())
        .unwrap_or_default();
    attempts >= MIN_ATTEMPTS && age >= max_age
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
    use crate::delivery::testing::{job, retry};
    use crate::model::{Action, PartnerId};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn hours_ago(now: DateTime<Utc>, hours: i64) -> Option<DateTime<Utc>> {
        Some(now - chrono::Duration::hours(hours))
    }

    /// The rule, case by case: the age counts from the first attempt (none
    /// yet: no age), and retries run out only past the maximum age *and*
    /// from the third attempt on; a replayed delivery (attempts and first
    /// attempt cleared) starts again like a new one.
    #[test]
    fn exhausted_needs_max_age_since_first_attempt_and_three_attempts() {
        let now = Utc::now();
        let cases = [
            // (attempts incl. this one, first attempt, exhausted?, what)
            (1, None, false, "first attempt: no age yet"),
            (2, hours_ago(now, 23), false, "under the maximum age"),
            (3, hours_ago(now, 23), false, "three attempts, under the maximum age"),
            (1, hours_ago(now, 48), false, "past the age, first attempt"),
            (2, hours_ago(now, 48), false, "past the age, second attempt"),
            (3, hours_ago(now, 24), true, "exactly the maximum age, third attempt"),
            (3, hours_ago(now, 48), true, "past the age, third attempt"),
            (40, hours_ago(now, 25), true, "past the age, many attempts"),
            (40, hours_ago(now, 1), false, "many attempts, under the maximum age"),
            (1, None, false, "after a replay: attempts and first attempt cleared"),
            (3, hours_ago(now, -1), false, "first attempt in the future"),
        ];
        for (attempts, first, expected, what) in cases {
            assert_eq!(exhausted(attempts, first, now, DAY), expected, "{what}");
        }
    }

    /// A job created two days ago whose first attempt was a minute ago is
    /// retried, not dead-lettered: its creation does not count.
    #[test]
    fn age_counts_from_the_first_attempt_not_the_creation() {
        let mut late = job(PartnerId::Clets, Action::Issue);
        late.created_at = Utc::now() - chrono::Duration::days(2);
        late.attempts = 5;
        late.first_attempt_at = Some(Utc::now() - chrono::Duration::minutes(1));
        let outcome = retry("CLETS").after_transient(&late, "BSY".into(), None);
        assert!(matches!(outcome, DeliveryOutcome::Retry { .. }), "{outcome:?}");
    }

    /// Past the maximum age since the first attempt, the third attempt's
    /// transient failure is a dead letter with `RETRIES_EXHAUSTED`; the
    /// second's is still a retry.
    #[test]
    fn third_attempt_past_the_max_age_is_a_dead_letter() {
        let mut old = job(PartnerId::Doj, Action::Issue);
        old.first_attempt_at = Some(Utc::now() - chrono::Duration::hours(2));
        old.attempts = 1;
        let second = retry("DOJ").after_transient(&old, "503".into(), None);
        assert!(matches!(second, DeliveryOutcome::Retry { .. }), "{second:?}");
        old.attempts = 2;
        let third = retry("DOJ").after_transient(&old, "503".into(), None);
        assert!(
            matches!(
                third,
                DeliveryOutcome::DeadLettered {
                    code: ErrorCode::RetriesExhausted,
                    ..
                }
            ),
            "{third:?}"
        );
    }

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
