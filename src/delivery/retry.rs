//! Retry timing: exponential backoff with jitter (backon), computed from the
//! attempt count kept in the store, so it survives restarts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The delay before attempt `attempts + 1`.
pub fn delay(attempts: u32, min: Duration, max: Duration) -> Duration {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build();
    backoff.nth(attempts.min(64) as usize).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delays grow with the attempt count and never pass the maximum (plus jitter).
    #[test]
    fn delays_grow_and_are_capped() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        let first = delay(0, min, max);
        assert!(first >= min && first <= min * 2, "{first:?}");
        let late = delay(30, min, max);
        assert!(late >= max && late <= max * 2, "{late:?}");
    }
}
