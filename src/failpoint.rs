//! Failpoints: named places where a crash test can make the broker abort
//! (as abruptly as a SIGKILL), to prove that nothing is lost or applied
//! twice whatever the moment of a crash (`tests/crash_broker_killed.rs`).
//!
//! Off unless `PORTER_FAILPOINTS` is set, as `name=probability,…` (for
//! example `after_store_commit=0.05`); each hit of an enabled point aborts
//! the process with that probability, drawn from a generator seeded with
//! `PORTER_FAILPOINT_SEED` (default 1), so a run can be repeated. Before
//! aborting it writes `FAILPOINT <name>` to stderr, which the test reads to
//! check that every point was hit. When the variable is unset a hit costs
//! one atomic load.
//!
//! The points:
//! - [`AFTER_STORE_COMMIT`]: an intake batch is committed, not yet acknowledged;
//! - [`AFTER_PARTNER_SEND`]: a partner answered, the answer not yet recorded;
//! - [`AFTER_STATUS_PUBLISH`]: a status was published, its confirm not yet in.
//!
//! # Keyed failures
//! A second kind of point makes one operation fail, for one key, instead
//! of aborting: an in-process test turns it on with [`fail`] for a key only
//! it uses (a message id, a court's routing key), so tests sharing the
//! process are not touched, and off with [`clear`]. [`hits`] says how often
//! it fired. When none is on, a check costs one atomic load.
//! - [`STORE_ITEM`], keyed by the inbound `message_id` as it came: the
//!   store refuses the intake item (as it would a value it cannot take);
//! - [`PUBLISH_REFUSED`], keyed by routing key (a court's ORI for
//!   statuses): the publisher reports the message nacked without sending it.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

pub const AFTER_STORE_COMMIT: &str = "after_store_commit";
pub const AFTER_PARTNER_SEND: &str = "after_partner_send";
pub const AFTER_STATUS_PUBLISH: &str = "after_status_publish";
/// Keyed failure: storing the intake item with this `message_id` fails.
pub const STORE_ITEM: &str = "store_item";
/// Keyed failure: publishing to this routing key is refused (as a nack).
pub const PUBLISH_REFUSED: &str = "publish_refused";

struct Points {
    probability: HashMap<String, f64>,
    rng: Mutex<StdRng>,
}

static POINTS: OnceLock<Option<Points>> = OnceLock::new();

fn points() -> &'static Option<Points> {
    POINTS.get_or_init(|| {
        let spec = std::env::var("PORTER_FAILPOINTS").ok()?;
        let seed = std::env::var("PORTER_FAILPOINT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        Some(Points {
            probability: parse(&spec),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    })
}

/// `name=probability` pairs; malformed entries are ignored.
fn parse(spec: &str) -> HashMap<String, f64> {
    spec.split(',')
        .filter_map(|pair| {
            let (name, p) = pair.split_once('=')?;
            Some((name.trim().to_string(), p.trim().parse().ok()?))
        })
        .collect()
}

/// Aborts the process here, if the point is enabled and its draw says so.
pub fn hit(name: &str) {
    let Some(points) = points() else { return };
    let Some(&p) = points.probability.get(name) else {
        return;
    };
    let draw: f64 = points.rng.lock().map(|mut r| r.random()).unwrap_or(1.0);
    if draw < p {
        let _ = writeln!(std::io::stderr(), "FAILPOINT {name}");
        std::process::abort();
    }
}

/// The keyed failures turned on, with how often each fired.
static FAILING: Mutex<Vec<KeyedFailure>> = Mutex::new(Vec::new());
/// Whether [`FAILING`] may hold anything: the cheap check.
static ANY_FAILING: AtomicBool = AtomicBool::new(false);

struct KeyedFailure {
    name: String,
    key: String,
    on: bool,
    hits: u64,
}

/// Turns the keyed failure `name` on for `key`.
pub fn fail(name: &str, key: &str) {
    let mut failing = FAILING.lock().unwrap_or_else(|e| e.into_inner());
    match failing.iter_mut().find(|f| f.name == name && f.key == key) {
        Some(f) => f.on = true,
        None => failing.push(KeyedFailure {
            name: name.to_string(),
            key: key.to_string(),
            on: true,
            hits: 0,
        }),
    }
    ANY_FAILING.store(true, Ordering::SeqCst);
}

/// Turns the keyed failure `name` off for `key` (its hits stay readable).
pub fn clear(name: &str, key: &str) {
    let mut failing = FAILING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = failing.iter_mut().find(|f| f.name == name && f.key == key) {
        f.on = false;
    }
}

/// Whether the operation `name` must fail for `key`; counts the hit.
pub fn fails(name: &str, key: &str) -> bool {
    if !ANY_FAILING.load(Ordering::Relaxed) {
        return false;
    }
    let mut failing = FAILING.lock().unwrap_or_else(|e| e.into_inner());
    match failing.iter_mut().find(|f| f.on && f.name == name && f.key == key) {
        Some(f) => {
            f.hits += 1;
            true
        }
        None => false,
    }
}

/// How often the keyed failure `name` fired for `key`.
pub fn hits(name: &str, key: &str) -> u64 {
    let failing = FAILING.lock().unwrap_or_else(|e| e.into_inner());
    failing
        .iter()
        .find(|f| f.name == name && f.key == key)
        .map_or(0, |f| f.hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec lists points with their probabilities and skips junk.
    #[test]
    fn spec_parses() {
        let p = parse("after_store_commit=0.5, after_partner_send=1,bogus,x=y");
        assert_eq!(p.len(), 2);
        assert_eq!(p["after_store_commit"], 0.5);
        assert_eq!(p["after_partner_send"], 1.0);
    }

    /// A keyed failure fires for its key only, while on, and counts hits.
    #[test]
    fn keyed_failure_fires_for_its_key_while_on() {
        let key = "failpoint-unit-test-key";
        assert!(!fails(STORE_ITEM, key));
        fail(STORE_ITEM, key);
        assert!(fails(STORE_ITEM, key));
        assert!(!fails(STORE_ITEM, "another-key"));
        assert!(!fails(PUBLISH_REFUSED, key));
        clear(STORE_ITEM, key);
        assert!(!fails(STORE_ITEM, key));
        assert_eq!(hits(STORE_ITEM, key), 1);
    }
}
