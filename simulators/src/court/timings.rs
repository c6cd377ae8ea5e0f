//! How fast Porter answered a run: latencies from publish to status, and
//! messages per second.
//!
//! # Design note
//!
//! The clock is the simulator's own monotonic clock ([`Instant`]); Porter's
//! `por:StatusDateTime` is not used, so the two hosts' clocks never need to
//! agree.
//!
//! - **Publish time** of a message: when the simulator first hands it to
//!   RabbitMQ (just before its first `basic.publish`), not when the
//!   publisher confirm comes back. A court's clock starts when it sends;
//!   a status may even arrive before the confirm. A resend after a dropped
//!   connection keeps the first publish time.
//! - **Publish → `ACCEPTED`**: until the first `ACCEPTED` of the message
//!   arrives, over the complete messages that were accepted.
//! - **Publish → last `PARTNER_ACCEPTED`**: until the first
//!   `PARTNER_ACCEPTED` of its last partner arrives (a repeated status does
//!   not move it), over the complete messages that every routed partner
//!   accepted, at least one. Messages with a rejection, a dead letter or no
//!   partner are left out.
//! - For each, p50, p95, p99 (nearest rank: the smallest sample with at least
//!   that share of the samples at or below it) and the maximum, in
//!   milliseconds.
//! - **Published per second**: messages RabbitMQ confirmed, over the span
//!   from the first publish to the last confirm. **Completed per second**:
//!   complete messages, over the span from the first publish to the last
//!   completion. A rate is absent when its span is empty.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Percentiles of one latency over a run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyStats {
    /// How many messages were measured.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl LatencyStats {
    /// The percentiles of `samples` (in any order); `None` without samples.
    pub fn of(samples: &[Duration]) -> Option<LatencyStats> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let ms = |p: f64| percentile(&sorted, p).map(millis);
        Some(LatencyStats {
            count: sorted.len(),
            p50_ms: ms(50.0)?,
            p95_ms: ms(95.0)?,
            p99_ms: ms(99.0)?,
            max_ms: millis(*sorted.last()?),
        })
    }
}

/// The nearest-rank percentile `p` (0–100) of ascending `sorted`: the sample
/// at rank ⌈p/100 · n⌉ (1-based, at least 1). `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // p · n first: exact for whole percentages, where (p / 100) · n is not.
    let rank = (p.clamp(0.0, 100.0) * n as f64 / 100.0).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// Milliseconds to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Latencies and throughput of one run (see the module doc for what each
/// one measures).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Publish → first `ACCEPTED`; absent when nothing was accepted.
    pub accepted: Option<LatencyStats>,
    /// Publish → the last partner's first `PARTNER_ACCEPTED`; absent when no
    /// message was accepted by all its partners.
    pub partner_accepted: Option<LatencyStats>,
    /// Seconds from the first publish to the last publisher confirm.
    pub publish_secs: f64,
    /// Confirmed messages per second over `publish_secs`.
    pub published_per_sec: Option<f64>,
    /// Seconds from the first publish to the last message becoming complete.
    pub complete_secs: f64,
    /// Complete messages per second over `complete_secs`.
    pub completed_per_sec: Option<f64>,
}

/// What a run measured, for [`Timings::compute`].
#[derive(Debug, Clone, Default)]
pub struct TimingSamples {
    /// Publish → `ACCEPTED`, one per measured message.
    pub accepted: Vec<Duration>,
    /// Publish → last `PARTNER_ACCEPTED`, one per measured message.
    pub partner_accepted: Vec<Duration>,
    /// The first publish of the run.
    pub first_publish: Option<Instant>,
    /// The last publisher confirm of the run.
    pub last_confirm: Option<Instant>,
    /// When the last message became complete.
    pub last_completion: Option<Instant>,
    /// Messages RabbitMQ confirmed.
    pub published: usize,
    /// Messages complete.
    pub completed: usize,
}

impl Timings {
    /// Percentiles and rates from the samples.
    pub fn compute(samples: &TimingSamples) -> Timings {
        let span = |end: Option<Instant>| match (samples.first_publish, end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        let publish = span(samples.last_confirm);
        let complete = span(samples.last_completion);
        Timings {
            accepted: LatencyStats::of(&samples.accepted),
            partner_accepted: LatencyStats::of(&samples.partner_accepted),
            publish_secs: round_ms(publish),
            published_per_sec: per_sec(samples.published, publish),
            complete_secs: round_ms(complete),
            completed_per_sec: per_sec(samples.completed, complete),
        }
    }
}

/// `count` per second over `span`, to two decimals; `None` for an empty span.
fn per_sec(count: usize, span: Duration) -> Option<f64> {
    (!span.is_zero()).then(|| (count as f64 / span.as_secs_f64() * 100.0).round() / 100.0)
}

/// Seconds to the millisecond.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Nearest rank: 1..=100 ms gives p50 50, p95 95, p99 99; one sample is
    /// every percentile; small sets round the rank up; nothing gives nothing.
    #[test]
    fn percentiles_use_the_nearest_rank() {
        let hundred: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(ms(50)));
        assert_eq!(percentile(&hundred, 95.0), Some(ms(95)));
        assert_eq!(percentile(&hundred, 99.0), Some(ms(99)));
        assert_eq!(percentile(&hundred, 100.0), Some(ms(100)));
        assert_eq!(percentile(&hundred, 0.0), Some(ms(1)));
        assert_eq!(percentile(&[ms(7)], 99.0), Some(ms(7)));
        let four = [ms(10), ms(20), ms(30), ms(40)];
        // 0.5 * 4 = 2 → the 2nd; 0.95 * 4 = 3.8 → the 4th.
        assert_eq!(percentile(&four, 50.0), Some(ms(20)));
        assert_eq!(percentile(&four, 95.0), Some(ms(40)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    /// Stats sort their samples, and report milliseconds with microseconds.
    #[test]
    fn stats_sort_and_convert() {
        let mut samples: Vec<Duration> = (1..=200).rev().map(ms).collect();
        samples.push(Duration::from_micros(1_234_567));
        let s = LatencyStats::of(&samples).unwrap();
        assert_eq!(s.count, 201);
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms), (101.0, 191.0, 199.0));
        assert_eq!(s.max_ms, 1234.567);
        assert_eq!(LatencyStats::of(&[]), None);
    }

    /// Rates divide by their own span; an empty span has no rate.
    #[test]
    fn rates_use_their_spans() {
        let start = Instant::now();
        let samples = TimingSamples {
            accepted: vec![ms(5)],
            first_publish: Some(start),
            last_confirm: Some(start + ms(2_000)),
            last_completion: Some(start + ms(4_000)),
            published: 10,
            completed: 8,
            ..Default::default()
        };
        let t = Timings::compute(&samples);
        assert_eq!((t.publish_secs, t.published_per_sec), (2.0, Some(5.0)));
        assert_eq!((t.complete_secs, t.completed_per_sec), (4.0, Some(2.0)));
        assert_eq!(t.accepted.unwrap().max_ms, 5.0);
        assert_eq!(t.partner_accepted, None);
        let none = Timings::compute(&TimingSamples::default());
        assert_eq!((none.published_per_sec, none.completed_per_sec), (None, None));
    }
}
