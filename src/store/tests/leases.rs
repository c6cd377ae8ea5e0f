//! Claims, leases and fencing tokens (see `sql::deliveries`): run on both
//! backends by `store_tests!`.

use super::*;

/// A claim by `owner` for `partners` at `now`, leased for 20 s.
fn claim_by(owner: &str, partners: PartnerSet, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        partners,
        per_partner: 100,
        room: Vec::new(),
        limit: 100,
        owner: owner.into(),
        now,
        until: now + chrono::Duration::seconds(20),
    }
}

fn clets_set() -> PartnerSet {
    PartnerSet::One(PartnerId::Clets)
}

/// Proves a claim leases what is due to one broker: a second broker's claim
/// at the same time gets none of it, and the lane's next sequence stays
/// unclaimable while the first is leased (one message in flight per lane).
pub(super) async fn a_claimed_delivery_is_nobody_elses_until_its_lease_ends(store: SqlStore) {
    let s: &dyn Store = &store;
    s.intake(vec![
        accepted("l-1", message("24LSA", Action::Issue, 1, "A"), &clets()),
        accepted("l-2", message("24LSA", Action::Modify, 2, "A"), &clets()),
        accepted("l-3", message("24LSB", Action::Issue, 1, "B"), &clets()),
    ])
    .await
    .unwrap();
    let now = Utc::now();
    let first = s
        .claim_deliveries(&claim_by("broker-a", clets_set(), now))
        .await
        .unwrap();
    let keys: Vec<_> = first.iter().map(|j| (j.order_number.as_str(), j.sequence)).collect();
    assert_eq!(keys, [("24LSA", 1), ("24LSB", 1)], "the lowest sequence of each lane");
    assert!(first.iter().all(|j| j.lease_token == 1), "a first claim's token is 1");

    let second = s
        .claim_deliveries(&claim_by("broker-b", clets_set(), now))
        .await
        .unwrap();
    assert!(second.is_empty(), "leased work is not claimed again: {second:?}");

    // Once the lease has run out, another broker takes it under a new token.
    let later = now + chrono::Duration::seconds(21);
    let taken = s
        .claim_deliveries(&claim_by("broker-b", clets_set(), later))
        .await
        .unwrap();
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|j| j.lease_token == 2), "{taken:?}");
}

/// Proves only the lease holder records an outcome: a result under an
/// older token (its lease was taken over) is kept in the attempt history as
/// `STALE` and changes nothing, while the current holder's result finishes
/// the delivery and makes the lane's next sequence claimable.
pub(super) async fn a_result_under_an_old_token_is_fenced_off(store: SqlStore) {
    let s: &dyn Store = &store;
    s.intake(vec![
        accepted("f-1", message("24FNC", Action::Issue, 1, "A"), &clets()),
        accepted("f-2", message("24FNC", Action::Modify, 2, "A"), &clets()),
    ])
    .await
    .unwrap();
    let now = Utc::now();
    let old = s.claim_deliveries(&claim_by("frozen", clets_set(), now)).await.unwrap();
    let later = now + chrono::Duration::seconds(30);
    let new = s
        .claim_deliveries(&claim_by("taker", clets_set(), later))
        .await
        .unwrap();
    assert_eq!((old.len(), new.len()), (1, 1));
    assert_eq!(old[0].id, new[0].id);

    let late = DeliveryResult {
        delivery_id: old[0].id,
        lease_token: old[0].lease_token,
        attempt: attempt(),
        outcome: accepted_with_nic(Some("H000000001")),
    };
    let produced = s.record_deliveries(vec![late]).await.unwrap();
    assert!(produced.statuses.is_empty(), "a fenced result produces no status");
    let attempts = s.partner_attempts(old[0].id).await.unwrap();
    assert_eq!(attempts.len(), 1, "the late attempt is kept");
    let outcome: String = sqlx::query("SELECT outcome FROM partner_attempts WHERE delivery_id = $1")
        .bind(old[0].id)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get("outcome")
        .unwrap();
    assert_eq!(outcome, "STALE");
    let after = later + chrono::Duration::seconds(1);
    assert!(
        s.claim_deliveries(&claim_by("x", clets_set(), after))
            .await
            .unwrap()
            .is_empty(),
        "still leased to the taker, and sequence 2 still waits"
    );

    let current = DeliveryResult {
        delivery_id: new[0].id,
        lease_token: new[0].lease_token,
        attempt: attempt(),
        outcome: accepted_with_nic(Some("H000000002")),
    };
    let produced = s.record_deliveries(vec![current]).await.unwrap();
    assert_eq!(produced.statuses.len(), 1, "PARTNER_ACCEPTED");
    let next = s
        .claim_deliveries(&claim_by("taker", clets_set(), after))
        .await
        .unwrap();
    assert_eq!(next.iter().map(|j| j.sequence).collect::<Vec<_>>(), [2]);
    assert_eq!(next[0].nic.as_deref(), Some("H000000002"));
}

/// Proves a claim takes at most each partner's room: `per_partner` for
/// partners with nothing in flight, `room` for the others, none for a
/// partner with no room left, oldest first within the claim's limit.
pub(super) async fn a_claim_respects_each_partners_room(store: SqlStore) {
    let s: &dyn Store = &store;
    let slow = PartnerId::Lea("CA0340000".into());
    let quick = PartnerId::Lea("CA0349400".into());
    let mut items = Vec::new();
    for i in 0..6 {
        let number = format!("24RM{i}");
        items.push(accepted(
            &format!("r-{i}"),
            message(&number, Action::Issue, 1, "A"),
            &[slow.clone(), quick.clone()],
        ));
    }
    s.intake(items).await.unwrap();
    let now = Utc::now();
    let lea = PartnerSet::Lea { except: Vec::new() };
    let mut request = claim_by("broker-a", lea.clone(), now);
    request.per_partner = 2;
    request.room = vec![(slow.clone(), 1)];
    let jobs = s.claim_deliveries(&request).await.unwrap();
    let count = |p: &PartnerId, jobs: &[DeliveryJob]| jobs.iter().filter(|j| j.partner == *p).count();
    assert_eq!((count(&slow, &jobs), count(&quick, &jobs)), (1, 2), "{jobs:?}");

    let mut request = claim_by("broker-a", lea, now);
    request.room = vec![(slow.clone(), 0)];
    let jobs = s.claim_deliveries(&request).await.unwrap();
    assert_eq!((count(&slow, &jobs), count(&quick, &jobs)), (0, 4), "{jobs:?}");
}

/// Proves a broker's release makes its deliveries claimable at once, and
/// a renewal keeps them its own past the first lease's end; `next_due_at`
/// gives a waiting retry's time and nothing for leases.
pub(super) async fn released_leases_are_claimable_at_once_and_renewed_ones_are_kept(store: SqlStore) {
    let s: &dyn Store = &store;
    s.intake(vec![
        accepted("h-1", message("24REL", Action::Issue, 1, "A"), &clets()),
        accepted("h-2", message("24REN", Action::Issue, 1, "B"), &clets()),
    ])
    .await
    .unwrap();
    let now = Utc::now();
    let jobs = s
        .claim_deliveries(&claim_by("leaving", clets_set(), now))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    let renewed = jobs.iter().find(|j| j.order_number == "24REN").unwrap();
    let lost = s
        .renew_leases(
            "leaving",
            &[(renewed.id, renewed.lease_token)],
            now + chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    assert!(lost.is_empty());
    let lost = s
        .renew_leases("someone-else", &[(renewed.id, renewed.lease_token)], now)
        .await
        .unwrap();
    assert_eq!(lost, [renewed.id], "only the holder renews");

    let after_first_lease = now + chrono::Duration::seconds(30);
    let taken = s
        .claim_deliveries(&claim_by("other", clets_set(), after_first_lease))
        .await
        .unwrap();
    assert_eq!(
        taken.iter().map(|j| j.order_number.as_str()).collect::<Vec<_>>(),
        ["24REL"]
    );
    s.release_leases("other").await.unwrap();
    let again = s
        .claim_deliveries(&claim_by("third", clets_set(), after_first_lease))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|j| j.order_number.as_str()).collect::<Vec<_>>(),
        ["24REL"]
    );
    assert_eq!(
        s.next_due_at(&clets_set(), now).await.unwrap(),
        None,
        "no retry is waiting"
    );
    let retry_at = DateTime::from_timestamp_millis((now + chrono::Duration::minutes(5)).timestamp_millis()).unwrap();
    let retry = DeliveryResult {
        delivery_id: again[0].id,
        lease_token: again[0].lease_token,
        attempt: attempt(),
        outcome: DeliveryOutcome::Retry {
            next_attempt_at: retry_at,
            reason: "BSY".into(),
        },
    };
    s.record_deliveries(vec![retry]).await.unwrap();
    assert_eq!(
        s.next_due_at(&clets_set(), now).await.unwrap(),
        Some(retry_at),
        "the retry's time"
    );
}

/// Proves a background task's lead has one holder at a time: a second
/// broker is refused while the first holds it, the holder keeps it by
/// renewing, and the second takes it once it has run out.
pub(super) async fn a_background_task_has_one_leader(store: SqlStore) {
    let s: &dyn Store = &store;
    let now = Utc::now();
    let soon = now + chrono::Duration::seconds(10);
    assert!(s.lead("gap_expiry", "broker-a", now, soon).await.unwrap());
    assert!(
        !s.lead("gap_expiry", "broker-b", now, soon).await.unwrap(),
        "held by broker-a"
    );
    assert!(
        s.lead("purge", "broker-b", now, soon).await.unwrap(),
        "each task has its own lead"
    );
    let later = now + chrono::Duration::seconds(5);
    assert!(
        s.lead("gap_expiry", "broker-a", later, later + chrono::Duration::seconds(10))
            .await
            .unwrap()
    );
    let past_first = now + chrono::Duration::seconds(11);
    assert!(
        !s.lead("gap_expiry", "broker-b", past_first, past_first).await.unwrap(),
        "renewed by broker-a"
    );
    let run_out = now + chrono::Duration::seconds(16);
    assert!(
        s.lead(
            "gap_expiry",
            "broker-b",
            run_out,
            run_out + chrono::Duration::seconds(10)
        )
        .await
        .unwrap()
    );
    assert!(!s.lead("gap_expiry", "broker-a", run_out, run_out).await.unwrap());
}
