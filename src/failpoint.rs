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

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

pub const AFTER_STORE_COMMIT: &str = "after_store_commit";
pub const AFTER_PARTNER_SEND: &str = "after_partner_send";
pub const AFTER_STATUS_PUBLISH: &str = "after_status_publish";

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
}
