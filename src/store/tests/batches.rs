//! Recording many partner results in one call (see `sql::results`): run
//! on both backends by `store_tests!`.

use super::*;

fn claim_all(partners: PartnerSet, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        partners,
        per_partner: 100,
        room: Vec::new(),
        limit: 100,
        owner: "batch".into(),
        now,
        until: now + chrono::Duration::seconds(20),
    }
}

/// Proves a batch of results has exactly the effects of the same results
/// recorded one by one: the statuses of one message are numbered in result
/// order after the ones it had, each outcome finishes or reschedules its own
/// delivery, an accepted delivery passes its lane's turn to the next
/// sequence, a rejected one holds it, a stale result only leaves its
/// attempt, and a second report of the same delivery in the batch is
/// recorded after the first (as a late report, changing nothing).
pub(super) async fn a_batch_of_results_records_each_as_one_by_one(store: SqlStore) {
    let s: &dyn Store = &store;
    let lea = PartnerId::Lea("CA0340000".into());
    let partners = [PartnerId::Clets, PartnerId::Doj, lea.clone()];
    s.intake(vec![
        accepted("b-1", message("24BAT", Action::Issue, 1, "A"), &partners),
        accepted("b-2", message("24BAT", Action::Modify, 2, "A"), &partners),
        accepted("b-3", message("24BAU", Action::Issue, 1, "B"), &[PartnerId::Clets]),
    ])
    .await
    .unwrap();
    let now = Utc::now();
    let mut jobs = s
        .claim_deliveries(&claim_all(PartnerSet::One(PartnerId::Clets), now))
        .await
        .unwrap();
    jobs.extend(
        s.claim_deliveries(&claim_all(PartnerSet::One(PartnerId::Doj), now))
            .await
            .unwrap(),
    );
    jobs.extend(
        s.claim_deliveries(&claim_all(PartnerSet::Lea { except: Vec::new() }, now))
            .await
            .unwrap(),
    );
    let job = |order: &str, partner: &PartnerId| {
        jobs.iter()
            .find(|j| j.order_number == order && j.partner == *partner)
            .unwrap_or_else(|| panic!("a job for {order} at {partner:?}: {jobs:?}"))
            .clone()
    };
    let (clets, doj, agency, other) = (
        job("24BAT", &PartnerId::Clets),
        job("24BAT", &PartnerId::Doj),
        job("24BAT", &lea),
        job("24BAU", &PartnerId::Clets),
    );
    assert!(
        jobs.iter().all(|j| j.sequence == 1),
        "only sequence 1 is in turn: {jobs:?}"
    );
    let with = |j: &DeliveryJob, token: i64, outcome: DeliveryOutcome| DeliveryResult {
        delivery_id: j.id,
        lease_token: token,
        attempt: attempt(),
        outcome,
    };
    let retry_at = now + chrono::Duration::seconds(600);
    let produced = s
        .record_deliveries(vec![
            with(&clets, clets.lease_token, accepted_with_nic(Some("H000000042"))),
            with(
                &doj,
                doj.lease_token,
                DeliveryOutcome::Retry {
                    next_attempt_at: retry_at,
                    reason: "busy".into(),
                },
            ),
            with(
                &agency,
                agency.lease_token,
                DeliveryOutcome::Rejected {
                    reason: "refused".into(),
                    warnings: Vec::new(),
                },
            ),
            with(&other, other.lease_token - 1, accepted_with_nic(Some("H000000043"))),
            with(&clets, clets.lease_token, accepted_with_nic(Some("H000000044"))),
        ])
        .await
        .unwrap();

    // Statuses: CLETS accepted, then LEA rejected, numbered after b-1's
    // ACCEPTED (1) in result order; nothing for the retry, the stale result
    // or the late second report.
    let kinds: Vec<_> = produced
        .statuses
        .iter()
        .map(|st| {
            (
                st.message.correlates_to.as_str(),
                st.message.status,
                st.message.status_sequence,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("b-1", StatusKind::PartnerAccepted, 2),
            ("b-1", StatusKind::PartnerRejected, 3)
        ]
    );
    assert_eq!(produced.dead_letters.len(), 1, "the rejection's dead letter");
    assert!(
        produced.dead_letters[0].body.starts_with(b"<b-1>"),
        "with b-1's original bytes"
    );
    let stored: Vec<i64> = sqlx::query("SELECT id FROM statuses WHERE correlates_to = 'b-1' ORDER BY status_sequence")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("id").unwrap())
        .collect();
    assert_eq!(stored.len(), 3);
    assert_eq!(&stored[1..], [produced.statuses[0].id, produced.statuses[1].id]);

    let state = |id: i64| {
        let pool = store.pool().clone();
        async move {
            let row = sqlx::query("SELECT state, attempts, next_attempt_at, lease_owner FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            (
                row.try_get::<String, _>("state").unwrap(),
                row.try_get::<i64, _>("attempts").unwrap(),
                row.try_get::<i64, _>("next_attempt_at").unwrap(),
                row.try_get::<Option<String>, _>("lease_owner").unwrap(),
            )
        }
    };
    assert_eq!(state(clets.id).await.0, "ACCEPTED");
    assert_eq!(state(clets.id).await.1, 1, "the late second report counts no attempt");
    let retried = state(doj.id).await;
    assert_eq!(
        (retried.0.as_str(), retried.1, retried.2),
        ("PENDING", 1, retry_at.timestamp_millis())
    );
    assert_eq!(retried.3, None, "the lease ends with the record");
    assert_eq!(state(agency.id).await.0, "REJECTED");
    assert_eq!(state(other.id).await.0, "PENDING", "a stale result changes nothing");
    for (id, n) in [(clets.id, 2), (doj.id, 1), (agency.id, 1), (other.id, 1)] {
        assert_eq!(s.partner_attempts(id).await.unwrap().len(), n, "attempts of {id}");
    }

    // Turns: CLETS's sequence 2 is in turn now; LEA's waits behind the
    // rejection, DOJ's behind the retry.
    let later = now + chrono::Duration::seconds(30);
    let next = s
        .claim_deliveries(&claim_all(PartnerSet::One(PartnerId::Clets), later))
        .await
        .unwrap();
    let keys: Vec<_> = next.iter().map(|j| (j.order_number.as_str(), j.sequence)).collect();
    assert_eq!(keys, [("24BAT", 2), ("24BAU", 1)]);
    assert_eq!(next[0].nic.as_deref(), Some("H000000042"), "the first report's NIC");
    let lea_next = s
        .claim_deliveries(&claim_all(PartnerSet::Lea { except: Vec::new() }, later))
        .await
        .unwrap();
    assert!(lea_next.is_empty(), "{lea_next:?}");
}
