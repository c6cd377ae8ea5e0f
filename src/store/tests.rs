//! The store's test suite. Every test is one async function over a fresh
//! store, run twice: on a temporary SQLite file and on PostgreSQL in a fresh
//! schema (`PORTER_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). An unreachable PostgreSQL
//! fails the PostgreSQL half; it is never skipped.

use std::future::Future;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, Row};

use super::*;
use crate::model::{PersonName, ProtectedPerson, ProtectionOrder, RestrainedPerson, Service, StatusKind};

mod batches;
mod images;
mod leases;
mod operations;
mod retries;
use batches::*;
use images::*;
use leases::*;
use operations::*;
use retries::*;

const COURT: &str = "CA034025J";
const OTHER_COURT: &str = "CA019015J";

// ---------------------------------------------------------------------------
// Fixtures

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("porter.db").display());
    let store = SqlStore::connect(&url).await.expect("open the SQLite store");
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base =
        std::env::var("PORTER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {base}: {e}"));
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let outcome = match SqlStore::connect(&url).await {
        Ok(store) => {
            let outcome = tokio::spawn(test(store.clone())).await;
            store.close().await;
            outcome.map_err(|e| e.into_panic())
        }
        Err(e) => {
            let message: Box<dyn std::any::Any + Send> = Box::new(format!("open the PostgreSQL store: {e}"));
            Err(message)
        }
    };
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .expect("drop schema");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each test once per backend.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

store_tests!(
    accepted_message_gets_status_and_deliveries,
    same_body_again_is_a_duplicate_with_earlier_statuses,
    same_message_id_with_other_body_is_a_conflict,
    rejected_message_gets_status_and_dead_letter_and_frees_its_sequence,
    same_sequence_under_new_message_id,
    issue_of_an_active_order_is_a_sequence_conflict,
    closed_orders_reject_later_messages,
    issue_after_cancel_reenters_and_gets_a_new_nic,
    later_sequences_wait_for_earlier_deliveries,
    gap_holds_deliveries_until_filled,
    delivery_outcomes_produce_statuses_and_dead_letters,
    status_sequence_counts_per_message,
    outbox_lists_rows_until_marked,
    dead_letters_filter_and_sort,
    batch_of_500_in_one_call,
    purge_forgets_finished_messages_but_keeps_order_rules,
    concurrent_intakes_of_one_message_store_it_once,
    conflicting_arrivals_are_kept_and_ordered,
    gap_filled_by_terminate_refuses_the_waiting_messages,
    reentry_before_its_cancel_is_held_and_applied,
    held_messages_are_refused_when_the_gap_shows_them_invalid,
    repeat_under_new_message_id_warns_duplicate,
    nul_in_input_text_is_stored_as_replacement,
    lea_loop_takes_every_agency_but_the_excluded,
    applied_message_keeps_the_resulting_order_state,
    gap_timeout_dead_letters_the_waiting_message_and_frees_its_sequence,
    replay_makes_a_dead_delivery_due_again,
    replay_is_refused_when_the_partner_accepted,
    replay_is_refused_at_stages_validate_and_sequence,
    edit_and_replay_sends_the_edited_order_as_a_new_revision,
    discard_requires_a_reason_and_releases_later_sequences,
    discarded_epo_dead_letters_later_clets_messages,
    every_operator_action_is_audited,
    image_is_stored_once,
    stored_orders_refer_to_their_image,
    same_sequence_compares_the_image,
    due_deliveries_do_not_read_images,
    retries_run_out_after_max_age_since_first_attempt_and_three_attempts,
    retries_need_three_attempts_past_the_max_age,
    replay_restarts_the_retry_age_and_attempts,
    attempts_keep_their_image_by_reference,
    edits_refer_to_a_kept_image,
    a_modify_without_an_image_keeps_the_orders_image,
    a_claimed_delivery_is_nobody_elses_until_its_lease_ends,
    a_result_under_an_old_token_is_fenced_off,
    a_claim_respects_each_partners_room,
    released_leases_are_claimable_at_once_and_renewed_ones_are_kept,
    a_background_task_has_one_leader,
    a_batch_of_results_records_each_as_one_by_one,
);

// ---------------------------------------------------------------------------
// Builders

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// A canonical message for `number` at `sequence`; `variant` changes the
/// content (the case number) without changing the order key.
fn message(number: &str, action: Action, sequence: u32, variant: &str) -> OrderMessage {
    let mut order = ProtectionOrder {
        order_number: Some(number.into()),
        case_number: Some(format!("24FL{variant}").into()),
        order_type: Some("DV".into()),
        ..ProtectionOrder::default()
    };
    let mut m = OrderMessage {
        court_ori: COURT.into(),
        action: Some(action),
        sequence: Some(sequence),
        ..OrderMessage::default()
    };
    match action {
        Action::Issue | Action::Modify => {
            order.issue_date = Some(date(2026, 11, 25));
            order.brady = Some("Y".into());
            order.condition_codes = vec!["01".into(), "07".into()];
            m.restrained_person = Some(RestrainedPerson {
                name: PersonName {
                    last: Some("DOE".into()),
                    first: Some("JOHN".into()),
                    ..PersonName::default()
                },
                birth_date: Some(date(1985, 2, 14)),
                sex: Some("M".into()),
                race: Some("W".into()),
                ..RestrainedPerson::default()
            });
            m.protected_persons = vec![ProtectedPerson {
                name: PersonName {
                    last: Some("DOE".into()),
                    ..PersonName::default()
                },
                sex: Some("F".into()),
                ..ProtectedPerson::default()
            }];
        }
        Action::Terminate => order.termination_date = Some(date(2027, 1, 5)),
        Action::Cancel => order.cancel_reason = Some("ENTERED IN ERROR".into()),
        Action::Service => {
            order.service = Some(Service {
                served_by: Some("DEPUTY SMITH".into()),
                method: Some("P".into()),
                ..Service::default()
            })
        }
    }
    m.order = order;
    m
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn inbound(court: &str, message_id: &str, body: Vec<u8>) -> InboundMessage {
    InboundMessage {
        court_ori: court.into(),
        message_id: message_id.into(),
        body_sha256: sha256_hex(&body),
        body,
        content_type: "application/xml".into(),
        layout: None,
        received_at: Utc::now(),
    }
}

/// An accepted item whose body is the canonical JSON plus the message id
/// (so two message ids never share a body).
fn accepted(message_id: &str, order: OrderMessage, partners: &[PartnerId]) -> IntakeItem {
    let canonical = serde_json::to_string(&order).expect("serialise");
    let body = format!("<{message_id}>{canonical}").into_bytes();
    IntakeItem {
        inbound: inbound(&order.court_ori.clone(), message_id, body),
        verdict: Verdict::Accepted {
            canonical_sha256: sha256_hex(canonical.as_bytes()),
            order: Box::new(order),
            partners: partners.to_vec(),
            warnings: Vec::new(),
        },
    }
}

fn rejected(court: &str, message_id: &str, errors: Vec<FieldError>) -> IntakeItem {
    IntakeItem {
        inbound: inbound(court, message_id, format!("<bad {message_id}/>").into_bytes()),
        verdict: Verdict::Rejected {
            order_number: Some("24DV00001".into()),
            sequence: Some(1),
            errors,
        },
    }
}

fn clets() -> Vec<PartnerId> {
    vec![PartnerId::Clets]
}

fn both() -> Vec<PartnerId> {
    vec![PartnerId::Clets, PartnerId::Doj]
}

fn far_future() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::days(1)
}

fn attempt() -> PartnerAttempt {
    PartnerAttempt {
        at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
        request: b"EPO.CA034025J.MCN.".to_vec(),
        image: None,
        response: Some("ACK".into()),
        error: None,
    }
}

fn result(delivery_id: i64, outcome: DeliveryOutcome) -> DeliveryResult {
    DeliveryResult {
        delivery_id,
        lease_token: 0,
        attempt: attempt(),
        outcome,
    }
}

fn accepted_with_nic(nic: Option<&str>) -> DeliveryOutcome {
    DeliveryOutcome::Accepted {
        record_ids: nic
            .map(|n| {
                vec![PartnerRecordId {
                    scheme: "NIC".into(),
                    id: n.into(),
                }]
            })
            .unwrap_or_default(),
        nic: nic.map(str::to_string),
        warnings: Vec::new(),
    }
}

async fn intake_one(store: &dyn Store, item: IntakeItem) -> IntakeOutcome {
    let mut outcomes = store.intake(vec![item]).await.expect("intake");
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

/// The statuses and dead letters of a `Stored` outcome (panics on any other).
fn stored(outcome: IntakeOutcome) -> (Vec<StoredStatus>, Vec<StoredDeadLetter>) {
    match outcome {
        IntakeOutcome::Stored { statuses, dead_letters } => (statuses, dead_letters),
        other => panic!("expected Stored, got {other:?}"),
    }
}

/// Intake that must be accepted; returns the `ACCEPTED` status.
async fn accept(store: &dyn Store, item: IntakeItem) -> StatusMessage {
    let (statuses, dead_letters) = stored(intake_one(store, item).await);
    assert!(dead_letters.is_empty(), "{dead_letters:?}");
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let status = statuses[0].message.clone();
    assert_eq!(status.status, StatusKind::Accepted, "{status:?}");
    status
}

/// Intake of a message that waits behind a sequence gap: stored, with no
/// status yet (its ACCEPTED comes when it is applied).
async fn hold(store: &dyn Store, item: IntakeItem) {
    let (statuses, dead_letters) = stored(intake_one(store, item).await);
    assert!(
        statuses.is_empty() && dead_letters.is_empty(),
        "{statuses:?} {dead_letters:?}"
    );
}

/// Intake that fills a gap: every status must be ACCEPTED; returns the
/// message ids they answer, in order.
async fn accept_filling(store: &dyn Store, item: IntakeItem) -> Vec<String> {
    let (statuses, dead_letters) = stored(intake_one(store, item).await);
    assert!(dead_letters.is_empty(), "{dead_letters:?}");
    assert!(
        statuses.iter().all(|s| s.message.status == StatusKind::Accepted),
        "{statuses:?}"
    );
    statuses.iter().map(|s| s.message.correlates_to.clone()).collect()
}

/// Intake that must be rejected; returns the single error code.
async fn reject_code(store: &dyn Store, item: IntakeItem) -> ErrorCode {
    let (statuses, dead_letters) = stored(intake_one(store, item).await);
    assert_eq!(statuses[0].message.status, StatusKind::Rejected, "{:?}", statuses[0]);
    assert_eq!(dead_letters.len(), 1, "a rejected message is one dead letter");
    let dl = &dead_letters[0];
    assert_eq!(dl.stage, "validate");
    assert_eq!(dl.reason, statuses[0].message.errors[0].code.as_str());
    statuses[0].message.errors[0].code
}

async fn due_jobs(store: &dyn Store, partner: &PartnerId) -> Vec<DeliveryJob> {
    store
        .due_deliveries(partner, far_future(), 100)
        .await
        .expect("due deliveries")
}

/// The single due job of `partner` for `number`, if any.
async fn due_for(store: &dyn Store, partner: &PartnerId, number: &str) -> Option<DeliveryJob> {
    let jobs: Vec<_> = due_jobs(store, partner)
        .await
        .into_iter()
        .filter(|j| j.order_number == number)
        .collect();
    assert!(jobs.len() <= 1, "at most one job per order: {jobs:?}");
    jobs.into_iter().next()
}

/// Delivers the due job of `number` to CLETS as accepted.
async fn deliver(store: &dyn Store, number: &str, sequence: u32, nic: Option<&str>) {
    let job = due_for(store, &PartnerId::Clets, number).await.expect("a due job");
    assert_eq!(job.sequence, sequence);
    store
        .record_deliveries(vec![result(job.id, accepted_with_nic(nic))])
        .await
        .expect("record");
}

/// The order row: state, current order and the sequence that closed it.
async fn order_row(store: &SqlStore, number: &str) -> (String, OrderMessage, Option<i64>) {
    let row = sqlx::query(
        "SELECT state, order_json, closed_sequence FROM orders \
         WHERE court_ori = $1 AND order_number = $2",
    )
    .bind(COURT.to_string())
    .bind(number.to_string())
    .fetch_one(store.pool())
    .await
    .expect("order row");
    let json: String = row.try_get("order_json").unwrap();
    let order = serde_json::from_str(&json).expect("order JSON");
    (
        row.try_get("state").unwrap(),
        order,
        row.try_get("closed_sequence").unwrap(),
    )
}

/// (correlation id, kind, partner, StatusSequence) of each status.
fn summary(statuses: &[StoredStatus]) -> Vec<(String, StatusKind, Option<PartnerId>, u32)> {
    statuses
        .iter()
        .map(|st| {
            let m = &st.message;
            (m.correlates_to.clone(), m.status, m.partner.clone(), m.status_sequence)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Tests

/// A new valid message is stored with one ACCEPTED status listing its partners and one pending delivery each.
async fn accepted_message_gets_status_and_deliveries(store: SqlStore) {
    let s: &dyn Store = &store;
    let order = message("24DV01234", Action::Issue, 1, "001");
    let status = accept(s, accepted("m-1", order.clone(), &both())).await;
    assert_eq!(status.court_ori, COURT);
    assert_eq!(status.order_number.as_deref(), Some("24DV01234"));
    assert_eq!(status.sequence, Some(1));
    assert_eq!(status.correlates_to, "m-1");
    assert_eq!(status.status_sequence, 1);
    assert_eq!(status.routed_partners, both());
    assert!(status.partner.is_none() && status.errors.is_empty());

    let views = s.deliveries_for_message(COURT, "m-1").await.unwrap();
    assert_eq!(views.len(), 2);
    assert!(views.iter().all(|v| v.state == "PENDING" && v.attempts == 0));
    assert_eq!(views.iter().map(|v| v.partner.clone()).collect::<Vec<_>>(), both());

    let job = due_for(s, &PartnerId::Clets, "24DV01234").await.expect("CLETS job");
    assert_eq!((job.court_ori.as_str(), job.message_id.as_str()), (COURT, "m-1"));
    assert_eq!(
        (job.sequence, job.action, job.revision, job.attempts),
        (1, Action::Issue, 0, 0)
    );
    assert_eq!(job.order, order);
    assert_eq!(job.nic, None);
    assert!(due_for(s, &PartnerId::Doj, "24DV01234").await.is_some());
    assert!(due_jobs(s, &PartnerId::Lea("CA0340000".into())).await.is_empty());
    // Not due before its time.
    let past = Utc::now() - chrono::Duration::hours(1);
    assert!(s.due_deliveries(&PartnerId::Clets, past, 10).await.unwrap().is_empty());

    let statuses = s.statuses_for_message(COURT, "m-1").await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].message, status);
}

/// The same message_id and body again changes nothing and returns every status recorded so far.
async fn same_body_again_is_a_duplicate_with_earlier_statuses(store: SqlStore) {
    let s: &dyn Store = &store;
    let item = accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &clets());
    accept(s, item.clone()).await;
    deliver(s, "24DV01234", 1, Some("H123456789")).await;
    let pending_before = s.pending_statuses(100).await.unwrap().len();

    let IntakeOutcome::Duplicate { statuses } = intake_one(s, item).await else {
        panic!("expected Duplicate");
    };
    assert_eq!(statuses, s.statuses_for_message(COURT, "m-1").await.unwrap());
    let kinds: Vec<_> = statuses.iter().map(|st| st.message.status).collect();
    assert_eq!(kinds, [StatusKind::Accepted, StatusKind::PartnerAccepted]);
    assert_eq!(
        statuses.iter().map(|st| st.message.status_sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(s.deliveries_for_message(COURT, "m-1").await.unwrap().len(), 1);
    assert_eq!(s.pending_statuses(100).await.unwrap().len(), pending_before);
    assert!(due_jobs(s, &PartnerId::Clets).await.is_empty());
}

/// The same message_id with another body gets CONFLICT_REJECTED (next StatusSequence of the original, outbox), listed with the original's statuses, and leaves the original untouched.
async fn same_message_id_with_other_body_is_a_conflict(store: SqlStore) {
    let s: &dyn Store = &store;
    accept(
        s,
        accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &clets()),
    )
    .await;
    let other = accepted("m-1", message("24DV01234", Action::Issue, 1, "002"), &clets());
    let IntakeOutcome::Conflict { status } = intake_one(s, other).await else {
        panic!("expected Conflict");
    };
    let m = &status.message;
    assert_eq!(m.status, StatusKind::ConflictRejected);
    assert_eq!((m.correlates_to.as_str(), m.status_sequence), ("m-1", 2));
    assert_eq!(
        (m.court_ori.as_str(), m.order_number.as_deref()),
        (COURT, Some("24DV01234"))
    );
    assert_eq!(m.errors[0].code, ErrorCode::DuplicateConflict);
    assert_eq!(m.errors[0].field, "message_id");

    // Listed after the original's statuses, in StatusSequence order.
    let listed = s.statuses_for_message(COURT, "m-1").await.unwrap();
    let kinds: Vec<_> = listed.iter().map(|st| st.message.status).collect();
    assert_eq!(kinds, [StatusKind::Accepted, StatusKind::ConflictRejected]);
    assert_eq!(listed[1], status);
    assert_eq!(s.deliveries_for_message(COURT, "m-1").await.unwrap().len(), 1);
    let job = due_for(s, &PartnerId::Clets, "24DV01234").await.unwrap();
    assert_eq!(job.order.order.case_number.as_deref(), Some("24FL001"));
    let pending = s.pending_statuses(100).await.unwrap();
    assert!(pending.iter().any(|p| p.id == status.id && p.message == status.message));
    assert!(s.dead_letters(&DeadLetterFilter::default()).await.unwrap().is_empty());
}

/// An invalid message gets REJECTED and a validate dead letter with its bytes; its sequence stays free.
async fn rejected_message_gets_status_and_dead_letter_and_frees_its_sequence(store: SqlStore) {
    let s: &dyn Store = &store;
    let errors = vec![
        FieldError::new(ErrorCode::Missing, "restrained_person.sex", "sex is required").at("3:10"),
        FieldError::new(ErrorCode::TooLong, "order.case_number", "over 20 characters"),
    ];
    let item = rejected(COURT, "bad-1", errors.clone());
    let body = item.inbound.body.clone();
    let (statuses, mut dead_letters) = stored(intake_one(s, item).await);
    assert_eq!(statuses.len(), 1);
    let m = &statuses[0].message;
    assert_eq!(m.status, StatusKind::Rejected);
    assert_eq!((m.order_number.as_deref(), m.sequence), (Some("24DV00001"), Some(1)));
    assert_eq!(m.errors, errors);
    assert_eq!(dead_letters.len(), 1);
    let dl = dead_letters.remove(0);
    assert_eq!((dl.stage.as_str(), dl.reason.as_str()), ("validate", "MISSING"));
    assert_eq!((dl.court_ori.as_str(), dl.message_id.as_str()), (COURT, "bad-1"));
    assert_eq!((dl.body.clone(), dl.content_type.as_str()), (body, "application/xml"));
    assert_eq!((dl.errors.clone(), dl.attempts, dl.partner.clone()), (errors, 0, None));
    assert_eq!(s.dead_letter(dl.id).await.unwrap(), Some(dl));
    assert!(s.deliveries_for_message(COURT, "bad-1").await.unwrap().is_empty());
    assert!(due_jobs(s, &PartnerId::Clets).await.is_empty());

    // The corrected message takes the same sequence under a new message_id.
    accept(
        s,
        accepted("good-1", message("24DV00001", Action::Issue, 1, "001"), &clets()),
    )
    .await;
    assert!(due_for(s, &PartnerId::Clets, "24DV00001").await.is_some());
}

/// An accepted sequence again under a new message_id: same content is a no-effect ACCEPTED with a DUPLICATE warning (not DUPLICATE_CONFLICT, which the ICD keeps for a reused message_id), other content SEQUENCE_CONFLICT.
async fn same_sequence_under_new_message_id(store: SqlStore) {
    let s: &dyn Store = &store;
    let order = message("24DV01234", Action::Issue, 1, "001");
    accept(s, accepted("m-1", order.clone(), &both())).await;

    let again = accept(s, accepted("m-2", order.clone(), &both())).await;
    assert!(again.routed_partners.is_empty());
    assert_eq!(again.warnings.len(), 1);
    assert_eq!(again.warnings[0].code, ErrorCode::Duplicate);
    assert!(again.warnings[0].text.contains("m-1"), "{}", again.warnings[0].text);
    assert_eq!(again.warnings[0].field, "sequence");
    assert!(s.deliveries_for_message(COURT, "m-2").await.unwrap().is_empty());
    assert_eq!(due_jobs(s, &PartnerId::Clets).await.len(), 1);
    // The newcomer's own message_id is now a dedup record too.
    assert!(matches!(
        intake_one(s, accepted("m-2", order, &both())).await,
        IntakeOutcome::Duplicate { statuses } if statuses.len() == 1
    ));

    let changed = accepted("m-3", message("24DV01234", Action::Issue, 1, "002"), &both());
    assert_eq!(reject_code(s, changed).await, ErrorCode::SequenceConflict);
    assert_eq!(due_jobs(s, &PartnerId::Clets).await.len(), 1);
}

/// An ISSUE for an order that exists and is active is REJECTED with SEQUENCE_CONFLICT.
async fn issue_of_an_active_order_is_a_sequence_conflict(store: SqlStore) {
    let s: &dyn Store = &store;
    accept(
        s,
        accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &clets()),
    )
    .await;
    let reissue = accepted("m-2", message("24DV01234", Action::Issue, 2, "001"), &clets());
    assert_eq!(reject_code(s, reissue).await, ErrorCode::SequenceConflict);
    // A MODIFY with that sequence is still welcome.
    accept(
        s,
        accepted("m-3", message("24DV01234", Action::Modify, 2, "001"), &clets()),
    )
    .await;
}

/// After TERMINATE or CANCEL, later messages are ORDER_CLOSED (only the next-sequence ISSUE after a CANCEL re-enters).
async fn closed_orders_reject_later_messages(store: SqlStore) {
    let s: &dyn Store = &store;
    accept(s, accepted("a-1", message("24DVA", Action::Issue, 1, "A"), &clets())).await;
    accept(
        s,
        accepted("a-2", message("24DVA", Action::Terminate, 2, "A"), &clets()),
    )
    .await;
    let modify = accepted("a-3", message("24DVA", Action::Modify, 3, "A"), &clets());
    assert_eq!(reject_code(s, modify).await, ErrorCode::OrderClosed);
    let reissue = accepted("a-4", message("24DVA", Action::Issue, 3, "A"), &clets());
    assert_eq!(reject_code(s, reissue).await, ErrorCode::OrderClosed);

    accept(s, accepted("b-1", message("24DVB", Action::Issue, 1, "B"), &clets())).await;
    accept(s, accepted("b-2", message("24DVB", Action::Cancel, 2, "B"), &clets())).await;
    let service = accepted("b-3", message("24DVB", Action::Service, 3, "B"), &clets());
    assert_eq!(reject_code(s, service).await, ErrorCode::OrderClosed);
    let late_issue = accepted("b-4", message("24DVB", Action::Issue, 4, "B"), &clets());
    assert_eq!(reject_code(s, late_issue).await, ErrorCode::OrderClosed);
}

/// The ISSUE right after a CANCEL re-enters the order: the XPO still carries the old NIC, the new EPO none, later jobs the new one.
async fn issue_after_cancel_reenters_and_gets_a_new_nic(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DV01234";
    accept(s, accepted("m-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    deliver(s, n, 1, Some("H000000001")).await;
    accept(s, accepted("m-2", message(n, Action::Cancel, 2, "001"), &clets())).await;
    let reentry = accept(s, accepted("m-3", message(n, Action::Issue, 3, "002"), &clets())).await;
    assert_eq!(reentry.routed_partners, clets());

    let xpo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!(
        (xpo.sequence, xpo.action, xpo.nic.as_deref()),
        (2, Action::Cancel, Some("H000000001"))
    );
    deliver(s, n, 2, None).await;
    let epo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!((epo.sequence, epo.action, epo.nic.as_deref()), (3, Action::Issue, None));
    deliver(s, n, 3, Some("H000000002")).await;

    accept(s, accepted("m-4", message(n, Action::Modify, 4, "002"), &clets())).await;
    let mpo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!((mpo.sequence, mpo.nic.as_deref()), (4, Some("H000000002")));
}

/// Per order and partner, a later sequence is due only once the earlier one is ACCEPTED; other orders and partners are not held.
async fn later_sequences_wait_for_earlier_deliveries(store: SqlStore) {
    let s: &dyn Store = &store;
    s.intake(vec![
        accepted("x-1", message("24DVX", Action::Issue, 1, "X"), &both()),
        accepted("x-2", message("24DVX", Action::Modify, 2, "X"), &both()),
        accepted("y-1", message("24DVY", Action::Issue, 1, "Y"), &both()),
    ])
    .await
    .unwrap();
    let jobs = due_jobs(s, &PartnerId::Clets).await;
    let keys: Vec<_> = jobs.iter().map(|j| (j.order_number.as_str(), j.sequence)).collect();
    assert_eq!(keys, [("24DVX", 1), ("24DVY", 1)], "one job per order, oldest first");
    let limited = s.due_deliveries(&PartnerId::Clets, far_future(), 1).await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].order_number, "24DVX");

    // A retry keeps sequence 2 waiting and makes sequence 1 due later.
    let retry_at = Utc::now() + chrono::Duration::minutes(10);
    let retry = DeliveryOutcome::Retry {
        next_attempt_at: retry_at,
        reason: "BSY".into(),
    };
    s.record_deliveries(vec![result(jobs[0].id, retry)]).await.unwrap();
    let soon = s.due_deliveries(&PartnerId::Clets, Utc::now(), 10).await.unwrap();
    assert_eq!(
        soon.iter().map(|j| j.order_number.as_str()).collect::<Vec<_>>(),
        ["24DVY"]
    );
    let again = due_for(s, &PartnerId::Clets, "24DVX").await.unwrap();
    assert_eq!((again.sequence, again.attempts), (1, 1));

    // DOJ has its own stream.
    assert_eq!(due_for(s, &PartnerId::Doj, "24DVX").await.unwrap().sequence, 1);

    deliver(s, "24DVX", 1, Some("H000000001")).await;
    let next = due_for(s, &PartnerId::Clets, "24DVX").await.unwrap();
    assert_eq!(
        (next.sequence, next.action, next.nic.as_deref()),
        (2, Action::Modify, Some("H000000001"))
    );
    assert_eq!(due_for(s, &PartnerId::Doj, "24DVX").await.unwrap().sequence, 1);
}

/// A missing sequence holds the later ones; a corrected message that fills it (even below a TERMINATE) releases them in order.
async fn gap_holds_deliveries_until_filled(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DV01234";
    accept(s, accepted("m-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    deliver(s, n, 1, Some("H000000001")).await;
    // Sequence 2 is rejected (say, invalid); 3 arrives and waits.
    let mut bad = rejected(COURT, "m-2", vec![FieldError::new(ErrorCode::Missing, "x", "y")]);
    if let Verdict::Rejected {
        order_number, sequence, ..
    } = &mut bad.verdict
    {
        *order_number = Some(n.into());
        *sequence = Some(2);
    }
    reject_code(s, bad).await;
    hold(s, accepted("m-3", message(n, Action::Terminate, 3, "001"), &clets())).await;
    assert!(
        due_for(s, &PartnerId::Clets, n).await.is_none(),
        "sequence 3 waits for 2"
    );
    // Nothing may follow the TERMINATE.
    let after = accepted("m-4", message(n, Action::Modify, 4, "001"), &clets());
    assert_eq!(reject_code(s, after).await, ErrorCode::OrderClosed);

    // The corrected sequence 2 fills the gap below the TERMINATE.
    let filled = accept_filling(s, accepted("m-2b", message(n, Action::Modify, 2, "002"), &clets())).await;
    assert_eq!(filled, ["m-2b", "m-3"], "the waiting message is accepted when applied");
    let job = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!((job.sequence, job.nic.as_deref()), (2, Some("H000000001")));
    deliver(s, n, 2, None).await;
    assert_eq!(due_for(s, &PartnerId::Clets, n).await.unwrap().sequence, 3);

    // A first message past a gap (no ISSUE yet) waits too.
    hold(s, accepted("z-2", message("24DVZ", Action::Modify, 2, "Z"), &clets())).await;
    assert!(due_for(s, &PartnerId::Clets, "24DVZ").await.is_none());
    accept_filling(s, accepted("z-1", message("24DVZ", Action::Issue, 1, "Z"), &clets())).await;
    assert_eq!(due_for(s, &PartnerId::Clets, "24DVZ").await.unwrap().sequence, 1);
}

/// Each outcome updates its delivery and records the attempt; accepted, rejected and dead-lettered produce their statuses and dead letters.
async fn delivery_outcomes_produce_statuses_and_dead_letters(store: SqlStore) {
    let s: &dyn Store = &store;
    let numbers = ["24DVA", "24DVB", "24DVC", "24DVD"];
    let items = numbers
        .iter()
        .map(|n| accepted(&format!("{n}-1"), message(n, Action::Issue, 1, "001"), &clets()))
        .collect();
    s.intake(items).await.unwrap();
    let mut ids = Vec::new();
    for n in numbers {
        ids.push(due_for(s, &PartnerId::Clets, n).await.unwrap().id);
    }
    let warning = FieldError::new(ErrorCode::Shortened, "restrained_person.name", "cut to 30");
    let record_ids = vec![
        PartnerRecordId {
            scheme: "NIC".into(),
            id: "H123456789".into(),
        },
        PartnerRecordId {
            scheme: "FCN".into(),
            id: "0340000012345".into(),
        },
    ];
    let produced = s
        .record_deliveries(vec![
            result(
                ids[0],
                DeliveryOutcome::Accepted {
                    record_ids: record_ids.clone(),
                    nic: Some("H123456789".into()),
                    warnings: vec![warning.clone()],
                },
            ),
            result(
                ids[1],
                DeliveryOutcome::Rejected {
                    reason: "E05 duplicate active order".into(),
                    warnings: Vec::new(),
                },
            ),
            result(
                ids[2],
                DeliveryOutcome::Retry {
                    next_attempt_at: far_future(),
                    reason: "BSY".into(),
                },
            ),
            result(
                ids[3],
                DeliveryOutcome::DeadLettered {
                    code: ErrorCode::UnknownOrder,
                    reason: "EPO was discarded".into(),
                },
            ),
        ])
        .await
        .unwrap();

    let kinds: Vec<_> = produced.statuses.iter().map(|st| st.message.status).collect();
    assert_eq!(
        kinds,
        [
            StatusKind::PartnerAccepted,
            StatusKind::PartnerRejected,
            StatusKind::DeadLettered
        ]
    );
    for st in &produced.statuses {
        assert_eq!(st.message.partner, Some(PartnerId::Clets));
        assert_eq!(st.message.status_sequence, 2);
        assert_eq!(st.message.sequence, Some(1));
    }
    let ok = &produced.statuses[0].message;
    assert_eq!(
        (ok.partner_record_ids.clone(), ok.warnings.clone()),
        (record_ids, vec![warning])
    );
    let rej = &produced.statuses[1].message;
    assert_eq!(rej.errors[0].code, ErrorCode::PartnerRejected);
    assert_eq!(
        (rej.errors[0].field.as_str(), rej.errors[0].text.as_str()),
        ("partner", "E05 duplicate active order")
    );
    assert_eq!(produced.statuses[2].message.errors[0].code, ErrorCode::UnknownOrder);

    assert_eq!(produced.dead_letters.len(), 2);
    let (dl_rej, dl_dead) = (&produced.dead_letters[0], &produced.dead_letters[1]);
    assert_eq!(
        (dl_rej.stage.as_str(), dl_rej.reason.as_str()),
        ("deliver", "PARTNER_REJECTED")
    );
    assert_eq!((dl_rej.partner.clone(), dl_rej.attempts), (Some(PartnerId::Clets), 1));
    assert_eq!(dl_rej.message_id, "24DVB-1");
    assert!(dl_rej.body.starts_with(b"<24DVB-1>"));
    assert_eq!(
        (dl_dead.reason.as_str(), dl_dead.order_number.as_deref()),
        ("UNKNOWN_ORDER", Some("24DVD"))
    );

    let states: Vec<_> = {
        let mut v = Vec::new();
        for n in numbers {
            let d = s.deliveries_for_message(COURT, &format!("{n}-1")).await.unwrap();
            v.push((d[0].state.clone(), d[0].attempts));
        }
        v
    };
    assert_eq!(
        states,
        [
            ("ACCEPTED".into(), 1),
            ("REJECTED".into(), 1),
            ("PENDING".into(), 1),
            ("DEAD".into(), 1)
        ]
    );
    let attempts = s.partner_attempts(ids[1]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].request, b"EPO.CA034025J.MCN.".to_vec());
    assert_eq!(attempts[0].response.as_deref(), Some("ACK"));

    // A rejected or dead-lettered sequence holds the later ones back.
    accept(
        s,
        accepted("24DVB-2", message("24DVB", Action::Modify, 2, "001"), &clets()),
    )
    .await;
    accept(
        s,
        accepted("24DVD-2", message("24DVD", Action::Modify, 2, "001"), &clets()),
    )
    .await;
    assert!(due_for(s, &PartnerId::Clets, "24DVB").await.is_none());
    assert!(due_for(s, &PartnerId::Clets, "24DVD").await.is_none());
    // The accepted EPO's NIC goes with the next job.
    accept(
        s,
        accepted("24DVA-2", message("24DVA", Action::Service, 2, "001"), &clets()),
    )
    .await;
    let spo = due_for(s, &PartnerId::Clets, "24DVA").await.unwrap();
    assert_eq!(spo.nic.as_deref(), Some("H123456789"));

    // A late second report for a finished delivery is recorded but changes nothing.
    let late = s
        .record_deliveries(vec![result(ids[0], accepted_with_nic(None))])
        .await
        .unwrap();
    assert!(late.statuses.is_empty() && late.dead_letters.is_empty());
    assert_eq!(s.partner_attempts(ids[0]).await.unwrap().len(), 2);
    assert_eq!(s.statuses_for_message(COURT, "24DVA-1").await.unwrap().len(), 2);
}

/// StatusSequence counts 1, 2, 3… per inbound message, across transactions, independently per message.
async fn status_sequence_counts_per_message(store: SqlStore) {
    let s: &dyn Store = &store;
    let lea = PartnerId::Lea("CA0340000".into());
    let partners = vec![PartnerId::Clets, PartnerId::Doj, lea.clone()];
    accept(
        s,
        accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &partners),
    )
    .await;
    accept(
        s,
        accepted("n-1", message("24DV05678", Action::Issue, 1, "001"), &partners),
    )
    .await;
    let job = |p: PartnerId| async move { due_for(s, &p, "24DV01234").await.unwrap().id };
    let (c, d, l) = (job(PartnerId::Clets).await, job(PartnerId::Doj).await, job(lea).await);
    s.record_deliveries(vec![
        result(c, accepted_with_nic(Some("H1"))),
        result(d, accepted_with_nic(None)),
    ])
    .await
    .unwrap();
    s.record_deliveries(vec![result(l, accepted_with_nic(None))])
        .await
        .unwrap();
    let seqs: Vec<_> = s
        .statuses_for_message(COURT, "m-1")
        .await
        .unwrap()
        .iter()
        .map(|st| st.message.status_sequence)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let other = s.statuses_for_message(COURT, "n-1").await.unwrap();
    assert_eq!(
        other.iter().map(|st| st.message.status_sequence).collect::<Vec<_>>(),
        [1]
    );
}

/// Statuses and dead letters stay pending, oldest first, until marked published; marking is idempotent.
async fn outbox_lists_rows_until_marked(store: SqlStore) {
    let s: &dyn Store = &store;
    accept(
        s,
        accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &clets()),
    )
    .await;
    reject_code(
        s,
        rejected(COURT, "bad-1", vec![FieldError::new(ErrorCode::Missing, "a", "b")]),
    )
    .await;
    reject_code(
        s,
        rejected(
            OTHER_COURT,
            "bad-2",
            vec![FieldError::new(ErrorCode::TooLong, "c", "d")],
        ),
    )
    .await;

    let statuses = s.pending_statuses(100).await.unwrap();
    assert_eq!(
        statuses
            .iter()
            .map(|st| st.message.correlates_to.as_str())
            .collect::<Vec<_>>(),
        ["m-1", "bad-1", "bad-2"]
    );
    assert_eq!(s.pending_statuses(2).await.unwrap().len(), 2);
    s.mark_statuses_published(&[statuses[0].id]).await.unwrap();
    let left = s.pending_statuses(100).await.unwrap();
    assert_eq!(
        left.iter().map(|st| st.id).collect::<Vec<_>>(),
        [statuses[1].id, statuses[2].id]
    );
    let all: Vec<_> = statuses.iter().map(|st| st.id).collect();
    s.mark_statuses_published(&all).await.unwrap();
    s.mark_statuses_published(&all).await.unwrap();
    s.mark_statuses_published(&[]).await.unwrap();
    assert!(s.pending_statuses(100).await.unwrap().is_empty());

    let dead = s.pending_dead_letters(100).await.unwrap();
    assert_eq!(
        dead.iter().map(|d| d.message_id.as_str()).collect::<Vec<_>>(),
        ["bad-1", "bad-2"]
    );
    s.mark_dead_letters_published(&[dead[1].id]).await.unwrap();
    assert_eq!(s.pending_dead_letters(100).await.unwrap(), vec![dead[0].clone()]);
    s.mark_dead_letters_published(&[dead[0].id, dead[1].id]).await.unwrap();
    assert!(s.pending_dead_letters(100).await.unwrap().is_empty());
    // Published dead letters are still the operators' record.
    assert_eq!(s.dead_letters(&DeadLetterFilter::default()).await.unwrap().len(), 2);
}

/// Dead letters filter by court, stage, partner, reason and time, newest first, with a limit.
async fn dead_letters_filter_and_sort(store: SqlStore) {
    let s: &dyn Store = &store;
    let pause = || tokio::time::sleep(Duration::from_millis(5));
    reject_code(
        s,
        rejected(COURT, "v-1", vec![FieldError::new(ErrorCode::Missing, "a", "b")]),
    )
    .await;
    pause().await;
    reject_code(
        s,
        rejected(OTHER_COURT, "v-2", vec![FieldError::new(ErrorCode::TooLong, "a", "b")]),
    )
    .await;
    pause().await;
    accept(s, accepted("d-1", message("24DVA", Action::Issue, 1, "A"), &both())).await;
    let clets_job = due_for(s, &PartnerId::Clets, "24DVA").await.unwrap();
    let rejection = DeliveryOutcome::Rejected {
        reason: "E03".into(),
        warnings: Vec::new(),
    };
    s.record_deliveries(vec![result(clets_job.id, rejection)])
        .await
        .unwrap();
    pause().await;
    let doj_job = due_for(s, &PartnerId::Doj, "24DVA").await.unwrap();
    let dead = DeliveryOutcome::DeadLettered {
        code: ErrorCode::SequenceGap,
        reason: "gap".into(),
    };
    s.record_deliveries(vec![result(doj_job.id, dead)]).await.unwrap();

    let all = s.dead_letters(&DeadLetterFilter::default()).await.unwrap();
    let reasons: Vec<_> = all.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons, ["SEQUENCE_GAP", "PARTNER_REJECTED", "TOO_LONG", "MISSING"]);
    // A list never reads the original bytes; it gives their length, and one
    // dead letter read alone has them.
    for listed in &all {
        let whole = s.dead_letter(listed.id).await.unwrap().unwrap();
        assert!(listed.body.is_empty(), "a list carries no body");
        assert!(!whole.body.is_empty());
        assert_eq!(listed.body_bytes, whole.body.len() as u64);
        assert_eq!(whole.body_bytes, listed.body_bytes);
    }
    let ids = |v: Vec<StoredDeadLetter>| v.into_iter().map(|d| d.reason).collect::<Vec<_>>();
    let f = |f: DeadLetterFilter| async move { ids(s.dead_letters(&f).await.unwrap()) };

    let court = f(DeadLetterFilter {
        court_ori: Some(OTHER_COURT.into()),
        ..Default::default()
    });
    assert_eq!(court.await, ["TOO_LONG"]);
    let stage = f(DeadLetterFilter {
        stage: Some("deliver".into()),
        ..Default::default()
    });
    assert_eq!(stage.await, ["SEQUENCE_GAP", "PARTNER_REJECTED"]);
    let partner = f(DeadLetterFilter {
        partner: Some(PartnerId::Clets),
        ..Default::default()
    });
    assert_eq!(partner.await, ["PARTNER_REJECTED"]);
    let reason = f(DeadLetterFilter {
        reason: Some("MISSING".into()),
        ..Default::default()
    });
    assert_eq!(reason.await, ["MISSING"]);
    let combined = DeadLetterFilter {
        court_ori: Some(COURT.into()),
        stage: Some("validate".into()),
        ..Default::default()
    };
    assert_eq!(f(combined).await, ["MISSING"]);
    let window = DeadLetterFilter {
        since: Some(all[2].created_at),
        until: Some(all[0].created_at),
        ..Default::default()
    };
    assert_eq!(f(window).await, ["PARTNER_REJECTED", "TOO_LONG"]);
    let limited = DeadLetterFilter {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(f(limited).await, ["SEQUENCE_GAP"]);
    let none = DeadLetterFilter {
        court_ori: Some("CA0000000".into()),
        ..Default::default()
    };
    assert!(f(none).await.is_empty());

    let whole = s.dead_letter(all[1].id).await.unwrap().expect("the dead letter");
    assert_eq!(
        StoredDeadLetter {
            body: Vec::new(),
            ..whole
        },
        all[1],
        "one dead letter read alone is its list entry with its body"
    );
    assert_eq!(s.dead_letter(all[0].id + 1000).await.unwrap(), None);
}

/// One intake call takes 500 items in one transaction, in order, including a duplicate of an earlier item of the same batch.
async fn batch_of_500_in_one_call(store: SqlStore) {
    let s: &dyn Store = &store;
    let mut items: Vec<IntakeItem> = (0..499)
        .map(|i| {
            let n = format!("24DV{i:05}");
            accepted(&format!("b-{i}"), message(&n, Action::Issue, 1, "001"), &clets())
        })
        .collect();
    items.push(items[7].clone());
    let outcomes = s.intake(items).await.unwrap();
    assert_eq!(outcomes.len(), 500);
    for (i, outcome) in outcomes.iter().take(499).enumerate() {
        match outcome {
            IntakeOutcome::Stored { statuses, dead_letters } if dead_letters.is_empty() => {
                assert_eq!(statuses[0].message.correlates_to, format!("b-{i}"));
            }
            other => panic!("item {i}: {other:?}"),
        }
    }
    match &outcomes[499] {
        IntakeOutcome::Duplicate { statuses } => {
            assert_eq!(statuses[0].message.correlates_to, "b-7")
        }
        other => panic!("last item: {other:?}"),
    }
    assert_eq!(
        s.due_deliveries(&PartnerId::Clets, far_future(), 1000)
            .await
            .unwrap()
            .len(),
        499
    );
    assert_eq!(s.pending_statuses(1000).await.unwrap().len(), 499);
}

/// Purge forgets finished, published messages older than the cutoff (not dead letters, not open work) and the order rules still hold.
async fn purge_forgets_finished_messages_but_keeps_order_rules(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DV01234";
    let issue = accepted("m-1", message(n, Action::Issue, 1, "001"), &clets());
    accept(s, issue.clone()).await;
    deliver(s, n, 1, Some("H000000001")).await;
    reject_code(
        s,
        rejected(COURT, "bad-1", vec![FieldError::new(ErrorCode::Missing, "a", "b")]),
    )
    .await;
    accept(s, accepted("w-1", message("24DVW", Action::Issue, 1, "W"), &clets())).await;
    let conflict = accepted("m-1", message(n, Action::Issue, 1, "002"), &clets());
    assert!(matches!(intake_one(s, conflict).await, IntakeOutcome::Conflict { .. }));

    // Unpublished statuses keep everything.
    assert_eq!(s.purge_before(far_future()).await.unwrap(), 0);
    let ids: Vec<_> = s.pending_statuses(100).await.unwrap().iter().map(|st| st.id).collect();
    s.mark_statuses_published(&ids).await.unwrap();
    assert_eq!(s.purge_before(Utc::now() - chrono::Duration::days(1)).await.unwrap(), 0);
    // m-1 (delivered) and bad-1 (rejected) go; w-1 still has a pending delivery.
    assert_eq!(s.purge_before(far_future()).await.unwrap(), 2);
    assert!(s.statuses_for_message(COURT, "m-1").await.unwrap().is_empty());
    assert_eq!(s.deliveries_for_message(COURT, "w-1").await.unwrap().len(), 1);
    assert_eq!(s.dead_letters(&DeadLetterFilter::default()).await.unwrap().len(), 1);
    assert!(s.pending_statuses(100).await.unwrap().is_empty());

    // The dedup record is forgotten, but the order remembers its sequence 1.
    assert_eq!(reject_code(s, issue).await, ErrorCode::SequenceConflict);
    accept(s, accepted("m-2", message(n, Action::Modify, 2, "001"), &clets())).await;
    let job = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!((job.sequence, job.nic.as_deref()), (2, Some("H000000001")));
}

/// Two intake calls racing with the same message store it once: one Stored, one Duplicate.
async fn concurrent_intakes_of_one_message_store_it_once(store: SqlStore) {
    let item = accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &both());
    let (a, b) = tokio::join!(store.intake(vec![item.clone()]), store.intake(vec![item]));
    let mut outcomes = [a.unwrap().remove(0), b.unwrap().remove(0)];
    outcomes.sort_by_key(|o| matches!(o, IntakeOutcome::Duplicate { .. }));
    assert!(matches!(&outcomes[0], IntakeOutcome::Stored { .. }), "{outcomes:?}");
    assert!(matches!(&outcomes[1], IntakeOutcome::Duplicate { statuses } if statuses.len() == 1));
    assert_eq!(store.deliveries_for_message(COURT, "m-1").await.unwrap().len(), 2);
}

/// Only sqlite:// and postgres:// URLs are accepted.
#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = SqlStore::connect("mysql://localhost/porter").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
}

/// A SQLite store creates its file, runs in WAL mode and reopens with its data and schema.
#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqlStore::connect(&url).await.unwrap();
    accept(
        &store,
        accepted("m-1", message("24DV01234", Action::Issue, 1, "001"), &clets()),
    )
    .await;
    assert!(path.exists());
    assert!(dir.path().join("sub.db-wal").exists(), "WAL mode");
    store.close().await;
    let reopened = SqlStore::connect(&url).await.unwrap();
    assert_eq!(reopened.statuses_for_message(COURT, "m-1").await.unwrap().len(), 1);
    reopened.close().await;
}

/// Proves finding 2: each conflicting arrival is kept (bytes, SHA-256, content type, time) and its CONFLICT_REJECTED takes the next StatusSequence of the original, so every status under the correlation id is totally ordered (partner statuses after it continue the count); the same conflicting body again gets the same status and no new row; a duplicate of the original re-sends only the original's own statuses.
async fn conflicting_arrivals_are_kept_and_ordered(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DV01234";
    let original = accepted("m-1", message(n, Action::Issue, 1, "001"), &both());
    accept(s, original.clone()).await;
    deliver(s, n, 1, Some("H000000001")).await;

    let first = accepted("m-1", message(n, Action::Issue, 1, "002"), &both());
    let IntakeOutcome::Conflict { status: c1 } = intake_one(s, first.clone()).await else {
        panic!("expected Conflict");
    };
    // A message that would be rejected conflicts all the same.
    let mut second = rejected(COURT, "m-1", vec![FieldError::new(ErrorCode::Missing, "a", "b")]);
    second.inbound.content_type = "text/plain".into();
    let IntakeOutcome::Conflict { status: c2 } = intake_one(s, second.clone()).await else {
        panic!("expected Conflict");
    };
    assert_eq!((c1.message.status_sequence, c2.message.status_sequence), (3, 4));
    let doj = due_for(s, &PartnerId::Doj, n).await.unwrap();
    let produced = s
        .record_deliveries(vec![result(doj.id, accepted_with_nic(None))])
        .await
        .unwrap();
    assert_eq!(produced.statuses[0].message.status_sequence, 5);

    // The same conflicting body again: the same answer, nothing new.
    let IntakeOutcome::Conflict { status: again } = intake_one(s, first.clone()).await else {
        panic!("expected Conflict");
    };
    assert_eq!(again, c1);

    let listed = s.statuses_for_message(COURT, "m-1").await.unwrap();
    let m1 = "m-1".to_string();
    assert_eq!(
        summary(&listed),
        [
            (m1.clone(), StatusKind::Accepted, None, 1),
            (m1.clone(), StatusKind::PartnerAccepted, Some(PartnerId::Clets), 2),
            (m1.clone(), StatusKind::ConflictRejected, None, 3),
            (m1.clone(), StatusKind::ConflictRejected, None, 4),
            (m1.clone(), StatusKind::PartnerAccepted, Some(PartnerId::Doj), 5),
        ]
    );
    let IntakeOutcome::Duplicate { statuses } = intake_one(s, original).await else {
        panic!("expected Duplicate");
    };
    let seqs: Vec<_> = statuses.iter().map(|st| st.message.status_sequence).collect();
    assert_eq!(
        seqs,
        [1, 2, 5],
        "a duplicate of the original does not re-send the conflicts"
    );

    let rows = sqlx::query(
        "SELECT body, body_sha256, content_type, received_at, status_id FROM conflicts \
         WHERE court_ori = $1 AND message_id = $2 ORDER BY id",
    )
    .bind(COURT.to_string())
    .bind("m-1".to_string())
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (row, (item, status)) in rows.iter().zip([(&first, &c1), (&second, &c2)]) {
        let body: Vec<u8> = row.try_get("body").unwrap();
        let sha: String = row.try_get("body_sha256").unwrap();
        let content_type: String = row.try_get("content_type").unwrap();
        let received_at: i64 = row.try_get("received_at").unwrap();
        let status_id: i64 = row.try_get("status_id").unwrap();
        assert_eq!(body, item.inbound.body);
        assert_eq!(sha, sha256_hex(&item.inbound.body));
        assert_eq!(content_type, item.inbound.content_type);
        assert_eq!(received_at, item.inbound.received_at.timestamp_millis());
        assert_eq!(status_id, status.id);
    }
    // The original is untouched.
    assert_eq!(s.deliveries_for_message(COURT, "m-1").await.unwrap().len(), 2);
    let job = s.due_deliveries(&PartnerId::Clets, far_future(), 10).await.unwrap();
    assert!(job.is_empty());
}

/// Proves finding 3: a TERMINATE that fills a gap closes the order to the messages that waited past it. They are not applied (the order keeps the termination date and the ISSUE's content; nothing follows the CPO), never routed (no deliveries), and each gets a REJECTED ORDER_CLOSED status and a dead letter at stage sequence, all returned in the TERMINATE's Stored outcome.
async fn gap_filled_by_terminate_refuses_the_waiting_messages(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DV01234";
    accept(s, accepted("m-1", message(n, Action::Issue, 1, "001"), &both())).await;
    deliver(s, n, 1, Some("H000000001")).await;
    hold(s, accepted("m-3", message(n, Action::Modify, 3, "002"), &both())).await;
    hold(s, accepted("m-4", message(n, Action::Service, 4, "002"), &clets())).await;
    assert!(due_for(s, &PartnerId::Clets, n).await.is_none());

    let terminate = accepted("m-2", message(n, Action::Terminate, 2, "001"), &both());
    let (statuses, dead_letters) = stored(intake_one(s, terminate).await);
    assert_eq!(
        summary(&statuses),
        [
            ("m-2".to_string(), StatusKind::Accepted, None, 1),
            ("m-3".to_string(), StatusKind::Rejected, None, 1),
            ("m-4".to_string(), StatusKind::Rejected, None, 1),
        ]
    );
    for st in &statuses[1..] {
        let e = &st.message.errors;
        assert_eq!(
            (e.len(), e[0].code, e[0].field.as_str()),
            (1, ErrorCode::OrderClosed, "order.order_number")
        );
        assert!(e[0].text.contains("terminated by sequence 2"), "{}", e[0].text);
    }
    assert_eq!(dead_letters.len(), 2);
    for (dl, st) in dead_letters.iter().zip(&statuses[1..]) {
        assert_eq!((dl.stage.as_str(), dl.reason.as_str()), ("sequence", "ORDER_CLOSED"));
        assert_eq!(
            (&dl.partner, &dl.message_id),
            (&st.message.partner, &st.message.correlates_to)
        );
        assert_eq!((dl.sequence, dl.attempts), (st.message.sequence, 0));
        assert_eq!(dl.errors, st.message.errors);
    }
    assert!(dead_letters[0].body.starts_with(b"<m-3>"));
    assert!(s.deliveries_for_message(COURT, "m-3").await.unwrap().is_empty());
    assert!(s.deliveries_for_message(COURT, "m-4").await.unwrap().is_empty());
    let m3 = s.statuses_for_message(COURT, "m-3").await.unwrap();
    assert_eq!(m3.iter().map(|st| st.message.status_sequence).collect::<Vec<_>>(), [1]);

    // CLETS gets the CPO with the NIC, and nothing after it.
    let cpo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!(
        (cpo.sequence, cpo.action, cpo.nic.as_deref()),
        (2, Action::Terminate, Some("H000000001"))
    );
    deliver(s, n, 2, None).await;
    assert!(due_for(s, &PartnerId::Clets, n).await.is_none());

    // The order is what the ISSUE and the TERMINATE made it.
    let (state, order, closed) = order_row(&store, n).await;
    assert_eq!((state.as_str(), closed), ("TERMINATED", Some(2)));
    assert_eq!(order.order.termination_date, Some(date(2027, 1, 5)));
    assert_eq!(order.order.case_number.as_deref(), Some("24FL001"));
    // And it stays closed to later arrivals.
    let later = accepted("m-5", message(n, Action::Modify, 5, "003"), &both());
    assert_eq!(reject_code(s, later).await, ErrorCode::OrderClosed);
    let pending = s.pending_dead_letters(100).await.unwrap();
    assert_eq!(pending.iter().filter(|d| d.stage == "sequence").count(), 2);
}

/// Proves finding 3's reverse case: a re-entry ISSUE that arrives before its CANCEL (sequence n + 1 while n is missing) is held, not SEQUENCE_CONFLICT; when the CANCEL fills the gap the XPO (old NIC), the re-entry's EPO (no NIC) and a later MPO (new NIC) go out in order. Likewise a MODIFY past a still-missing re-entry after an applied CANCEL waits for it.
async fn reentry_before_its_cancel_is_held_and_applied(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVA";
    accept(s, accepted("a-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    deliver(s, n, 1, Some("H000000001")).await;
    hold(s, accepted("a-3", message(n, Action::Issue, 3, "002"), &clets())).await;
    hold(s, accepted("a-4", message(n, Action::Modify, 4, "002"), &clets())).await;
    assert!(due_for(s, &PartnerId::Clets, n).await.is_none());
    // The CANCEL fills the gap; nothing is refused.
    let filled = accept_filling(s, accepted("a-2", message(n, Action::Cancel, 2, "001"), &clets())).await;
    assert_eq!(filled, ["a-2", "a-3", "a-4"]);
    let xpo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!(
        (xpo.sequence, xpo.action, xpo.nic.as_deref()),
        (2, Action::Cancel, Some("H000000001"))
    );
    deliver(s, n, 2, None).await;
    let epo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!((epo.sequence, epo.action, epo.nic.as_deref()), (3, Action::Issue, None));
    deliver(s, n, 3, Some("H000000002")).await;
    let mpo = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!(
        (mpo.sequence, mpo.action, mpo.nic.as_deref()),
        (4, Action::Modify, Some("H000000002"))
    );
    let (state, order, closed) = order_row(&store, n).await;
    assert_eq!((state.as_str(), closed), ("ACTIVE", None));
    assert_eq!(order.order.case_number.as_deref(), Some("24FL002"));

    let m = "24DVB";
    accept(s, accepted("b-1", message(m, Action::Issue, 1, "001"), &clets())).await;
    deliver(s, m, 1, Some("H000000003")).await;
    accept(s, accepted("b-2", message(m, Action::Cancel, 2, "001"), &clets())).await;
    deliver(s, m, 2, None).await;
    hold(s, accepted("b-4", message(m, Action::Modify, 4, "002"), &clets())).await;
    assert!(due_for(s, &PartnerId::Clets, m).await.is_none());
    accept_filling(s, accepted("b-3", message(m, Action::Issue, 3, "002"), &clets())).await;
    deliver(s, m, 3, Some("H000000004")).await;
    let mpo = due_for(s, &PartnerId::Clets, m).await.unwrap();
    assert_eq!((mpo.sequence, mpo.nic.as_deref()), (4, Some("H000000004")));
}

/// Proves that held messages the filled gap shows invalid are refused, not applied: after a CANCEL, a waiting MODIFY (not the re-entry) is REJECTED ORDER_CLOSED and keeps its sequence; each refused message gets one REJECTED status and one dead letter at stage sequence, without a partner (it was never routed); an ISSUE held behind a gap that a MODIFY fills is SEQUENCE_CONFLICT and, never having been routed, holds nothing back. An ISSUE whose known predecessor is not a CANCEL is rejected at once.
async fn held_messages_are_refused_when_the_gap_shows_them_invalid(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVA";
    accept(s, accepted("a-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    hold(s, accepted("a-3", message(n, Action::Modify, 3, "002"), &clets())).await;
    hold(s, accepted("a-4", message(n, Action::Service, 4, "002"), &[])).await;
    let (statuses, dead_letters) =
        stored(intake_one(s, accepted("a-2", message(n, Action::Cancel, 2, "001"), &clets())).await);
    assert_eq!(
        summary(&statuses),
        [
            ("a-2".to_string(), StatusKind::Accepted, None, 1),
            ("a-3".to_string(), StatusKind::Rejected, None, 1),
            ("a-4".to_string(), StatusKind::Rejected, None, 1),
        ]
    );
    assert!(
        statuses[1..]
            .iter()
            .all(|st| st.message.errors[0].code == ErrorCode::OrderClosed)
    );
    let partners: Vec<_> = dead_letters.iter().map(|d| d.partner.clone()).collect();
    assert_eq!(partners, [None, None]);
    assert!(
        dead_letters
            .iter()
            .all(|d| d.stage == "sequence" && d.reason == "ORDER_CLOSED")
    );
    let (state, _, closed) = order_row(&store, n).await;
    assert_eq!((state.as_str(), closed), ("CANCELLED", Some(2)));
    // The refused MODIFY used sequence 3: no re-entry can take it now.
    let reentry = accepted("a-3b", message(n, Action::Issue, 3, "003"), &clets());
    assert_eq!(reject_code(s, reentry).await, ErrorCode::SequenceConflict);

    let m = "24DVB";
    accept(s, accepted("b-1", message(m, Action::Issue, 1, "001"), &clets())).await;
    deliver(s, m, 1, Some("H000000001")).await;
    hold(s, accepted("b-3", message(m, Action::Issue, 3, "002"), &clets())).await;
    let (statuses, dead_letters) =
        stored(intake_one(s, accepted("b-2", message(m, Action::Modify, 2, "002"), &clets())).await);
    assert_eq!(
        summary(&statuses),
        [
            ("b-2".to_string(), StatusKind::Accepted, None, 1),
            ("b-3".to_string(), StatusKind::Rejected, None, 1),
        ]
    );
    let error = &statuses[1].message.errors[0];
    assert_eq!(
        (error.code, error.field.as_str()),
        (ErrorCode::SequenceConflict, "sequence")
    );
    assert_eq!(dead_letters.len(), 1);
    assert_eq!(
        (dead_letters[0].stage.as_str(), dead_letters[0].reason.as_str()),
        ("sequence", "SEQUENCE_CONFLICT")
    );
    let (state, order, _) = order_row(&store, m).await;
    assert_eq!(
        (state.as_str(), order.order.case_number.as_deref()),
        ("ACTIVE", Some("24FL002"))
    );
    // The order stays active: a MODIFY is applied and goes out after sequence 2.
    accept(s, accepted("b-4", message(m, Action::Modify, 4, "003"), &clets())).await;
    deliver(s, m, 2, None).await;
    assert_eq!(due_for(s, &PartnerId::Clets, m).await.unwrap().sequence, 4);

    let c = "24DVC";
    accept(s, accepted("c-1", message(c, Action::Issue, 1, "001"), &clets())).await;
    hold(s, accepted("c-3", message(c, Action::Modify, 3, "001"), &clets())).await;
    let issue = accepted("c-4", message(c, Action::Issue, 4, "001"), &clets());
    assert_eq!(reject_code(s, issue).await, ErrorCode::SequenceConflict);
}

/// Proves finding 4: a same-content repeat of an accepted sequence under a new message_id is warned with Porter's DUPLICATE (wire spelling `DUPLICATE`), never DUPLICATE_CONFLICT, which stays with CONFLICT_REJECTED for a reused message_id.
async fn repeat_under_new_message_id_warns_duplicate(store: SqlStore) {
    let s: &dyn Store = &store;
    let order = message("24DV01234", Action::Issue, 1, "001");
    accept(s, accepted("m-1", order.clone(), &clets())).await;
    let again = accept(s, accepted("m-2", order, &clets())).await;
    let codes: Vec<_> = again.warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(codes, ["DUPLICATE"]);
    let stored = s.statuses_for_message(COURT, "m-2").await.unwrap();
    let json = serde_json::to_string(&stored[0].message).unwrap();
    assert!(
        json.contains("\"DUPLICATE\"") && !json.contains("DUPLICATE_CONFLICT"),
        "{json}"
    );
}

/// Proves finding 5: NUL in any text from a court or a partner (message_id, content type, layout, order number, partner answers, errors, reasons, NIC) is stored as U+FFFD on both backends instead of failing the batch, and lookups spelled with the NUL find the row.
async fn nul_in_input_text_is_stored_as_replacement(store: SqlStore) {
    let s: &dyn Store = &store;
    let mut bad = rejected(
        COURT,
        "bad\0id",
        vec![FieldError::new(ErrorCode::Missing, "a\0", "b\0")],
    );
    bad.inbound.content_type = "text/plain\0".into();
    bad.inbound.layout = Some("cms\0a".into());
    if let Verdict::Rejected { order_number, .. } = &mut bad.verdict {
        *order_number = Some("24DV\0X".into());
    }
    let (statuses, dead_letters) = stored(intake_one(s, bad.clone()).await);
    let m = &statuses[0].message;
    assert_eq!(
        (m.correlates_to.as_str(), m.order_number.as_deref()),
        ("bad\u{FFFD}id", Some("24DV\u{FFFD}X"))
    );
    assert_eq!(
        (
            dead_letters[0].message_id.as_str(),
            dead_letters[0].content_type.as_str()
        ),
        ("bad\u{FFFD}id", "text/plain\u{FFFD}")
    );
    assert!(matches!(
        intake_one(s, bad.clone()).await,
        IntakeOutcome::Duplicate { .. }
    ));
    let mut other = bad;
    other.inbound.body = b"other".to_vec();
    other.inbound.body_sha256 = sha256_hex(b"other");
    assert!(matches!(intake_one(s, other).await, IntakeOutcome::Conflict { .. }));
    assert_eq!(s.statuses_for_message(COURT, "bad\0id").await.unwrap().len(), 2);
    let filter = DeadLetterFilter {
        reason: Some("MIS\0SING".into()),
        ..Default::default()
    };
    assert!(s.dead_letters(&filter).await.unwrap().is_empty());

    // An order number the validator would never pass, and partner answers.
    accept(s, accepted("n-1", message("24DV\0N", Action::Issue, 1, "001"), &both())).await;
    let job = due_for(s, &PartnerId::Clets, "24DV\u{FFFD}N").await.expect("job");
    let mut nul_attempt = attempt();
    nul_attempt.response = Some("ACK\0".into());
    nul_attempt.error = Some("reset\0".into());
    let outcome = DeliveryOutcome::Accepted {
        record_ids: Vec::new(),
        nic: Some("H\0".into()),
        warnings: Vec::new(),
    };
    s.record_deliveries(vec![DeliveryResult {
        delivery_id: job.id,
        lease_token: job.lease_token,
        attempt: nul_attempt,
        outcome,
    }])
    .await
    .unwrap();
    assert_eq!(
        s.partner_attempts(job.id).await.unwrap()[0].response.as_deref(),
        Some("ACK\u{FFFD}")
    );
    let doj = due_for(s, &PartnerId::Doj, "24DV\u{FFFD}N").await.unwrap();
    let retry = DeliveryOutcome::Retry {
        next_attempt_at: Utc::now(),
        reason: "busy\0".into(),
    };
    s.record_deliveries(vec![result(doj.id, retry)]).await.unwrap();
    let dead = DeliveryOutcome::DeadLettered {
        code: ErrorCode::RetriesExhausted,
        reason: "gone\0".into(),
    };
    s.record_deliveries(vec![result(doj.id, dead)]).await.unwrap();
    accept(
        s,
        accepted("n-2", message("24DV\0N", Action::Modify, 2, "001"), &clets()),
    )
    .await;
    let mpo = due_for(s, &PartnerId::Clets, "24DV\u{FFFD}N").await.unwrap();
    assert_eq!(mpo.nic.as_deref(), Some("H\u{FFFD}"));
}

/// The LEA delivery loop's query takes every agency's due deliveries (one
/// per order and agency) and none of another partner's, and leaves out
/// agencies whose circuit is open.
async fn lea_loop_takes_every_agency_but_the_excluded(store: SqlStore) {
    let s: &dyn Store = &store;
    let (a, b) = (PartnerId::Lea("CA0340000".into()), PartnerId::Lea("CA0341100".into()));
    let partners = [PartnerId::Clets, a.clone(), b.clone()];
    accept(s, accepted("m-1", message("24DV1", Action::Issue, 1, "001"), &partners)).await;
    accept(
        s,
        accepted("m-2", message("24DV1", Action::Modify, 2, "002"), &partners),
    )
    .await;
    let all = PartnerSet::Lea { except: Vec::new() };
    let jobs = s.due_deliveries_in(&all, far_future(), 10).await.unwrap();
    let got: Vec<_> = jobs.iter().map(|j| (j.partner.clone(), j.sequence)).collect();
    assert_eq!(got, [(a.clone(), 1), (b.clone(), 1)]);
    let some = PartnerSet::Lea {
        except: vec!["CA0340000".into()],
    };
    let jobs = s.due_deliveries_in(&some, far_future(), 10).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.partner.clone()).collect::<Vec<_>>(), [b]);
}

/// A delivery job carries both the message and the whole order as it
/// stands once the message is applied (what the HTTP partners receive).
async fn applied_message_keeps_the_resulting_order_state(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVS";
    accept(s, accepted("s-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    deliver(s, n, 1, Some("H000000001")).await;
    // A TERMINATE changes only the termination fields of the order.
    accept(s, accepted("s-2", message(n, Action::Terminate, 2, "009"), &clets())).await;
    let job = due_for(s, &PartnerId::Clets, n).await.unwrap();
    assert_eq!(
        job.order.order.case_number.as_deref(),
        Some("24FL009"),
        "the message as sent"
    );
    assert_eq!(
        job.state.order.case_number.as_deref(),
        Some("24FL001"),
        "the order as it stands"
    );
    assert_eq!(job.state.action, Some(Action::Terminate));
    assert_eq!(job.state.order.termination_date, job.order.order.termination_date);
}

/// A message that waited behind a gap past the court's timeout gets
/// ACCEPTED then DEAD_LETTERED SEQUENCE_GAP (no partner) and a dead letter
/// at stage sequence; it was never routed; its sequence is freed, so the
/// court can send it again once the missing message is in. A message that
/// has not waited that long is left alone.
async fn gap_timeout_dead_letters_the_waiting_message_and_frees_its_sequence(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DVG";
    accept(s, accepted("g-1", message(n, Action::Issue, 1, "001"), &clets())).await;
    hold(s, accepted("g-3", message(n, Action::Modify, 3, "003"), &clets())).await;
    let not_yet = s
        .expire_gaps(COURT, Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(not_yet.statuses.is_empty() && not_yet.dead_letters.is_empty());

    let produced = s
        .expire_gaps(COURT, Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        summary(&produced.statuses),
        [
            ("g-3".to_string(), StatusKind::Accepted, None, 1),
            ("g-3".to_string(), StatusKind::DeadLettered, None, 2),
        ]
    );
    assert!(produced.statuses[0].message.routed_partners.is_empty());
    assert_eq!(produced.statuses[1].message.errors[0].code, ErrorCode::SequenceGap);
    let dl = &produced.dead_letters[0];
    assert_eq!(
        (dl.stage.as_str(), dl.reason.as_str(), &dl.partner),
        ("sequence", "SEQUENCE_GAP", &None)
    );
    assert!(s.deliveries_for_message(COURT, "g-3").await.unwrap().is_empty());
    // Once expired, a second sweep finds nothing.
    let again = s
        .expire_gaps(COURT, Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(again.dead_letters.is_empty());

    // The missing sequence 2 arrives; sequence 3 can be sent again and is applied.
    accept(s, accepted("g-2", message(n, Action::Modify, 2, "002"), &clets())).await;
    let resent = accept(s, accepted("g-3b", message(n, Action::Modify, 3, "003"), &clets())).await;
    assert_eq!(resent.routed_partners, clets());
}
