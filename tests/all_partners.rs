//! The whole lifecycle to every partner (ICD §4, §5, §7, §8): CLETS, the
//! DOJ firearms unit and the LEA agencies, each a real simulator, with the
//! routing computed from the order's state.

mod common;

use std::time::Duration;

use common::*;
use porter::model::{PartnerId, StatusKind, StatusMessage};

fn sample(name: &str, court: &str) -> Vec<u8> {
    let body = std::fs::read(repo().join("schemas/samples").join(name)).unwrap();
    for_court(&body, court)
}

/// Every routed partner has its final status (here: accepted).
fn complete(statuses: &[StatusMessage]) -> bool {
    let Some(accepted) = statuses.iter().find(|s| s.status == StatusKind::Accepted) else {
        return false;
    };
    accepted.routed_partners.iter().all(|p| {
        statuses
            .iter()
            .any(|s| s.status == StatusKind::PartnerAccepted && s.partner.as_ref() == Some(p))
    })
}

fn routed(statuses: &[StatusMessage]) -> Vec<String> {
    let accepted = statuses.iter().find(|s| s.status == StatusKind::Accepted).unwrap();
    accepted.routed_partners.iter().map(PartnerId::wire_name).collect()
}

fn records_of(state: &serde_json::Value, agency: &str) -> usize {
    state["agencies"][agency]["records"].as_array().map_or(0, Vec::len)
}

/// The orders of the interleaved lifecycle test.
const ORDERS: [&str; 3] = ["26DVI0001", "26DVI0002", "26DVI0003"];

/// Proves that ISSUE, a MODIFY that moves the residence to another city,
/// SERVICE and TERMINATE of three orders, published interleaved (every
/// order's ISSUE, then every order's MODIFY, and so on, without waiting for
/// any status in between), reach every partner they should, each order in
/// sequence at every partner: the firearms-relevant order goes to DOJ from
/// its first message; the court's sheriff and the residence's police
/// department receive the ISSUE; the move adds the new city's department,
/// the old one receives that MODIFY and nothing after it; every later CLETS
/// message carries the EPO's NIC; DOJ answers with a tracking id; DOJ and
/// every agency applied each order's sequences in ascending order
/// (`out_of_order` and `gaps` stay 0, ICD §11) and no simulator applied
/// anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_lifecycles_reach_clets_doj_and_the_right_agencies_in_order() {
    let court = unique_ori();
    let h = Harness::start_with_setup(&[&court], Setup::ALL_PARTNERS).await;
    let watch = h.watch(&court).await;
    let moved = replace(
        &sample("modify.xml", &court),
        "455 CAPITOL MALL APT 12</por:Street><por:City>SACRAMENTO</por:City><por:State>CA</por:State><por:ZIP>95814",
        "9 ELK GROVE BLVD</por:Street><por:City>ELK GROVE</por:City><por:State>CA</por:State><por:ZIP>95757",
    );
    let steps = [
        ("issue", sample("issue.xml", &court)),
        ("modify", moved),
        ("service", sample("service.xml", &court)),
        ("terminate", sample("terminate.xml", &court)),
    ];
    // ids[order][step], published step by step across the orders.
    let mut ids = vec![Vec::new(); ORDERS.len()];
    for (name, body) in &steps {
        for (o, order) in ORDERS.iter().enumerate() {
            let id = unique_id(name);
            let body = replace(body, "24DV01234", order);
            h.publish(&court, Some(&id), "application/xml", &body).await;
            ids[o].push(id);
        }
    }
    let sheriff = "LEA:CA0340000";
    let mut first_nics = Vec::new();
    for order_ids in &ids {
        let mut all = Vec::new();
        for id in order_ids {
            all.push(watch.wait(id, Duration::from_secs(120), complete).await);
        }
        assert_eq!(routed(&all[0]), ["CLETS", "DOJ", sheriff, "LEA:CA0340400"]);
        assert_eq!(
            routed(&all[1]),
            ["CLETS", "DOJ", sheriff, "LEA:CA0340400", "LEA:CA0341100"],
            "the move goes to the old and the new department"
        );
        for later in &all[2..] {
            assert_eq!(routed(later), ["CLETS", "DOJ", sheriff, "LEA:CA0341100"]);
        }
        // CLETS: every message after the EPO carried its NIC.
        let nic = |s: &[StatusMessage]| {
            s.iter()
                .filter(|x| x.partner == Some(PartnerId::Clets))
                .flat_map(|x| x.partner_record_ids.clone())
                .find(|r| r.scheme == "NIC")
                .map(|r| r.id)
        };
        let first_nic = nic(&all[0]).expect("the EPO's ACK gives a NIC");
        for later in &all[1..] {
            assert_eq!(nic(later).as_deref(), Some(first_nic.as_str()));
        }
        first_nics.push(first_nic);
        for s in &all {
            let ids: Vec<_> = s
                .iter()
                .filter(|x| x.partner == Some(PartnerId::Doj))
                .flat_map(|x| x.partner_record_ids.clone())
                .collect();
            assert!(ids.iter().any(|r| r.scheme == "tracking_id"), "{ids:?}");
        }
    }
    first_nics.sort();
    first_nics.dedup();
    assert_eq!(first_nics.len(), ORDERS.len(), "one CARPOS record per order");
    let clets = h.sim_state().await;
    assert_eq!(clets["counters"]["double_records"], 0);
    // DOJ: four notices per order, applied in sequence.
    let doj = Harness::http_sim_state(h.doj.as_deref().unwrap()).await;
    assert_eq!(doj["records"].as_array().unwrap().len(), 4 * ORDERS.len());
    assert_in_order(&doj["counters"], "DOJ");
    for order in ORDERS {
        assert_eq!(applied_sequences(&doj["records"], order), [1, 2, 3, 4], "DOJ, {order}");
    }
    // LEA: per order, the sheriff got all four, the old department two (ISSUE
    // and the moving MODIFY), the new one three (from the MODIFY on).
    let lea = Harness::http_sim_state(h.lea.as_deref().unwrap()).await;
    assert_in_order(&lea["counters"], "LEA");
    for (agency, expected) in [
        ("CA0340000", vec![1, 2, 3, 4]),
        ("CA0340400", vec![1, 2]),
        ("CA0341100", vec![2, 3, 4]),
    ] {
        assert_eq!(records_of(&lea, agency), expected.len() * ORDERS.len(), "{agency}");
        assert_in_order(&lea["agencies"][agency]["counters"], agency);
        let records = &lea["agencies"][agency]["records"];
        for order in ORDERS {
            assert_eq!(applied_sequences(records, order), expected, "{agency}, {order}");
        }
    }
    h.stop().await;
}

/// Proves that an order's signed image is served to an agency through the
/// ICD §8 signed link (the form the LEA adapter puts in its bodies), and
/// that a link with a wrong signature, another agency's name or a past
/// expiry is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_image_links_serve_the_image_and_refuse_tampering() {
    use sha2::Digest as _;
    let court = unique_ori();
    let h = Harness::start_with_setup(
        &[&court],
        Setup {
            lea: true,
            ..Setup::default()
        },
    )
    .await;
    let watch = h.watch(&court).await;
    let pdf = b"%PDF-1.4\n% a signed order, for the test\n".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&pdf));
    let element = format!(
        "<por:OrderImage mimeType=\"application/pdf\" sha256=\"{sha}\">{}</por:OrderImage>\n</por:ProtectiveOrderMessage>",
        data_encoding::BASE64.encode(&pdf)
    );
    let body = replace(&sample("issue.xml", &court), "</por:ProtectiveOrderMessage>", &element);
    let id = unique_id("image");
    h.publish(&court, Some(&id), "application/xml", &body).await;
    watch.wait(&id, Duration::from_secs(60), complete).await;

    let agency = "CA0340000";
    let exp = chrono::Utc::now().timestamp() + 3600;
    let link = porter::delivery::image_link::link(&h.http, LEA_SECRET, &sha, agency, exp);
    let got = reqwest::get(&link).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert_eq!(got.bytes().await.unwrap().as_ref(), pdf.as_slice());

    let forged = porter::delivery::image_link::link(&h.http, "not-the-secret", &sha, agency, exp);
    let other_agency = link.replace(agency, "CA0341100");
    let expired = porter::delivery::image_link::link(&h.http, LEA_SECRET, &sha, agency, exp - 7200);
    for bad in [forged, other_agency, expired] {
        assert_eq!(reqwest::get(&bad).await.unwrap().status(), 403, "{bad}");
    }
    h.stop().await;
}
