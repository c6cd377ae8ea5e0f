//! What one court-simulator run achieved, and what is missing.

use std::fmt::Write as _;

/// The outcome of [`run`](super::run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    pub publish_failed: Vec<(String, String)>,
    /// Messages never published: the rest of an order after a failure, or
    /// everything left at shutdown.
    pub not_sent: usize,
    /// Statuses that contradict the ICD (another court or order, a partner
    /// status after a rejection, an unreadable status, …).
    pub anomalies: Vec<String>,
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

    /// A few human-readable lines: the counts, then what is missing.
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
        assert!(!r.is_clean());
        assert!(CourtSimReport::default().is_clean());
    }
}
