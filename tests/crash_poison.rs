//! Crash test (d): a poison message — one that a partner always rejects —
//! ends as a dead letter, and the messages behind it still flow.

mod common;

use std::time::Duration;

use common::*;
use porter::model::{PartnerId, StatusKind, StatusMessage};
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};

fn sample(name: &str, court: &str, order: &str) -> Vec<u8> {
    let body = std::fs::read(repo().join("schemas/samples").join(name)).unwrap();
    replace(&for_court(&body, court), "24DV01234", order)
}

fn in_elk_grove(body: &[u8]) -> Vec<u8> {
    replace(
        body,
        "<por:City>SACRAMENTO</por:City><por:State>CA</por:State><por:ZIP>95814",
        "<por:City>ELK GROVE</por:City><por:State>CA</por:State><por:ZIP>95757",
    )
}

fn status_for(statuses: &[StatusMessage], partner: &PartnerId) -> Option<StatusKind> {
    statuses
        .iter()
        .rev()
        .find(|s| s.partner.as_ref() == Some(partner))
        .map(|s| s.status)
}

/// Every routed partner has a final status.
fn settled(statuses: &[StatusMessage]) -> bool {
    statuses
        .iter()
        .find(|s| s.status == StatusKind::Accepted)
        .is_some_and(|a| a.routed_partners.iter().all(|p| status_for(statuses, p).is_some()))
}

/// The load that runs beside the poison: a second court's full lifecycles
/// (ISSUE, MODIFY, SERVICE, close), published interleaved. Its orders live
/// in `ANYTOWN` (the court's ORI is no real county's), so they go to CLETS,
/// DOJ and the court's sheriff, never to Elk Grove.
fn load(court: &str) -> CourtSimConfig {
    CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![SimCourt {
            ori: court.into(),
            name: "load court".into(),
            format: CourtFormat::Fixed,
        }],
        orders_per_court: 10,
        rate_per_sec: 0.0,
        lifecycle: true,
        close: true,
        status_timeout_secs: 120,
        ..CourtSimConfig::default()
    }
}

/// Proves that an order the Elk Grove police RMS always rejects becomes
/// PARTNER_REJECTED and a dead letter on `por.dead` for that agency only —
/// CLETS, DOJ and the sheriff still get it — that its later MODIFY waits
/// behind the dead letter for that agency alone, and that everything else
/// is clean: the orders published after it on the same court reach every
/// partner, and a second court's interleaved lifecycles, published at the
/// same time, end with a clean court-simulator report (nothing rejected,
/// dead-lettered or incomplete: the poison stays the poison's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_one_partner_always_rejects_is_dead_lettered_and_the_rest_flows() {
    let court = unique_ori();
    let load_court = unique_ori();
    let h = Harness::start_with_setup(&[&court, &load_court], Setup::ALL_PARTNERS).await;
    let lea = h.lea.clone().unwrap();
    let set = reqwest::Client::new()
        .post(format!("{lea}/_sim/faults"))
        .header("content-type", "application/json")
        .body(r#"{"reject_rate": 1.0, "agency": "CA0341100"}"#)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());
    let watch = h.watch(&court).await;
    let poison = unique_id("poison");
    h.publish(
        &court,
        Some(&poison),
        "application/xml",
        &in_elk_grove(&sample("issue.xml", &court, "24DVP0001")),
    )
    .await;
    let simulation = tokio::spawn(porter_simulators::court::run_with_printer(
        load(&load_court),
        std::future::pending::<()>(),
        |_| {},
    ));
    let others: Vec<String> = (0..10).map(|i| unique_id(&format!("other-{i}"))).collect();
    for (i, id) in others.iter().enumerate() {
        let order = format!("24DVO{i:04}");
        h.publish(
            &court,
            Some(id),
            "application/xml",
            &sample("issue.xml", &court, &order),
        )
        .await;
    }
    let later = unique_id("poison-modify");
    h.publish(
        &court,
        Some(&later),
        "application/xml",
        &in_elk_grove(&sample("modify.xml", &court, "24DVP0001")),
    )
    .await;

    let s = watch.wait(&poison, Duration::from_secs(60), settled).await;
    let elk_grove = PartnerId::Lea("CA0341100".into());
    assert_eq!(status_for(&s, &elk_grove), Some(StatusKind::PartnerRejected), "{s:#?}");
    for partner in [PartnerId::Clets, PartnerId::Doj, PartnerId::Lea("CA0340000".into())] {
        assert_eq!(status_for(&s, &partner), Some(StatusKind::PartnerAccepted), "{partner}");
    }
    let letters = h.take_dead_letters(&court, 1, Duration::from_secs(10)).await;
    assert_eq!(letters.len(), 1, "one dead letter, for Elk Grove");
    for id in &others {
        let s = watch.wait(id, Duration::from_secs(60), settled).await;
        let accepted = s.iter().find(|x| x.status == StatusKind::Accepted).unwrap();
        for p in &accepted.routed_partners {
            assert_eq!(status_for(&s, p), Some(StatusKind::PartnerAccepted), "{id} {p}");
        }
    }
    // The poison order's MODIFY reaches everyone but Elk Grove, where it
    // waits behind the dead letter.
    let m = watch
        .wait(&later, Duration::from_secs(60), |s| {
            status_for(s, &PartnerId::Clets).is_some() && status_for(s, &PartnerId::Doj).is_some()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status_for(&watch.for_message(&later), &elk_grove), None, "{m:#?}");
    let report = simulation.await.unwrap().expect("court simulator");
    println!("{}", report.summary());
    assert!(report.is_clean(), "the rest is clean: {}", report.summary());
    h.stop().await;
}
