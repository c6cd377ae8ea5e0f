//! Circuit breakers for the HTTP partners, one per [`PartnerId`] (so each
//! LEA agency has its own).
//!
//! # Design note
//! A circuit stops Porter from hammering a partner that is down or that
//! refuses its credentials, and lets the delivery loop spend its slots on
//! partners that work. It never decides a message's fate: a job held back by
//! an open circuit simply stays pending in the store.
//!
//! States, per partner:
//! - **Closed** (the start): everything is allowed. After
//!   [`CircuitConfig::failure_threshold`] consecutive [`Signal::Transient`]
//!   (default 5) it opens; a [`Signal::Credentials`] (401/403) opens it at
//!   once. A [`Signal::Success`] resets the count.
//! - **Open** for a cool-down: nothing is allowed. The cool-down starts at
//!   [`CircuitConfig::min_cool_down`] (1 s) and doubles each time a probe
//!   fails, up to [`CircuitConfig::max_cool_down`] (60 s); after a
//!   credentials failure it is [`CircuitConfig::credentials_cool_down`]
//!   (60 s), since a wrong token does not fix itself in a second.
//! - **Half-open** once the cool-down has passed: [`Circuits::allow`]
//!   returns `true` exactly once (the probe). The probe's success closes the
//!   circuit (and resets the cool-down to its minimum); its failure reopens
//!   it. If no result comes within [`CircuitConfig::probe_timeout`] (the
//!   probe was lost, e.g. the loop asked but had nothing to send), another
//!   probe is allowed.
//!
//! While open, late results of requests started earlier are handled as
//! follows: a success closes the circuit (the partner works), further
//! failures change nothing.
//!
//! The type is pure apart from its mutex: every method takes `now`, so tests
//! drive the clock. The gauge `porter_partner_circuit_open{partner}` is 1
//! while a partner's circuit is not closed, 0 otherwise.
//!
//! **Wiring.** The HTTP adapters record the signal of each attempt (see
//! [`super::http`]); the delivery loop calls [`Circuits::allow`] before each
//! attempt for a partner and may skip partners in
//! [`Circuits::open_partners`] when it fetches work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::PartnerId;

/// The fixed cool-down after a credentials failure (also the `Retry` delay
/// of a job refused for credentials).
pub const CREDENTIALS_COOL_DOWN: Duration = Duration::from_secs(60);

/// What one attempt tells the partner's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The partner answered as a working partner does (accepted, or
    /// rejected the message on its merits).
    Success,
    /// Timeout, connection error, 408/425/429/5xx.
    Transient,
    /// 401/403: Porter's credentials are refused.
    Credentials,
}

/// Thresholds and cool-downs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    pub failure_threshold: u32,
    pub min_cool_down: Duration,
    pub max_cool_down: Duration,
    pub credentials_cool_down: Duration,
    pub probe_timeout: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            failure_threshold: 5,
            min_cool_down: Duration::from_secs(1),
            max_cool_down: Duration::from_secs(60),
            credentials_cool_down: CREDENTIALS_COOL_DOWN,
            probe_timeout: Duration::from_secs(60),
        }
    }
}

/// A circuit's state as seen at some `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    /// Cool-down running, until the given instant.
    Open {
        until: Instant,
    },
    /// Cool-down over: one probe may go (or is on its way).
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_since: Option<Instant> },
}

#[derive(Debug, Clone, Copy)]
struct Circuit {
    phase: Phase,
    /// The cool-down used the last time a transient failure opened it.
    cool_down: Duration,
}

/// The circuits of every partner.
#[derive(Debug, Default)]
pub struct Circuits {
    config: CircuitConfig,
    circuits: Mutex<HashMap<PartnerId, Circuit>>,
}

impl Circuits {
    pub fn new(config: CircuitConfig) -> Circuits {
        Circuits {
            config,
            circuits: Mutex::new(HashMap::new()),
        }
    }

    /// May a request to `partner` go now? In half-open state this hands out
    /// the single probe: `true` once, then `false` until its result is
    /// recorded or the probe times out.
    pub fn allow(&self, partner: &PartnerId, now: Instant) -> bool {
        let mut map = self.lock();
        let Some(circuit) = map.get_mut(partner) else {
            return true;
        };
        advance(circuit, now);
        match &mut circuit.phase {
            Phase::Closed { .. } => true,
            Phase::Open { .. } => false,
            Phase::HalfOpen { probe_since } => {
                let free = probe_since.is_none_or(|since| now.duration_since(since) >= self.config.probe_timeout);
                if free {
                    *probe_since = Some(now);
                }
                free
            }
        }
    }

    /// Records what one attempt to `partner` told about it.
    pub fn record(&self, partner: &PartnerId, signal: Signal, now: Instant) {
        let mut map = self.lock();
        let circuit = map.entry(partner.clone()).or_insert(Circuit {
            phase: Phase::Closed { failures: 0 },
            cool_down: Duration::ZERO,
        });
        advance(circuit, now);
        let was_closed = matches!(circuit.phase, Phase::Closed { .. });
        self.step(circuit, signal, now);
        let is_closed = matches!(circuit.phase, Phase::Closed { .. });
        if was_closed != is_closed {
            report(partner, is_closed);
        }
    }

    fn step(&self, circuit: &mut Circuit, signal: Signal, now: Instant) {
        let c = &self.config;
        match (circuit.phase, signal) {
            (_, Signal::Success) => {
                circuit.phase = Phase::Closed { failures: 0 };
                circuit.cool_down = Duration::ZERO;
            }
            (Phase::Closed { .. } | Phase::HalfOpen { .. }, Signal::Credentials) => {
                circuit.phase = Phase::Open {
                    until: now + c.credentials_cool_down,
                };
            }
            (Phase::Closed { failures }, Signal::Transient) => {
                let failures = failures + 1;
                if failures >= c.failure_threshold.max(1) {
                    circuit.cool_down = c.min_cool_down;
                    circuit.phase = Phase::Open {
                        until: now + circuit.cool_down,
                    };
                } else {
                    circuit.phase = Phase::Closed { failures };
                }
            }
            (Phase::HalfOpen { .. }, Signal::Transient) => {
                circuit.cool_down = (circuit.cool_down * 2).clamp(c.min_cool_down, c.max_cool_down);
                circuit.phase = Phase::Open {
                    until: now + circuit.cool_down,
                };
            }
            (Phase::Open { .. }, _) => {}
        }
    }

    /// `partner`'s state at `now` (without handing out a probe).
    pub fn state(&self, partner: &PartnerId, now: Instant) -> CircuitState {
        let mut map = self.lock();
        let Some(circuit) = map.get_mut(partner) else {
            return CircuitState::Closed;
        };
        advance(circuit, now);
        match circuit.phase {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { until } => CircuitState::Open { until },
            Phase::HalfOpen { probe_since } => CircuitState::HalfOpen {
                probing: probe_since.is_some_and(|since| now.duration_since(since) < self.config.probe_timeout),
            },
        }
    }

    /// The partners [`Circuits::allow`] would refuse at `now`: open, or
    /// half-open with their probe on its way. Sorted.
    pub fn open_partners(&self, now: Instant) -> Vec<PartnerId> {
        let partners: Vec<PartnerId> = self.lock().keys().cloned().collect();
        let mut open: Vec<PartnerId> = partners
            .into_iter()
            .filter(|p| {
                matches!(
                    self.state(p, now),
                    CircuitState::Open { .. } | CircuitState::HalfOpen { probing: true }
                )
            })
            .collect();
        open.sort();
        open
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PartnerId, Circuit>> {
        self.circuits.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Moves an open circuit whose cool-down has passed to half-open.
fn advance(circuit: &mut Circuit, now: Instant) {
    if let Phase::Open { until } = circuit.phase
        && now >= until
    {
        circuit.phase = Phase::HalfOpen { probe_since: None };
    }
}

fn report(partner: &PartnerId, closed: bool) {
    let label = partner.wire_name();
    metrics::gauge!("porter_partner_circuit_open", "partner" => label).set(if closed { 0.0 } else { 1.0 });
    if closed {
        tracing::info!(partner = %partner, "Partner circuit closed; deliveries resume.");
    } else {
        tracing::warn!(partner = %partner, "Partner circuit opened; deliveries to it pause for a cool-down.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Circuits, PartnerId, Instant) {
        (Circuits::default(), PartnerId::Doj, Instant::now())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Four transient failures keep it closed; the fifth opens it for 1 s.
    #[test]
    fn opens_after_five_consecutive_transients() {
        let (c, p, t0) = setup();
        for _ in 0..4 {
            c.record(&p, Signal::Transient, t0);
        }
        assert!(c.allow(&p, t0));
        c.record(&p, Signal::Transient, t0);
        assert!(!c.allow(&p, t0));
        assert_eq!(c.state(&p, t0), CircuitState::Open { until: t0 + secs(1) });
        assert_eq!(c.open_partners(t0), vec![p]);
    }

    /// A success in between resets the count of consecutive failures.
    #[test]
    fn success_resets_the_failure_count() {
        let (c, p, t0) = setup();
        for _ in 0..4 {
            c.record(&p, Signal::Transient, t0);
        }
        c.record(&p, Signal::Success, t0);
        for _ in 0..4 {
            c.record(&p, Signal::Transient, t0);
        }
        assert_eq!(c.state(&p, t0), CircuitState::Closed);
    }

    /// After the cool-down exactly one probe is allowed; its success closes
    /// the circuit.
    #[test]
    fn half_open_allows_one_probe_and_success_closes() {
        let (c, p, t0) = setup();
        for _ in 0..5 {
            c.record(&p, Signal::Transient, t0);
        }
        let t1 = t0 + secs(1);
        assert_eq!(c.state(&p, t1), CircuitState::HalfOpen { probing: false });
        assert!(c.allow(&p, t1));
        assert!(!c.allow(&p, t1));
        assert_eq!(c.open_partners(t1), vec![p.clone()]);
        c.record(&p, Signal::Success, t1);
        assert!(c.allow(&p, t1) && c.allow(&p, t1));
        assert!(c.open_partners(t1).is_empty());
    }

    /// Each failed probe doubles the cool-down, 1 s → 2 s → 4 s … up to 60 s;
    /// closing resets it.
    #[test]
    fn failed_probes_double_the_cool_down_up_to_a_minute() {
        let (c, p, t0) = setup();
        for _ in 0..5 {
            c.record(&p, Signal::Transient, t0);
        }
        let mut now = t0;
        let mut seen = Vec::new();
        for _ in 0..9 {
            let CircuitState::Open { until } = c.state(&p, now) else {
                panic!("not open")
            };
            seen.push((until - now).as_secs());
            now = until;
            assert!(c.allow(&p, now));
            c.record(&p, Signal::Transient, now);
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let until = match c.state(&p, now) {
            CircuitState::Open { until } => until,
            other => panic!("{other:?}"),
        };
        assert!(c.allow(&p, until));
        c.record(&p, Signal::Success, until);
        for _ in 0..5 {
            c.record(&p, Signal::Transient, until);
        }
        assert_eq!(c.state(&p, until), CircuitState::Open { until: until + secs(1) });
    }

    /// A credentials failure opens the circuit at once, for the fixed longer
    /// cool-down; a failed probe with credentials does it again.
    #[test]
    fn credentials_open_at_once_for_a_minute() {
        let (c, p, t0) = setup();
        c.record(&p, Signal::Credentials, t0);
        assert!(!c.allow(&p, t0 + secs(59)));
        assert!(c.allow(&p, t0 + secs(60)));
        c.record(&p, Signal::Credentials, t0 + secs(60));
        assert_eq!(c.state(&p, t0 + secs(60)), CircuitState::Open { until: t0 + secs(120) });
    }

    /// Each LEA agency has its own circuit: one agency's failures do not
    /// stop another.
    #[test]
    fn agencies_are_independent() {
        let (c, _, t0) = setup();
        let a = PartnerId::Lea("CA0341100".into());
        let b = PartnerId::Lea("CA0340000".into());
        c.record(&a, Signal::Credentials, t0);
        assert!(!c.allow(&a, t0));
        assert!(c.allow(&b, t0));
        assert_eq!(c.open_partners(t0), vec![a]);
    }

    /// A probe whose result never comes is replaced after the probe timeout.
    #[test]
    fn lost_probe_is_replaced_after_timeout() {
        let (c, p, t0) = setup();
        c.record(&p, Signal::Credentials, t0);
        let t1 = t0 + secs(60);
        assert!(c.allow(&p, t1));
        assert!(!c.allow(&p, t1 + secs(59)));
        assert!(c.allow(&p, t1 + secs(60)));
    }

    /// While open, late failures change nothing and a late success closes.
    #[test]
    fn late_results_while_open() {
        let (c, p, t0) = setup();
        c.record(&p, Signal::Credentials, t0);
        c.record(&p, Signal::Transient, t0 + secs(1));
        assert_eq!(c.state(&p, t0 + secs(1)), CircuitState::Open { until: t0 + secs(60) });
        c.record(&p, Signal::Success, t0 + secs(2));
        assert_eq!(c.state(&p, t0 + secs(2)), CircuitState::Closed);
    }
}
