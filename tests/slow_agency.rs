//! A slow LEA agency takes no capacity from the other agencies (ICD §9: "a
//! stuck order never blocks another order, another court or another
//! partner"; issue 15, item 4).
//!
//! Proves that while the court's sheriff answers every request in 2 s (the
//! LEA simulator's latency fault, scoped to that agency) and has 80
//! deliveries due, the other agencies' deliveries (ten agencies, 132
//! deliveries) are all accepted while the sheriff still has at least a
//! quarter of its deliveries pending. The measure is a count, never a time:
//! the LEA simulator's per-agency `accepted` counters, read at the first
//! look at which every other agency has accepted everything routed to it.
//! Then every message ends `PARTNER_ACCEPTED` at every partner it was routed
//! to (nothing rejected or dead-lettered), each agency applied each order
//! once, in sequence (`out_of_order`, `gaps`, `double_records` 0) and with no
//! duplicate request, and CARPOS recorded nothing twice.
//!
//! Why 80 orders: a scheduler in which one agency may take every slot
//! (one loop of 16 slots, oldest first, with the per-agency limit taken only
//! inside the attempt, as before lanes) starts an other agency's delivery
//! only once every older due sheriff delivery holds a slot. When the last
//! other-agency delivery is accepted, the sheriff then has at most its 15
//! in flight plus the one of the last order left: 16, under a quarter of 80.
//! `with_one_agency_taking_every_slot_the_others_wait` runs that scheduling
//! (`per_agency` = `concurrency` = 16) and shows it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use porter::model::{PartnerId, StatusKind, StatusMessage};
use serde_json::{Value, json};

/// The court's sheriff (the harness's `sheriff_ori`): it receives every
/// order of the court, and here answers slowly.
const SHERIFF: &str = "CA0340000";
/// How long the sheriff takes to answer each request.
const SLOW_MS: u64 = 2_000;
/// Orders published, one ISSUE each: the sheriff's deliveries.
const ORDERS: usize = 80;
/// The broker's default `[partners.lea] concurrency`.
const CONCURRENCY: usize = 16;

/// Residences (city, ZIP) and the agencies other than the sheriff that
/// `mappings/lea-agencies.toml` gives them: the city's department and, in
/// another county than the court's (Sacramento), that county's sheriff.
const RESIDENCES: [(&str, &str, &[&str]); 6] = [
    ("SACRAMENTO", "95814", &["CA0340400"]),
    ("ELK GROVE", "95757", &["CA0341100"]),
    ("LOS ANGELES", "90012", &["CA0194200", "CA0190000"]),
    ("SAN DIEGO", "92101", &["CA0371100", "CA0370000"]),
    ("FRESNO", "93704", &["CA0100500", "CA0100000"]),
    ("OAKLAND", "94607", &["CA0010900", "CA0010000"]),
];

/// The sample ISSUE's residence, replaced per order.
const SAMPLE_RESIDENCE: &str = "<por:City>SACRAMENTO</por:City><por:State>CA</por:State><por:ZIP>95814</por:ZIP>";

/// What one run measured.
#[derive(Debug)]
struct Measured {
    /// The sheriff's deliveries (one per order).
    slow_total: u64,
    /// The sheriff's deliveries not yet accepted when every other agency
    /// had accepted all of its own.
    slow_pending: u64,
    /// The other agencies' deliveries, and how many agencies.
    others_total: u64,
    other_agencies: usize,
}

/// Proves the isolation described in the module note, with the broker's
/// default limits (`per_agency` 4, `concurrency` 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_agency_leaves_the_other_agencies_flowing() {
    let m = run_with_slow_sheriff(None).await;
    assert!(
        m.slow_total >= 16,
        "the slow agency must have at least 16 deliveries due: {m:?}"
    );
    assert!(
        4 * m.slow_pending >= m.slow_total,
        "the other agencies finished only when the slow agency had {} of its {} deliveries pending \
         (fewer than a quarter): it took their capacity. {m:?}",
        m.slow_pending,
        m.slow_total
    );
}

/// The control: with `per_agency` = `concurrency` one agency may take every
/// slot, as the one LEA loop of 16 slots did before lanes, and the same
/// measure shows the other agencies waiting behind the slow one (fewer than
/// a quarter of its deliveries left when they finish). Ignored in the
/// suite: it documents that the measure above tells the two schedulings
/// apart (`cargo test --test slow_agency -- --ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "control run of a scheduling Porter no longer uses"]
async fn with_one_agency_taking_every_slot_the_others_wait() {
    let m = run_with_slow_sheriff(Some(CONCURRENCY)).await;
    assert!(
        4 * m.slow_pending < m.slow_total,
        "with one agency allowed every slot the others still finished early: {m:?}"
    );
}

/// Runs the scenario of the module note with `[partners.lea] per_agency`
/// (`None`: the broker's default) and returns what it measured, once every
/// message is complete and every simulator's counters are checked.
async fn run_with_slow_sheriff(per_agency: Option<usize>) -> Measured {
    let started = Instant::now();
    let court = unique_ori();
    let setup = Setup {
        lea: true,
        lea_per_agency: per_agency,
        ..Setup::default()
    };
    let h = Harness::start_with_setup(&[&court], setup).await;
    let lea = h.lea.clone().unwrap();
    let watch = h.watch(&court).await;
    let faults = json!({ "latency_ms": SLOW_MS, "agency": SHERIFF });
    let set = reqwest::Client::new()
        .post(format!("{lea}/_sim/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());

    // One ISSUE per order, residences taking turns; what each agency should get.
    let issue = for_court(
        &std::fs::read(repo().join("schemas/samples/issue.xml")).unwrap(),
        &court,
    );
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut messages = Vec::new();
    for i in 0..ORDERS {
        let (city, zip, agencies) = RESIDENCES[i % RESIDENCES.len()];
        let order = format!("26DVS{i:04}");
        let body = replace(&issue, "24DV01234", &order);
        let residence = format!("<por:City>{city}</por:City><por:State>CA</por:State><por:ZIP>{zip}</por:ZIP>");
        let body = replace(&body, SAMPLE_RESIDENCE, &residence);
        let id = unique_id("slow-agency");
        h.publish(&court, Some(&id), "application/xml", &body).await;
        let mut routed: BTreeSet<String> = ["CLETS".to_string(), format!("LEA:{SHERIFF}")].into();
        routed.extend(agencies.iter().map(|a| format!("LEA:{a}")));
        for agency in [SHERIFF].iter().chain(agencies) {
            *expected.entry(agency.to_string()).or_default() += 1;
        }
        messages.push((id, routed));
    }
    let published = started.elapsed();

    // The moment every other agency has accepted all of its deliveries:
    // how many the sheriff still has.
    let slow_total = expected[SHERIFF];
    let others: BTreeMap<&str, u64> = expected
        .iter()
        .filter(|(agency, _)| *agency != SHERIFF)
        .map(|(agency, n)| (agency.as_str(), *n))
        .collect();
    let accepted =
        |state: &Value, agency: &str| state["agencies"][agency]["counters"]["accepted"].as_u64().unwrap_or(0);
    let looking = Instant::now();
    let slow_pending = loop {
        let state = Harness::http_sim_state(&lea).await;
        if others.iter().all(|(agency, n)| accepted(&state, agency) >= *n) {
            break slow_total - accepted(&state, SHERIFF).min(slow_total);
        }
        assert!(
            looking.elapsed() < Duration::from_secs(90),
            "the other agencies did not finish: {}",
            state["agencies"]
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let others_done = started.elapsed();

    // Every message complete: ACCEPTED to the expected partners, then
    // PARTNER_ACCEPTED from each, and nothing else.
    for (id, routed) in &messages {
        let statuses = watch.wait(id, Duration::from_secs(90), finished).await;
        let accepted = statuses.iter().find(|s| s.status == StatusKind::Accepted).unwrap();
        let got: BTreeSet<String> = accepted.routed_partners.iter().map(PartnerId::wire_name).collect();
        assert_eq!(&got, routed, "routing of {id}");
        for s in &statuses {
            assert!(
                matches!(s.status, StatusKind::Accepted | StatusKind::PartnerAccepted),
                "{id}: {s:?}"
            );
        }
    }
    let all_done = started.elapsed();

    let state = Harness::http_sim_state(&lea).await;
    assert_in_order(&state["counters"], "LEA");
    assert_eq!(state["counters"]["duplicates"], 0, "LEA: {}", state["counters"]);
    for (agency, n) in &expected {
        let counters = &state["agencies"][agency]["counters"];
        assert_in_order(counters, agency);
        assert_eq!(counters["accepted"].as_u64(), Some(*n), "{agency}: {counters}");
    }
    assert_eq!(
        state["agencies"].as_object().unwrap().len(),
        expected.len(),
        "no agency beyond the routed ones: {}",
        state["agencies"]
    );
    let clets = h.sim_state().await;
    assert_eq!(clets["counters"]["double_records"], 0, "{}", clets["counters"]);
    assert_eq!(clets["counters"]["out_of_order"], 0, "{}", clets["counters"]);
    assert_eq!(clets["counters"]["accepted"].as_u64(), Some(ORDERS as u64));

    let m = Measured {
        slow_total,
        slow_pending,
        others_total: others.values().sum(),
        other_agencies: others.len(),
    };
    println!(
        "per_agency {}: the {} other agencies' {} deliveries were accepted when the slow agency had {} of its {} \
         pending (published in {published:.1?}, others done at {others_done:.1?}, all done at {all_done:.1?})",
        per_agency.map_or("default (4)".to_string(), |n| n.to_string()),
        m.other_agencies,
        m.others_total,
        m.slow_pending,
        m.slow_total,
    );
    h.stop().await;
    m
}

/// Every routed partner has accepted the message, or something refused it.
fn finished(statuses: &[StatusMessage]) -> bool {
    let refused = statuses.iter().any(|s| {
        matches!(
            s.status,
            StatusKind::Rejected
                | StatusKind::ConflictRejected
                | StatusKind::PartnerRejected
                | StatusKind::DeadLettered
        )
    });
    refused || complete(statuses)
}

/// Every routed partner has accepted the message.
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
