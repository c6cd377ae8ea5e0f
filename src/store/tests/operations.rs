//! Operator actions on dead letters: replay, edit-and-replay, discard and
//! the audit table (ICD §5, §9). Run on both backends by `store_tests!`.

use super::*;

fn by(operator: &str, reason: &str) -> OperatorAction {
    OperatorAction {
        operator: operator.into(),
        reason: reason.into(),
    }
}

fn alice() -> OperatorAction {
    by("alice", "partner fixed its side")
}

fn refused(outcome: Result<ActionDone, ActionError>) -> Refusal {
    match outcome {
        Err(ActionError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn retries_exhausted() -> DeliveryOutcome {
    DeliveryOutcome::DeadLettered {
        code: ErrorCode::RetriesExhausted,
        reason: "not delivered within 86400 s".into(),
    }
}

fn partner_rejected() -> DeliveryOutcome {
    DeliveryOutcome::Rejected {
        reason: "E11 invalid field".into(),
        warnings: Vec::new(),
    }
}

/// Records `outcome` for the due job of `partner` and `number`; returns the
/// job and the dead letter it made.
async fn dead_letter_for(
    s: &dyn Store,
    partner: &PartnerId,
    number: &str,
    outcome: DeliveryOutcome,
) -> (DeliveryJob, StoredDeadLetter) {
    let job = due_for(s, partner, number).await.expect("a due job");
    let produced = s.record_deliveries(vec![result(job.id, outcome)]).await.unwrap();
    assert_eq!(produced.dead_letters.len(), 1, "{produced:?}");
    (job, produced.dead_letters[0].clone())
}

async fn delivery_state(s: &dyn Store, message_id: &str, partner: &PartnerId) -> String {
    let deliveries = s.deliveries_for_message(COURT, message_id).await.unwrap();
    let d = deliveries.iter().find(|d| &d.partner == partner).expect("a delivery");
    d.state.clone()
}

/// A DEAD delivery replayed is PENDING and due now, with the same revision, attempts and retry age afresh; the dead letter is resolved, and the held sequence follows once it is accepted.
pub(super) async fn replay_makes_a_dead_delivery_due_again(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVR";
    s.intake(vec![
        accepted("r-1", message(n, Action::Issue, 1, "001"), &clets()),
        accepted("r-2", message(n, Action::Modify, 2, "001"), &clets()),
    ])
    .await
    .unwrap();
    let (job, dl) = dead_letter_for(s, &PartnerId::Clets, n, retries_exhausted()).await;
    assert!(
        due_for(s, &PartnerId::Clets, n).await.is_none(),
        "the dead letter holds the order"
    );

    let before = Utc::now() - chrono::Duration::milliseconds(5);
    let done = s.replay_dead_letter(dl.id, &alice(), false).await.unwrap();
    assert_eq!((done.delivery_id, done.revision), (Some(job.id), Some(0)));
    assert!(done.produced.statuses.is_empty() && done.produced.dead_letters.is_empty());
    assert_eq!(delivery_state(s, "r-1", &PartnerId::Clets).await, "PENDING");
    let again = s
        .due_deliveries(&PartnerId::Clets, Utc::now(), 10)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.order_number == n)
        .expect("due now");
    assert_eq!(
        (again.id, again.sequence, again.revision, again.attempts),
        (job.id, 1, 0, 0)
    );
    assert!(again.created_at >= before, "the retry age counts from the replay");

    let resolution = s
        .dead_letter(dl.id)
        .await
        .unwrap()
        .unwrap()
        .resolution
        .expect("resolved");
    assert_eq!(
        (resolution.kind.as_str(), resolution.by.as_str()),
        ("REPLAYED", "alice")
    );
    let twice = refused(s.replay_dead_letter(dl.id, &alice(), false).await);
    assert!(matches!(twice, Refusal::Resolved { .. }), "{twice:?}");

    deliver(s, n, 1, Some("H000000001")).await;
    assert_eq!(due_for(s, &PartnerId::Clets, n).await.unwrap().sequence, 2);
}

/// Porter refuses to replay to a partner that already accepted the message (here: a late acceptance after the delivery was given up).
pub(super) async fn replay_is_refused_when_the_partner_accepted(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVL";
    accept(s, accepted("l-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    let (job, dl) = dead_letter_for(s, &PartnerId::Clets, n, retries_exhausted()).await;
    s.record_deliveries(vec![result(job.id, accepted_with_nic(Some("H000000002")))])
        .await
        .unwrap();
    let refusal = refused(s.replay_dead_letter(dl.id, &alice(), false).await);
    assert_eq!(refusal, Refusal::AlreadyAccepted("CLETS".into()));
    let edit = refused(
        s.edit_and_replay(dl.id, &alice(), message(n, Action::Issue, 1, "002"))
            .await,
    );
    assert_eq!(edit, Refusal::AlreadyAccepted("CLETS".into()));
    assert_eq!(delivery_state(s, "l-1", &PartnerId::Clets).await, "DEAD");
    assert!(
        s.audit(&AuditFilter::default()).await.unwrap().is_empty(),
        "refusals change nothing"
    );
}

/// Dead letters at stages validate and sequence are not replayed (nor edited); they can be discarded with a reason.
pub(super) async fn replay_is_refused_at_stages_validate_and_sequence(store: SqlStore) {
    let s: &dyn Store = &store;
    let missing = FieldError::new(ErrorCode::Missing, "order.issue_date", "required");
    let (_, validate) = stored(intake_one(s, rejected(COURT, "v-1", vec![missing])).await);
    let validate = &validate[0];
    assert_eq!(validate.stage, "validate");
    let r = refused(s.replay_dead_letter(validate.id, &alice(), false).await);
    assert!(
        matches!(&r, Refusal::NotReplayable(why) if why.contains("court resends")),
        "{r:?}"
    );
    let e = refused(
        s.edit_and_replay(validate.id, &alice(), message("24DV00001", Action::Issue, 1, "1"))
            .await,
    );
    assert!(matches!(e, Refusal::NotReplayable(_)), "{e:?}");

    let n = "24DVS";
    accept(s, accepted("s-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    hold(s, accepted("s-3", message(n, Action::Modify, 3, "001"), &clets())).await;
    let (_, refused_in_sequence) =
        stored(intake_one(s, accepted("s-2", message(n, Action::Terminate, 2, "001"), &clets())).await);
    let sequence = &refused_in_sequence[0];
    assert_eq!(sequence.stage, "sequence");
    let r = refused(s.replay_dead_letter(sequence.id, &alice(), true).await);
    assert!(matches!(r, Refusal::NotReplayable(_)), "{r:?}");

    let done = s
        .discard_dead_letter(sequence.id, &by("bob", "order closed; nothing to send"))
        .await
        .unwrap();
    assert_eq!(done.delivery_id, None);
    let kinds: Vec<_> = s
        .audit(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(kinds, ["DISCARD"]);
}

/// An edit is stored as the next revision; the due job carries the edited order and the new revision, the original stays, and other partners are untouched.
pub(super) async fn edit_and_replay_sends_the_edited_order_as_a_new_revision(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVE";
    accept(s, accepted("e-1", message(n, Action::Issue, 1, "001"), &both())).await;
    let (job, dl) = dead_letter_for(s, &PartnerId::Clets, n, partner_rejected()).await;

    let moved = refused(
        s.edit_and_replay(dl.id, &alice(), message(n, Action::Issue, 2, "EDIT"))
            .await,
    );
    match moved {
        Refusal::InvalidEdit(errors) => assert_eq!(errors[0].field, "sequence"),
        other => panic!("{other:?}"),
    }
    let edited = message(n, Action::Issue, 1, "EDIT");
    let done = s
        .edit_and_replay(dl.id, &by("carol", "fix case number"), edited.clone())
        .await
        .unwrap();
    assert_eq!((done.delivery_id, done.revision), (Some(job.id), Some(1)));

    let again = due_for(s, &PartnerId::Clets, n).await.expect("due again");
    assert_eq!((again.id, again.revision), (job.id, 1));
    assert_eq!(again.order, edited);
    assert_eq!(again.state.order.case_number.as_deref(), Some("24FLEDIT"));
    let doj = due_for(s, &PartnerId::Doj, n).await.expect("DOJ job");
    assert_eq!(
        (doj.revision, doj.order.order.case_number.as_deref()),
        (0, Some("24FL001"))
    );

    let original: String = sqlx::query_scalar("SELECT canonical_json FROM inbound_messages WHERE message_id = $1")
        .bind("e-1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(original.contains("24FL001"), "the original stays");
    let row = sqlx::query("SELECT edited_by, reason, revision FROM revisions WHERE delivery_id = $1")
        .bind(job.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let who: (String, String, i64) = (
        row.try_get("edited_by").unwrap(),
        row.try_get("reason").unwrap(),
        row.try_get("revision").unwrap(),
    );
    assert_eq!(who, ("carol".into(), "fix case number".into(), 1));

    // Rejected again: a second edit is revision 2; a plain replay keeps it.
    let produced = s
        .record_deliveries(vec![result(job.id, partner_rejected())])
        .await
        .unwrap();
    let second = produced.dead_letters[0].id;
    let done = s
        .edit_and_replay(second, &alice(), message(n, Action::Issue, 1, "EDIT2"))
        .await
        .unwrap();
    assert_eq!(done.revision, Some(2));
    let produced = s
        .record_deliveries(vec![result(job.id, partner_rejected())])
        .await
        .unwrap();
    let done = s
        .replay_dead_letter(produced.dead_letters[0].id, &alice(), false)
        .await
        .unwrap();
    assert_eq!(done.revision, Some(2));
    let job = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!(
        (job.revision, job.order.order.case_number.as_deref()),
        (2, Some("24FLEDIT2"))
    );
}

/// Discard needs an operator and a reason; it makes the delivery DISCARDED, which releases the later sequences.
pub(super) async fn discard_requires_a_reason_and_releases_later_sequences(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVD";
    let doj = vec![PartnerId::Doj];
    s.intake(vec![
        accepted("d-1", message(n, Action::Issue, 1, "001"), &doj),
        accepted("d-2", message(n, Action::Modify, 2, "001"), &doj),
    ])
    .await
    .unwrap();
    let (_, dl) = dead_letter_for(s, &PartnerId::Doj, n, partner_rejected()).await;
    assert!(due_for(s, &PartnerId::Doj, n).await.is_none());

    for (operator, reason) in [("alice", ""), ("alice", "  "), ("", "why")] {
        let r = refused(s.discard_dead_letter(dl.id, &by(operator, reason)).await);
        assert_eq!(r, Refusal::ReasonRequired);
    }
    assert_eq!(
        refused(s.discard_dead_letter(999_999, &alice()).await),
        Refusal::NotFound(999_999)
    );
    let done = s
        .discard_dead_letter(dl.id, &by("alice", "DOJ has it on paper"))
        .await
        .unwrap();
    assert!(done.produced.dead_letters.is_empty(), "no cascade for DOJ");
    assert_eq!(delivery_state(s, "d-1", &PartnerId::Doj).await, "DISCARDED");
    assert_eq!(due_for(s, &PartnerId::Doj, n).await.unwrap().sequence, 2);
    let r = refused(s.replay_dead_letter(dl.id, &alice(), false).await);
    assert!(
        matches!(r, Refusal::Resolved { ref kind, .. } if kind == "DISCARDED"),
        "{r:?}"
    );
}

/// A discarded EPO: the later pending CLETS messages of the order are DEAD_LETTERED with UNKNOWN_ORDER; other partners go on.
pub(super) async fn discarded_epo_dead_letters_later_clets_messages(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVU";
    s.intake(vec![
        accepted("u-1", message(n, Action::Issue, 1, "001"), &both()),
        accepted("u-2", message(n, Action::Modify, 2, "001"), &both()),
        accepted("u-3", message(n, Action::Service, 3, "001"), &both()),
    ])
    .await
    .unwrap();
    let (_, dl) = dead_letter_for(s, &PartnerId::Clets, n, partner_rejected()).await;
    let done = s.discard_dead_letter(dl.id, &alice()).await.unwrap();

    let statuses: Vec<_> = done
        .produced
        .statuses
        .iter()
        .map(|st| {
            (
                st.message.correlates_to.as_str(),
                st.message.status,
                st.message.errors[0].code,
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("u-2", StatusKind::DeadLettered, ErrorCode::UnknownOrder),
            ("u-3", StatusKind::DeadLettered, ErrorCode::UnknownOrder)
        ]
    );
    for d in &done.produced.dead_letters {
        assert_eq!(
            (d.stage.as_str(), d.reason.as_str(), d.partner.clone()),
            ("deliver", "UNKNOWN_ORDER", Some(PartnerId::Clets))
        );
    }
    assert_eq!(delivery_state(s, "u-3", &PartnerId::Clets).await, "DEAD");
    assert!(due_for(s, &PartnerId::Clets, n).await.is_none());
    assert_eq!(due_for(s, &PartnerId::Doj, n).await.unwrap().sequence, 1, "DOJ goes on");
    let audit = s.audit(&AuditFilter::default()).await.unwrap();
    let ids: Vec<i64> = done.produced.dead_letters.iter().map(|d| d.id).collect();
    assert_eq!(audit[0].details["unknown_order_dead_letters"], serde_json::json!(ids));
}

/// Every action writes one audit row (who, what, which dead letter, why), listed newest first and filtered; resolved dead letters leave the open list.
pub(super) async fn every_operator_action_is_audited(store: SqlStore) {
    let s: &dyn Store = &store;
    let numbers = ["24DVA1", "24DVA2", "24DVA3", "24DVA4"];
    let items = numbers
        .iter()
        .map(|n| {
            accepted(
                &format!("{n}-1"),
                message(n, Action::Issue, 1, "001"),
                &[PartnerId::Doj],
            )
        })
        .collect();
    s.intake(items).await.unwrap();
    let mut ids = Vec::new();
    for n in numbers {
        ids.push(dead_letter_for(s, &PartnerId::Doj, n, retries_exhausted()).await.1.id);
    }
    s.replay_dead_letter(ids[0], &by("alice", "one"), false).await.unwrap();
    s.edit_and_replay(ids[1], &by("bob", "two"), message("24DVA2", Action::Issue, 1, "X"))
        .await
        .unwrap();
    s.discard_dead_letter(ids[2], &by("alice", "three")).await.unwrap();
    s.replay_dead_letter(ids[3], &by("carol", "four"), true).await.unwrap();

    let all = s.audit(&AuditFilter::default()).await.unwrap();
    let rows: Vec<_> = all
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.dead_letter_id,
                a.operator.as_str(),
                a.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("BULK_REPLAY", ids[3], "carol", "four"),
            ("DISCARD", ids[2], "alice", "three"),
            ("EDIT_REPLAY", ids[1], "bob", "two"),
            ("REPLAY", ids[0], "alice", "one"),
        ]
    );
    assert_eq!(all[1].details["previous_state"], "DEAD");
    assert_eq!(all[2].details["revision"], 1);
    let by_alice = AuditFilter {
        operator: Some("alice".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.audit(&by_alice).await.unwrap().len(), 2);
    let one = AuditFilter {
        dead_letter_id: Some(ids[1]),
        ..AuditFilter::default()
    };
    assert_eq!(s.audit(&one).await.unwrap()[0].action, "EDIT_REPLAY");
    let later = AuditFilter {
        since: Some(Utc::now() + chrono::Duration::minutes(1)),
        ..AuditFilter::default()
    };
    assert!(s.audit(&later).await.unwrap().is_empty());

    let open = DeadLetterFilter {
        open: Some(true),
        ..DeadLetterFilter::default()
    };
    assert!(s.dead_letters(&open).await.unwrap().is_empty());
    let resolved = DeadLetterFilter {
        open: Some(false),
        ..DeadLetterFilter::default()
    };
    assert_eq!(s.dead_letters(&resolved).await.unwrap().len(), 4);
}
