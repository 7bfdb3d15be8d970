//! Catch-up of a replica that missed 10 000 deltas (issue 4's figures), in
//! the deterministic simulator: round trips until it holds them all, and
//! the stream bytes exchanged with it against the missing deltas' own
//! encoded size (the baseline, measured in the same run). Prints one JSON
//! line per figure.

use std::time::Instant;

use weft_sync::sim::prepare_catch_up;

fn figure(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value}, \"unit\": \"{unit}\"}}");
}

fn main() {
    const MISSING: usize = 10_000;
    let run = prepare_catch_up(MISSING, 1);
    // Wall time of the catch-up alone: decode, verify and apply 10 000
    // deltas on the lagging replica, plus the serving side's work.
    let started = Instant::now();
    let catch_up = run.run();
    let wall_s = started.elapsed().as_secs_f64();
    figure("catch_up_missing_deltas", catch_up.missing as f64, "deltas");
    figure("catch_up_missing_bytes", catch_up.missing_bytes as f64, "bytes");
    figure("catch_up_wire_bytes", catch_up.wire_bytes as f64, "bytes");
    figure("catch_up_wire_messages", catch_up.wire_messages as f64, "messages");
    figure("catch_up_wire_to_delta_bytes_ratio", catch_up.ratio(), "ratio");
    figure("catch_up_round_trips", catch_up.round_trips, "round trips");
    figure("catch_up_wall_time_in_simulation", wall_s, "s");
}
