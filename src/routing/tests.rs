//! Each routing rule of ICD §7 and §8, on the shipped sample table.

use std::path::Path;

use super::*;
use crate::model::{Address, RestrainedPerson};

const SACRAMENTO_COURT: &str = "CA034025J";
const YUROK_COURT: &str = "CA008015J";

fn router() -> Router {
    let table = LeaTable::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/lea-agencies.toml")).unwrap();
    Router {
        doj: true,
        lea: Some(table),
        sheriffs: [(SACRAMENTO_COURT, "CA0340000"), (YUROK_COURT, "CA0080000")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    }
}

fn order(city: &str, zip: &str, state: &str) -> OrderMessage {
    let mut o = OrderMessage {
        court_ori: SACRAMENTO_COURT.into(),
        ..OrderMessage::default()
    };
    o.restrained_person = Some(RestrainedPerson {
        residence: Some(Address {
            street: Some("1 Main St".into()),
            city: Some(city.into()),
            state: Some(state.into()),
            zip: Some(zip.into()),
        }),
        ..RestrainedPerson::default()
    });
    o
}

fn route(court: &str, before: Option<&OrderMessage>, after: &OrderMessage, sticky: &Sticky) -> (Vec<String>, Sticky) {
    let (partners, sticky) = router().route(Applied {
        court_ori: court,
        before,
        after,
        candidates: &[PartnerId::Clets],
        sticky,
    });
    (partners.iter().map(PartnerId::wire_name).collect(), sticky)
}

/// Every court's sheriff receives every order, a tribal court's too, even
/// when the residence is unknown to the table.
#[test]
fn the_courts_sheriff_always_receives_the_order() {
    let (p, _) = route(YUROK_COURT, None, &order("Nowhere", "99999", "CA"), &Sticky::default());
    assert_eq!(p, ["CLETS", "LEA:CA0080000"]);
}

/// The residence's agency is found by (ZIP, city) and receives the order
/// beside the sheriff; the same county adds no second sheriff.
#[test]
fn the_residence_agency_receives_the_order() {
    let (p, _) = route(
        SACRAMENTO_COURT,
        None,
        &order("Elk Grove", "95757", "CA"),
        &Sticky::default(),
    );
    assert_eq!(p, ["CLETS", "LEA:CA0340000", "LEA:CA0341100"]);
}

/// A residence in another county brings that county's sheriff too.
#[test]
fn another_countys_residence_adds_that_sheriff() {
    let (p, _) = route(
        SACRAMENTO_COURT,
        None,
        &order("Oakland", "94612", "CA"),
        &Sticky::default(),
    );
    assert_eq!(p, ["CLETS", "LEA:CA0010000", "LEA:CA0010900", "LEA:CA0340000"]);
}

/// Out of state, or unknown: the sheriff only.
#[test]
fn out_of_state_goes_to_the_sheriff_only() {
    let (p, _) = route(
        SACRAMENTO_COURT,
        None,
        &order("Reno", "89501", "NV"),
        &Sticky::default(),
    );
    assert_eq!(p, ["CLETS", "LEA:CA0340000"]);
}

/// An agency named twice (the sheriff polices the residence) gets one delivery.
#[test]
fn an_agency_named_twice_gets_one_delivery() {
    let (p, _) = route(
        SACRAMENTO_COURT,
        None,
        &order("Carmichael", "95608", "CA"),
        &Sticky::default(),
    );
    assert_eq!(p, ["CLETS", "LEA:CA0340000"]);
}

/// A MODIFY that moves the residence adds the new agency; the old one gets
/// that MODIFY and nothing after it.
#[test]
fn a_move_adds_the_new_agency_and_the_old_gets_only_the_move() {
    let first = order("Elk Grove", "95757", "CA");
    let (_, sticky) = route(SACRAMENTO_COURT, None, &first, &Sticky::default());
    let moved = order("Sacramento", "95814", "CA");
    let (p, sticky) = route(SACRAMENTO_COURT, Some(&first), &moved, &sticky);
    assert_eq!(p, ["CLETS", "LEA:CA0340000", "LEA:CA0340400", "LEA:CA0341100"]);
    let (p, _) = route(SACRAMENTO_COURT, Some(&moved), &moved, &sticky);
    assert_eq!(p, ["CLETS", "LEA:CA0340000", "LEA:CA0340400"]);
}

/// DOJ enters when the order becomes firearms-relevant (PCO 07, Brady Y or
/// relinquishment), and stays for every later message even when it no
/// longer is.
#[test]
fn doj_enters_when_firearms_relevant_and_then_stays() {
    let plain = order("Reno", "89501", "NV");
    let (p, sticky) = route(SACRAMENTO_COURT, None, &plain, &Sticky::default());
    assert!(!p.contains(&"DOJ".to_string()));
    let mut pco = plain.clone();
    pco.order.condition_codes = vec!["01".into(), "07".into()];
    let (p, sticky) = route(SACRAMENTO_COURT, Some(&plain), &pco, &sticky);
    assert!(p.contains(&"DOJ".to_string()), "{p:?}");
    let (p, _) = route(SACRAMENTO_COURT, Some(&pco), &plain, &sticky);
    assert!(p.contains(&"DOJ".to_string()), "DOJ stays: {p:?}");
    for relevant in [
        {
            let mut o = plain.clone();
            o.order.brady = Some("Y".into());
            o
        },
        {
            let mut o = plain.clone();
            o.order.firearm_relinquishment = Some(true);
            o
        },
    ] {
        assert!(prohibits_firearms(&relevant));
    }
    assert!(!prohibits_firearms(&plain));
}

/// Without DOJ or LEA configured, only the verdict's candidates are routed.
#[test]
fn unconfigured_partners_are_never_routed() {
    let r = Router {
        doj: false,
        lea: None,
        sheriffs: HashMap::new(),
    };
    let mut o = order("Sacramento", "95814", "CA");
    o.order.brady = Some("Y".into());
    let (p, _) = r.route(Applied {
        court_ori: SACRAMENTO_COURT,
        before: None,
        after: &o,
        candidates: &[PartnerId::Clets],
        sticky: &Sticky::default(),
    });
    assert_eq!(p, [PartnerId::Clets]);
}
