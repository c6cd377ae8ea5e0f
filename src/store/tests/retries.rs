//! When retries run out (ICD §8, §9): the retry policy's decision on jobs
//! as the store gives them, and what the store keeps for it. Run on both
//! backends by `store_tests!`.

use super::*;
use crate::config::RetryConfig;
use crate::delivery::retry::RetryPolicy;

/// A CLETS retry policy with an hour's maximum age and steps short enough
/// that the next attempt is due at once.
fn hour_policy() -> RetryPolicy {
    RetryPolicy::new(
        "CLETS",
        &RetryConfig {
            min_ms: 1,
            max_ms: 10,
            max_age_secs: 3_600,
        },
    )
}

/// Moves a time column of the deliveries of `number` back by `by`, as if
/// that much time had passed since.
async fn set_back(store: &SqlStore, number: &str, column: &str, by: chrono::Duration) {
    assert!(
        ["created_at", "first_attempt_at"].contains(&column),
        "not a delivery time: {column}"
    );
    let sql = format!("UPDATE deliveries SET {column} = {column} - $2 WHERE order_number = $1");
    sqlx::query(&sql)
        .bind(number.to_string())
        .bind(by.num_milliseconds())
        .execute(store.pool())
        .await
        .expect("set a delivery time back");
}

/// One busy answer (CARPOS `BSY`) to the due CLETS job of `number`,
/// decided by `policy` and recorded; the dead letter it made, if any.
async fn busy(s: &dyn Store, policy: &RetryPolicy, number: &str) -> Option<StoredDeadLetter> {
    let job = due_for(s, &PartnerId::Clets, number).await.expect("a due job");
    let outcome = policy.after_transient(&job, "BSY: busy".into(), None);
    let mut produced = s.record_deliveries(vec![result(job.id, outcome)]).await.unwrap();
    produced.dead_letters.pop()
}

/// An accepted ISSUE of `number` to CLETS whose delivery was created two
/// days ago, as if it had waited that long behind a dead letter or an
/// outage before its first attempt.
async fn long_waiting(store: &SqlStore, number: &str, message_id: &str) {
    accept(
        &*store,
        accepted(message_id, message(number, Action::Issue, 1, "001"), &clets()),
    )
    .await;
    set_back(store, number, "created_at", chrono::Duration::days(2)).await;
}

fn assert_exhausted(dead: Option<StoredDeadLetter>, attempts: u32) {
    let dead = dead.expect("a dead letter");
    assert_eq!(
        (dead.reason.as_str(), dead.stage.as_str(), dead.attempts),
        (ErrorCode::RetriesExhausted.as_str(), "deliver", attempts)
    );
}

/// A delivery created long before its first attempt is not dead-lettered at
/// its first busy answers: the maximum age counts from the first attempt,
/// not from the delivery's creation, and once it has passed the next busy
/// answer gives up.
pub(super) async fn retries_run_out_after_max_age_since_first_attempt_and_three_attempts(store: SqlStore) {
    let s: &dyn Store = &store;
    let policy = hour_policy();
    let n = "24DVRA";
    long_waiting(&store, n, "ra-1").await;

    for attempt in 1..=3 {
        assert!(
            busy(s, &policy, n).await.is_none(),
            "attempt {attempt}: an hour has not passed since the first attempt"
        );
    }
    set_back(&store, n, "first_attempt_at", chrono::Duration::hours(2)).await;
    assert_exhausted(busy(s, &policy, n).await, 4);
    assert!(due_for(s, &PartnerId::Clets, n).await.is_none());
}

/// Past the maximum age since the first attempt, the first two attempts
/// are still retried (a long outage between them), the third gives up.
pub(super) async fn retries_need_three_attempts_past_the_max_age(store: SqlStore) {
    let s: &dyn Store = &store;
    let policy = hour_policy();
    let n = "24DVRB";
    long_waiting(&store, n, "rb-1").await;

    assert!(busy(s, &policy, n).await.is_none());
    set_back(&store, n, "first_attempt_at", chrono::Duration::hours(30)).await;
    assert!(busy(s, &policy, n).await.is_none(), "two attempts are not enough");
    assert_exhausted(busy(s, &policy, n).await, 3);
}

/// An operator replay restarts the retry age and the attempt count: three
/// busy answers right after it are retried, and the age counts from the
/// first attempt after the replay.
pub(super) async fn replay_restarts_the_retry_age_and_attempts(store: SqlStore) {
    let s: &dyn Store = &store;
    let policy = hour_policy();
    let n = "24DVRC";
    long_waiting(&store, n, "rc-1").await;
    assert!(busy(s, &policy, n).await.is_none());
    set_back(&store, n, "first_attempt_at", chrono::Duration::hours(2)).await;
    assert!(busy(s, &policy, n).await.is_none());
    let dead = busy(s, &policy, n).await;
    let dead_letter_id = dead.as_ref().map(|d| d.id).unwrap_or_default();
    assert_exhausted(dead, 3);

    let by = OperatorAction {
        operator: "alice".into(),
        reason: "CARPOS is back".into(),
    };
    s.replay_dead_letter(dead_letter_id, &by, false).await.unwrap();
    for attempt in 1..=3 {
        assert!(
            busy(s, &policy, n).await.is_none(),
            "attempt {attempt} after the replay is retried"
        );
    }
    set_back(&store, n, "first_attempt_at", chrono::Duration::hours(2)).await;
    assert_exhausted(busy(s, &policy, n).await, 4);
}
