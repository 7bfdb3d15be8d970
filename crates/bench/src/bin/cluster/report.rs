//! Figures as JSON lines, and the small statistics they need.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// Print `{"name": name, "value": value, "unit": unit, ...extra}` on one line.
/// `extra` must be a JSON object (anything else is ignored).
pub fn emit(name: &str, value: impl Into<Value>, unit: &str, extra: Value) {
    let mut line = Map::new();
    line.insert("name".into(), json!(name));
    line.insert("value".into(), value.into());
    line.insert("unit".into(), json!(unit));
    if let Value::Object(fields) = extra {
        line.extend(fields);
    }
    println!("{}", Value::Object(line));
}

/// Milliseconds with microsecond precision.
pub fn ms(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1_000.0
}

/// Round to three decimals (ratios, rates).
pub fn round3(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

/// Operations per second.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Nearest-rank percentiles over a set of durations.
pub struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    pub fn new(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort_unstable();
        Percentiles { sorted: samples }
    }

    /// The `q`-th quantile (0 < q ≤ 1) in ms; 0 for no samples.
    pub fn ms(&self, q: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        ms(self.sorted[rank - 1])
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted.last().map_or(0.0, |d| ms(*d))
    }

    pub fn mean_ms(&self) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let total: Duration = self.sorted.iter().sum();
        round3(ms(total) / self.sorted.len() as f64)
    }

    /// How many samples exceed `limit`.
    pub fn over(&self, limit: Duration) -> usize {
        self.sorted.iter().filter(|d| **d > limit).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_pick_a_sample_at_or_above_the_quantile() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::new(samples);
        assert_eq!(p.ms(0.50), 50.0);
        assert_eq!(p.ms(0.99), 99.0);
        assert_eq!(p.ms(1.0), 100.0);
        assert_eq!(p.max_ms(), 100.0);
        assert_eq!(p.over(Duration::from_millis(90)), 10);
    }

    #[test]
    fn percentiles_of_nothing_are_zero() {
        let p = Percentiles::new(Vec::new());
        assert_eq!((p.ms(0.5), p.max_ms(), p.mean_ms()), (0.0, 0.0, 0.0));
    }

    #[test]
    fn milliseconds_keep_microseconds() {
        assert_eq!(ms(Duration::from_nanos(1_234_567)), 1.234);
    }
}
