//! What one court-simulator run achieved, what is missing, and how fast.
//!
//! The report prints as a few human lines ([`CourtSimReport::summary`]) or as
//! one JSON document ([`CourtSimReport::to_json`], for
//! `porter sim court --json`): the fields below, publish failures as
//! `{"message_id", "reason"}` objects, and `clean` ([`CourtSimReport::is_clean`]).

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use super::timings::{LatencyStats, Timings};

/// The outcome of [`run`](super::run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CourtSimReport {
    /// Messages RabbitMQ confirmed (routed to a court queue).
    pub sent: usize,
    /// Sent messages that are complete: rejected, or accepted with every
    /// routed partner's outcome.
    pub complete: usize,
    /// Message ids sent but not complete when the run ended.
    pub incomplete: Vec<String>,
    /// Messages `REJECTED` or `CONFLICT_REJECTED`.
    pub rejected: usize,
    /// (message, partner) pairs whose latest status is `PARTNER_ACCEPTED`.
    pub partner_accepted: usize,
    /// (message, partner) pairs whose latest status is `PARTNER_REJECTED`.
    pub partner_rejected: usize,
    /// (message, partner) pairs whose latest status is `DEAD_LETTERED`.
    pub dead_lettered: usize,
    /// Message ids RabbitMQ returned (no queue for the court), nacked, or that
    /// failed with the connection, each with the reason.
    #[serde(serialize_with = "failures")]
    pub publish_failed: Vec<(String, String)>,
    /// Messages never published: the rest of an order after a failure, or
    /// everything left at shutdown.
    pub not_sent: usize,
    /// Statuses that contradict the ICD (another court or order, a partner
    /// status after a rejection, an unreadable status, …).
    pub anomalies: Vec<String>,
    /// The run's seed: the same seed generates the same orders again.
    pub seed: u64,
    /// Latencies and messages per second.
    pub timings: Timings,
}

/// Publish failures as `{"message_id": …, "reason": …}` objects.
fn failures<S: Serializer>(failed: &[(String, String)], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Failure<'a> {
        message_id: &'a str,
        reason: &'a str,
    }
    serializer.collect_seq(failed.iter().map(|(message_id, reason)| Failure { message_id, reason }))
}

impl CourtSimReport {
    /// Whether everything was sent, completed and accepted by every partner,
    /// with nothing odd on the way.
    pub fn is_clean(&self) -> bool {
        self.incomplete.is_empty()
            && self.rejected == 0
            && self.partner_rejected == 0
            && self.dead_lettered == 0
            && self.publish_failed.is_empty()
            && self.not_sent == 0
            && self.anomalies.is_empty()
    }

    /// The report as one JSON document, with `clean` added.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("clean".into(), self.is_clean().into());
        }
        value
    }

    /// A few human-readable lines: the counts, the timings, then what is
    /// missing.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "court simulator: sent {}, complete {}, incomplete {}, rejected {}, partner accepted {}, \
             partner rejected {}, dead-lettered {}, publish failures {}, not sent {}, anomalies {}",
            self.sent,
            self.complete,
            self.incomplete.len(),
            self.rejected,
            self.partner_accepted,
            self.partner_rejected,
            self.dead_lettered,
            self.publish_failed.len(),
            self.not_sent,
            self.anomalies.len(),
        );
        let t = &self.timings;
        for (what, stats) in [
            ("publish to ACCEPTED", &t.accepted),
            ("publish to last PARTNER_ACCEPTED", &t.partner_accepted),
        ] {
            let _ = write!(s, "\n  {what}: {}", latency(stats));
        }
        let _ = write!(
            s,
            "\n  published {}/s over {:.3} s, completed {}/s over {:.3} s; seed {}",
            rate(t.published_per_sec),
            t.publish_secs,
            rate(t.completed_per_sec),
            t.complete_secs,
            self.seed
        );
        const SHOWN: usize = 20;
        let more = |n: usize| {
            if n > SHOWN {
                format!(" (and {} more)", n - SHOWN)
            } else {
                String::new()
            }
        };
        if !self.incomplete.is_empty() {
            let shown: Vec<&str> = self.incomplete.iter().take(SHOWN).map(String::as_str).collect();
            let _ = write!(s, "\n  incomplete: {}{}", shown.join(" "), more(self.incomplete.len()));
        }
        for (id, reason) in self.publish_failed.iter().take(SHOWN) {
            let _ = write!(s, "\n  publish failed: {id}: {reason}");
        }
        s.push_str(&more(self.publish_failed.len()));
        for a in self.anomalies.iter().take(SHOWN) {
            let _ = write!(s, "\n  anomaly: {a}");
        }
        s.push_str(&more(self.anomalies.len()));
        s
    }
}

/// `p50 … p95 … p99 … max … ms (n messages)`, or that nothing was measured.
fn latency(stats: &Option<LatencyStats>) -> String {
    match stats {
        Some(l) => format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} messages)",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.count
        ),
        None => "no message measured".into(),
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary names the counts and lists what is missing.
    #[test]
    fn summary_lists_what_is_missing() {
        let mut r = CourtSimReport {
            sent: 4,
            complete: 3,
            partner_accepted: 5,
            ..Default::default()
        };
        r.incomplete.push("ca034025j-x-000004".into());
        r.publish_failed
            .push(("ca019015j-x-000001".into(), "returned by RabbitMQ: 312 NO_ROUTE".into()));
        let s = r.summary();
        assert!(s.starts_with("court simulator: sent 4, complete 3, incomplete 1, rejected 0, partner accepted 5,"));
        assert!(s.contains("\n  incomplete: ca034025j-x-000004"));
        assert!(s.contains("\n  publish failed: ca019015j-x-000001: returned by RabbitMQ: 312 NO_ROUTE"));
        assert!(s.contains("\n  publish to ACCEPTED: no message measured"));
        assert!(!r.is_clean());
        assert!(CourtSimReport::default().is_clean());
    }

    /// The summary shows the latencies and rates; the JSON document has every
    /// field, failures as objects, and `clean`.
    #[test]
    fn timings_in_summary_and_json() {
        let stats = LatencyStats {
            count: 3,
            p50_ms: 12.5,
            p95_ms: 40.0,
            p99_ms: 41.3,
            max_ms: 41.3,
        };
        let mut r = CourtSimReport {
            sent: 3,
            complete: 3,
            seed: 42,
            timings: Timings {
                accepted: Some(stats),
                partner_accepted: None,
                publish_secs: 0.5,
                published_per_sec: Some(6.0),
                complete_secs: 1.0,
                completed_per_sec: Some(3.0),
            },
            ..Default::default()
        };
        let s = r.summary();
        assert!(
            s.contains("\n  publish to ACCEPTED: p50 12.5 ms, p95 40.0 ms, p99 41.3 ms, max 41.3 ms (3 messages)"),
            "{s}"
        );
        assert!(s.contains("\n  publish to last PARTNER_ACCEPTED: no message measured"));
        assert!(s.contains("\n  published 6.0/s over 0.500 s, completed 3.0/s over 1.000 s; seed 42"));

        let json = r.to_json();
        assert_eq!(json["clean"], true);
        assert_eq!(json["seed"], 42);
        assert_eq!(json["timings"]["accepted"]["p99_ms"], 41.3);
        assert!(json["timings"]["partner_accepted"].is_null());
        assert_eq!(json["timings"]["published_per_sec"], 6.0);
        r.publish_failed.push(("m-1".into(), "nacked by RabbitMQ".into()));
        let json = r.to_json();
        assert_eq!(json["clean"], false);
        assert_eq!(
            json["publish_failed"],
            serde_json::json!([{"message_id": "m-1", "reason": "nacked by RabbitMQ"}])
        );
        for field in [
            "sent",
            "complete",
            "incomplete",
            "rejected",
            "partner_accepted",
            "partner_rejected",
            "dead_lettered",
            "not_sent",
            "anomalies",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
    }
}
