//! What `porter bench` prints: a few human lines, or one JSON document
//! (`--json`) with the same figures and the court simulator's own report.

use std::fmt::Write as _;

use porter_simulators::court::{CourtSimReport, LatencyStats};
use serde::Serialize;

use super::relay::RelayReport;

/// One broker process's figures over the measured span.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerFigures {
    /// Its process id.
    pub pid: u32,
    /// CPU seconds (user + system) spent in the measured span.
    pub cpu_secs: f64,
    /// Peak resident set size (`VmHWM`) over its life, in bytes.
    pub peak_rss_bytes: u64,
}

/// The outcome of one `porter bench` run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `backlog` or `live`.
    pub mode: &'static str,
    /// `sqlite` or `postgresql`.
    pub store: &'static str,
    /// Broker processes.
    pub brokers: usize,
    /// Simulated courts.
    pub courts: usize,
    /// Orders per court (each an ISSUE, a MODIFY and a SERVICE).
    pub orders_per_court: u32,
    /// The offered rate of a live run, messages per second.
    pub offered_rate: Option<f64>,
    /// Court messages sent.
    pub messages: usize,
    /// Statuses the courts received for them.
    pub statuses: usize,
    /// Seconds measured: the drain (backlog: from the brokers' start to the
    /// last status) or the run (live: first publish to last completion).
    pub secs: f64,
    /// Messages completed per second over `secs`.
    pub msgs_per_sec: f64,
    /// Publish → the last partner's `PARTNER_ACCEPTED`.
    pub latency: Option<LatencyStats>,
    /// CPU seconds of all brokers over the measured span.
    pub broker_cpu_secs: f64,
    /// Broker CPU seconds per 1,000 messages.
    pub cpu_secs_per_1000_messages: f64,
    /// The highest peak RSS of the brokers, in bytes.
    pub broker_peak_rss_bytes: u64,
    /// Each broker's figures.
    pub broker_processes: Vec<BrokerFigures>,
    /// The raw relay's figures for the same traffic; absent when it failed.
    pub relay: Option<RelayReport>,
    /// Porter's messages per second as a share of the relay's (0.25 = 25 %).
    pub porter_share_of_relay: Option<f64>,
    /// Whether the run completed cleanly: the court report is clean and the
    /// relay ran.
    pub clean: bool,
    /// What went wrong, if anything (besides the court report).
    pub problems: Vec<String>,
    /// The court simulator's report.
    #[serde(serialize_with = "court_json")]
    pub court: CourtSimReport,
}

fn court_json<S: serde::Serializer>(report: &CourtSimReport, serializer: S) -> Result<S::Ok, S::Error> {
    report.to_json().serialize(serializer)
}

impl BenchReport {
    /// The report as one JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A few human lines.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "porter bench: {} mode, {} store, {} broker(s), {} courts × {} orders",
            self.mode, self.store, self.brokers, self.courts, self.orders_per_court
        );
        if let Some(rate) = self.offered_rate {
            let _ = write!(s, ", offered {rate} msg/s");
        }
        let _ = write!(
            s,
            "\n  messages {}, statuses {} ({:.2} per message), over {:.3} s: {:.1} msg/s",
            self.messages,
            self.statuses,
            self.statuses as f64 / self.messages.max(1) as f64,
            self.secs,
            self.msgs_per_sec
        );
        let _ = write!(s, "\n  publish to last PARTNER_ACCEPTED: {}", latency(&self.latency));
        let _ = write!(
            s,
            "\n  broker CPU {:.2} s ({:.3} s per 1,000 messages), peak RSS {:.1} MiB",
            self.broker_cpu_secs,
            self.cpu_secs_per_1000_messages,
            self.broker_peak_rss_bytes as f64 / (1024.0 * 1024.0)
        );
        match (&self.relay, self.porter_share_of_relay) {
            (Some(relay), Some(share)) => {
                let _ = write!(
                    s,
                    "\n  raw relay: {} messages, {} outputs, over {:.3} s: {:.1} msg/s; latency {}\n  Porter's share of the relay: {:.1} %",
                    relay.messages,
                    relay.statuses,
                    relay.secs,
                    relay.msgs_per_sec,
                    latency(&relay.latency),
                    share * 100.0
                );
            }
            _ => s.push_str("\n  raw relay: not measured"),
        }
        let _ = write!(s, "\n  clean: {}", self.clean);
        for problem in &self.problems {
            let _ = write!(s, "\n  problem: {problem}");
        }
        if !self.court.is_clean() {
            let _ = write!(s, "\n{}", self.court.summary());
        }
        s
    }
}

fn latency(stats: &Option<LatencyStats>) -> String {
    match stats {
        Some(l) => format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        ),
        None => "not measured".into(),
    }
}
