//! Resends end to end (ICD §5, §7, §8, §9): a partner that applied a
//! request but whose reply was lost gets the same key with byte-identical
//! content again, for every partner, however long after the first attempt.

mod common;

use std::time::{Duration, Instant};

use common::*;
use porter::model::{PartnerId, StatusKind, StatusMessage};
use serde_json::{Value, json};

fn sample(name: &str, court: &str) -> Vec<u8> {
    let body = std::fs::read(repo().join("schemas/samples").join(name)).unwrap();
    for_court(&body, court)
}

/// The sample ISSUE with a signed-order image (`por:OrderImage`).
fn issue_with_image(court: &str) -> Vec<u8> {
    use sha2::Digest as _;
    let pdf = b"%PDF-1.4\n% a signed order, resent\n".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&pdf));
    let element = format!(
        "<por:OrderImage mimeType=\"application/pdf\" sha256=\"{sha}\">{}</por:OrderImage>\n</por:ProtectiveOrderMessage>",
        data_encoding::BASE64.encode(&pdf)
    );
    replace(&sample("issue.xml", court), "</por:ProtectiveOrderMessage>", &element)
}

async fn set_faults(base: &str, faults: Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/_sim/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{base}: {}", r.status());
}

/// Every routed partner has its final status, accepted or rejected.
fn settled(statuses: &[StatusMessage]) -> bool {
    let Some(accepted) = statuses.iter().find(|s| s.status == StatusKind::Accepted) else {
        return false;
    };
    accepted.routed_partners.iter().all(|p| {
        statuses.iter().any(|s| {
            matches!(s.status, StatusKind::PartnerAccepted | StatusKind::PartnerRejected)
                && s.partner.as_ref() == Some(p)
        })
    })
}

/// Waits until the HTTP simulator at `base` has received `at_least` requests.
async fn received(base: &str, at_least: u64) {
    let started = Instant::now();
    while Harness::http_sim_state(base).await["counters"]["received"]
        .as_u64()
        .unwrap_or(0)
        < at_least
    {
        assert!(started.elapsed() < Duration::from_secs(60), "{base}: no resends");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Proves that resends made seconds after the first attempt carry the same
/// key and byte-identical content to every partner: with every reply lost
/// (the DOJ and LEA simulators apply each request, then drop the
/// connection; CLETS drops it unprocessed), Porter resends for a few
/// seconds; once the replies flow, every partner's message ends
/// PARTNER_ACCEPTED, DOJ and the agencies answered the resends from their
/// idempotency memory (`duplicates` > 0), nothing was refused as a changed
/// body under a known key (`rejected` 0) and nothing was recorded twice.
/// The image links are valid one day, so a link expiry recomputed from the
/// clock would change the LEA body on every resend (it did: `422`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_after_lost_replies_are_byte_identical_for_every_partner() {
    let court = unique_ori();
    let setup = Setup {
        image_link_days: Some(1),
        ..Setup::ALL_PARTNERS
    };
    let h = Harness::start_with_setup(&[&court], setup).await;
    let (doj, lea) = (h.doj.clone().unwrap(), h.lea.clone().unwrap());
    let lost = json!({ "disconnect_rate": 1.0 });
    for base in [&doj, &lea, &h.clets_control] {
        set_faults(base, lost.clone()).await;
    }
    let watch = h.watch(&court).await;
    let id = unique_id("resend");
    h.publish(&court, Some(&id), "application/xml", &issue_with_image(&court))
        .await;
    received(&doj, 1).await;
    received(&lea, 1).await;
    // Resends go on, at least two seconds after the first attempts.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    received(&doj, 2).await;
    received(&lea, 3).await;
    for base in [&doj, &lea, &h.clets_control] {
        set_faults(base, json!({})).await;
    }

    let statuses = watch.wait(&id, Duration::from_secs(60), settled).await;
    let routed = &statuses
        .iter()
        .find(|s| s.status == StatusKind::Accepted)
        .unwrap()
        .routed_partners;
    assert!(routed.contains(&PartnerId::Doj) && routed.len() >= 3, "{routed:?}");
    for partner in routed {
        let last = statuses.iter().rfind(|s| s.partner.as_ref() == Some(partner)).unwrap();
        assert_eq!(last.status, StatusKind::PartnerAccepted, "{partner}: {:?}", last.errors);
    }
    for (name, base) in [("DOJ", &doj), ("LEA", &lea)] {
        let counters = &Harness::http_sim_state(base).await["counters"];
        assert!(counters["duplicates"].as_u64().unwrap() > 0, "{name}: {counters}");
        assert_eq!(counters["rejected"], 0, "{name}: a resend changed its body: {counters}");
        assert_eq!(counters["double_records"], 0, "{name}: {counters}");
    }
    let clets = &h.sim_state().await["counters"];
    assert_eq!(clets["double_records"], 0, "{clets}");
    assert_eq!(clets["rejected"], 0, "{clets}");
    h.stop().await;
}
