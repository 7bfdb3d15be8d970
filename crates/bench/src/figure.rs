//! One benchmark figure as a JSON line.

use std::time::Duration;

/// Print `{"name": name, "value": value, "unit": unit}` on one line.
pub fn emit(name: &str, value: f64, unit: &str) {
    // Names and units are our own ASCII literals, so no escaping is needed.
    println!("{{\"name\": \"{name}\", \"value\": {value:.3}, \"unit\": \"{unit}\"}}");
}

/// Operations per second for `count` operations taking `elapsed`.
pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}
