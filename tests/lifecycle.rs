//! The order lifecycle through the running broker (ICD §5): waiting for a
//! missing sequence, the gap timeout, and isolation of a stuck order.

mod common;

use std::time::Duration;

use common::*;
use porter::model::{ErrorCode, PartnerId, StatusKind, StatusMessage};

fn sample(name: &str, court: &str, order: &str) -> Vec<u8> {
    let body = std::fs::read(repo().join("schemas/samples").join(name)).unwrap();
    replace(&for_court(&body, court), "24DV01234", order)
}

fn clets_final(statuses: &[StatusMessage]) -> Option<StatusKind> {
    statuses
        .iter()
        .rev()
        .find(|s| s.partner == Some(PartnerId::Clets))
        .map(|s| s.status)
}

/// Whether every partner the message was routed to has a final status
/// (ICD §4: PARTNER_ACCEPTED, PARTNER_REJECTED or DEAD_LETTERED).
fn every_partner_final(statuses: &[StatusMessage]) -> bool {
    let Some(accepted) = statuses.iter().find(|s| s.status == StatusKind::Accepted) else {
        return false;
    };
    accepted.routed_partners.iter().all(|p| {
        statuses.iter().any(|s| {
            s.partner.as_ref() == Some(p)
                && matches!(
                    s.status,
                    StatusKind::PartnerAccepted | StatusKind::PartnerRejected | StatusKind::DeadLettered
                )
        })
    })
}

/// The CLETS message keys the simulator received for `order`, in order.
async fn clets_keys(h: &Harness, order: &str) -> Vec<String> {
    let messages: serde_json::Value = reqwest::get(format!("{}/_sim/messages", h.clets_control))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<String> = Vec::new();
    for m in messages.as_array().unwrap() {
        let request = m["request"].as_str().unwrap_or_default();
        if request.contains(&format!("PNO/{order}.")) {
            let key = request.split('.').next().unwrap_or_default().to_string();
            if keys.last() != Some(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Proves that MODIFYs published before their ISSUEs wait in the store (no
/// status, nothing sent) and go out after them, for two orders published
/// interleaved (both MODIFYs, then both ISSUEs): CARPOS receives EPO then
/// MPO for each order, DOJ and every LEA agency apply sequence 1 then 2
/// (`out_of_order` and `gaps` stay 0), and every message ends
/// PARTNER_ACCEPTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modifies_before_their_issues_wait_and_go_out_after_them() {
    let court = unique_ori();
    let h = Harness::start_with_setup(&[&court], Setup::ALL_PARTNERS).await;
    let watch = h.watch(&court).await;
    let orders = ["24DVW0001", "24DVW0002"];
    let modifies = orders.map(|_| unique_id("modify"));
    let issues = orders.map(|_| unique_id("issue"));
    for (order, id) in orders.iter().zip(&modifies) {
        let body = sample("modify.xml", &court, order);
        h.publish(&court, Some(id), "application/xml", &body).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (order, id) in orders.iter().zip(&modifies) {
        assert!(watch.for_message(id).is_empty(), "a waiting message has no status yet");
        assert!(
            clets_keys(&h, order).await.is_empty(),
            "nothing goes out before the ISSUE"
        );
    }
    for (order, id) in orders.iter().zip(&issues) {
        let body = sample("issue.xml", &court, order);
        h.publish(&court, Some(id), "application/xml", &body).await;
    }
    for id in issues.iter().chain(&modifies) {
        let s = watch
            .wait(id, Duration::from_secs(60), |s| every_partner_final(s))
            .await;
        assert_eq!(clets_final(&s), Some(StatusKind::PartnerAccepted), "{s:#?}");
    }
    let doj = Harness::http_sim_state(h.doj.as_deref().unwrap()).await;
    let lea = Harness::http_sim_state(h.lea.as_deref().unwrap()).await;
    assert_in_order(&doj["counters"], "DOJ");
    assert_in_order(&lea["counters"], "LEA");
    for order in orders {
        assert_eq!(clets_keys(&h, order).await, ["EPO", "MPO"]);
        assert_eq!(applied_sequences(&doj["records"], order), [1, 2], "DOJ, {order}");
        let sheriff = &lea["agencies"]["CA0340000"]["records"];
        assert_eq!(applied_sequences(sheriff, order), [1, 2], "sheriff, {order}");
    }
    h.stop().await;
}

/// Proves that a message whose predecessor never arrives becomes
/// DEAD_LETTERED with SEQUENCE_GAP after the court's gap timeout (2 s
/// here), is published to `por.dead`, and never reaches CARPOS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_that_never_fills_becomes_sequence_gap_after_the_timeout() {
    let court = unique_ori();
    let setup = Setup {
        gap_timeout_secs: Some(2),
        ..Setup::default()
    };
    let h = Harness::start_with_setup(&[&court], setup).await;
    let watch = h.watch(&court).await;
    let order = "24DVG0001";
    let (issue, terminate) = (unique_id("issue"), unique_id("terminate"));
    h.publish(
        &court,
        Some(&issue),
        "application/xml",
        &sample("issue.xml", &court, order),
    )
    .await;
    watch
        .wait(&issue, Duration::from_secs(30), has("PARTNER_ACCEPTED"))
        .await;
    // Sequence 4 while 2 and 3 never come.
    h.publish(
        &court,
        Some(&terminate),
        "application/xml",
        &sample("terminate.xml", &court, order),
    )
    .await;
    let s = watch
        .wait(&terminate, Duration::from_secs(30), has("DEAD_LETTERED"))
        .await;
    let dead = s.iter().find(|x| x.status == StatusKind::DeadLettered).unwrap();
    assert_eq!(dead.errors[0].code, ErrorCode::SequenceGap);
    assert_eq!(s[0].status, StatusKind::Accepted, "{s:#?}");
    let letters = h.take_dead_letters(&court, 1, Duration::from_secs(10)).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(clets_keys(&h, order).await, ["EPO"], "the TERMINATE never went out");
    h.stop().await;
}

/// Proves that a stuck order never holds up another order or another
/// partner: order A's EPO is rejected by CARPOS (a dead letter), so A's
/// later MODIFY waits behind it for CLETS, while order B, published right
/// after that MODIFY, goes all the way, and A's MODIFY still reaches DOJ and
/// the sheriff, in sequence (`out_of_order` and `gaps` stay 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_order_never_holds_up_another() {
    let court = unique_ori();
    let h = Harness::start_with_setup(&[&court], Setup::ALL_PARTNERS).await;
    let watch = h.watch(&court).await;
    let client = reqwest::Client::new();
    let faults = format!("{}/_sim/faults", h.clets_control);
    let set = |body: &'static str| {
        client
            .post(&faults)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert!(set(r#"{"reject_rate": 1.0}"#).await.unwrap().status().is_success());
    let (a_issue, a_modify, b_issue) = (unique_id("a-issue"), unique_id("a-modify"), unique_id("b-issue"));
    h.publish(
        &court,
        Some(&a_issue),
        "application/xml",
        &sample("issue.xml", &court, "24DVA0001"),
    )
    .await;
    watch
        .wait(&a_issue, Duration::from_secs(30), has("PARTNER_REJECTED"))
        .await;
    assert!(set("{}").await.unwrap().status().is_success());
    h.publish(
        &court,
        Some(&a_modify),
        "application/xml",
        &sample("modify.xml", &court, "24DVA0001"),
    )
    .await;
    h.publish(
        &court,
        Some(&b_issue),
        "application/xml",
        &sample("issue.xml", &court, "24DVB0001"),
    )
    .await;
    let b = watch.wait(&b_issue, Duration::from_secs(60), every_partner_final).await;
    assert_eq!(clets_final(&b), Some(StatusKind::PartnerAccepted), "{b:#?}");
    watch.wait(&a_modify, Duration::from_secs(10), has("ACCEPTED")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        clets_final(&watch.for_message(&a_modify)),
        None,
        "A's MODIFY waits behind its dead letter"
    );
    assert_eq!(clets_keys(&h, "24DVA0001").await, ["EPO"]);
    let partner_accepted = |partner: PartnerId| {
        move |s: &[StatusMessage]| {
            s.iter()
                .any(|x| x.status == StatusKind::PartnerAccepted && x.partner.as_ref() == Some(&partner))
        }
    };
    watch
        .wait(&a_modify, Duration::from_secs(30), partner_accepted(PartnerId::Doj))
        .await;
    let doj = Harness::http_sim_state(h.doj.as_deref().unwrap()).await;
    assert_in_order(&doj["counters"], "DOJ");
    assert_eq!(applied_sequences(&doj["records"], "24DVA0001"), [1, 2], "DOJ, order A");
    assert_eq!(applied_sequences(&doj["records"], "24DVB0001"), [1], "DOJ, order B");
    let lea = Harness::http_sim_state(h.lea.as_deref().unwrap()).await;
    assert_in_order(&lea["counters"], "LEA");
    h.stop().await;
}
