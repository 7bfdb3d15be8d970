//! `/metrics`: the node's counters and the API's own request metrics in the
//! Prometheus text format (version 0.0.4), encoded here.
//!
//! API requests are counted by method, route template (`/admin/contexts/{id}`,
//! never the concrete path, so the series stay few) and status, and timed
//! in one latency histogram per route template. Unmatched paths share the
//! route label `unmatched`. The series are bounded by [`API_SERIES_MAX`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use weft_node::NodeStats;

use crate::state::ApiState;

/// Distinct (method, route, status) counters and route histograms kept;
/// anything new beyond is folded into the route label `overflow`.
pub const API_SERIES_MAX: usize = 512;
/// The latency histogram's upper bounds, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";
const OVERFLOW: &str = "overflow";

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative; summed when encoded).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

#[derive(Default)]
struct Series {
    requests: BTreeMap<(&'static str, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// The API's request metrics.
#[derive(Default)]
pub(crate) struct ApiMetrics {
    series: Mutex<Series>,
}

impl ApiMetrics {
    fn observe(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let mut series = self.series.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let series = &mut *series;
        let mut key = (method, route.to_owned(), status);
        if !series.requests.contains_key(&key) && series.requests.len() >= API_SERIES_MAX {
            key = (method, OVERFLOW.to_owned(), status);
        }
        *series.requests.entry(key).or_default() += 1;
        let route =
            if series.latency.contains_key(route) || series.latency.len() < API_SERIES_MAX { route } else { OVERFLOW };
        let histogram = series.latency.entry(route.to_owned()).or_default();
        let secs = elapsed.as_secs_f64();
        if let Some(slot) = LATENCY_BUCKETS.iter().position(|bound| secs <= *bound) {
            histogram.buckets[slot] += 1;
        }
        histogram.count += 1;
        histogram.sum_secs += secs;
    }

    fn encode(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        header(out, "weft_api_requests_total", "counter", "API requests by method, route template and status.");
        for ((method, route, status), count) in &series.requests {
            let _ = writeln!(
                out,
                "weft_api_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        let name = "weft_api_request_duration_seconds";
        header(out, name, "histogram", "API request latency (to the response head) by route template.");
        for (route, histogram) in &series.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", histogram.sum_secs);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", histogram.count);
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn labelled(out: &mut String, name: &str, help: &str, label: &str, values: [(&str, u64); 2]) {
    header(out, name, "counter", help);
    for (label_value, value) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{label_value}\"}} {value}");
    }
}

/// The node's counters and gauges.
fn encode_node(out: &mut String, s: &NodeStats) {
    sample(out, "weft_node_up", "gauge", "1 while the node answers.", 1);
    sample(out, "weft_calls_total", "counter", "Client calls served.", s.calls);
    sample(out, "weft_writes_committed_total", "counter", "Local writes committed.", s.writes_committed);
    sample(out, "weft_call_groups_total", "counter", "Groups of client calls sharing one fsync.", s.call_groups);
    sample(out, "weft_deltas_applied_total", "counter", "Deltas applied, local and remote.", s.deltas_applied);
    sample(out, "weft_deltas_pending", "gauge", "Deltas waiting for parents, all contexts.", s.deltas_pending);
    sample(out, "weft_deltas_rejected_total", "counter", "Deltas refused by verification.", s.deltas_rejected);
    let name = "weft_deltas_rejected_by_reason_total";
    header(out, name, "counter", "Deltas refused by verification, by reason.");
    for (reason, value) in weft_node::REJECTION_REASONS.iter().zip(s.deltas_rejected_by) {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {value}");
    }
    sample(out, "weft_handler_runs_total", "counter", "Event handler runs that succeeded.", s.handler_runs);
    sample(out, "weft_handler_failures_total", "counter", "Event handler runs that failed.", s.handler_failures);
    sample(out, "weft_handler_jobs_owed", "gauge", "Handler jobs still owed.", s.handler_jobs_owed);
    sample(
        out,
        "weft_handler_jobs_dead_total",
        "counter",
        "Handler jobs moved to the dead letters after repeated failures.",
        s.handler_jobs_dead,
    );
    let sessions = s.sync_sessions_opened.saturating_add(s.sync_sessions_accepted);
    sample(out, "weft_sync_sessions_total", "counter", "Sync sessions opened or accepted.", sessions);
    let bytes = [("sent", s.sync_bytes_sent), ("received", s.sync_bytes_received)];
    labelled(out, "weft_sync_bytes_total", "Bytes of sync frames.", "direction", bytes);
    let gossip = [("sent", s.gossip_published), ("received", s.gossip_received)];
    labelled(out, "weft_gossip_messages_total", "Gossip messages.", "direction", gossip);
    sample(out, "weft_penalties_total", "counter", "Times a peer was penalized.", s.penalties);
    sample(out, "weft_divergences_total", "counter", "Divergences detected.", s.divergences);
    let dropped = [("gossip", s.net_gossip_dropped), ("stream", s.net_streams_dropped)];
    let help = "Gossip messages and inbound streams the network layer dropped while the node fell behind.";
    labelled(out, "weft_net_dropped_total", help, "what", dropped);
    let help = "Subscription changes folded into a peer's topic snapshot while the node fell behind.";
    sample(out, "weft_net_subscriptions_coalesced_total", "counter", help, s.net_subscriptions_coalesced);
    let help = "Write transactions committed to the node's database.";
    sample(out, "weft_store_transactions_total", "counter", help, s.store_transactions);
    sample(out, "weft_peers", "gauge", "Connected peers.", s.peers);
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    let mut out = String::new();
    match state.node().stats().await {
        Ok(stats) => encode_node(&mut out, &stats),
        // The API's own metrics stay useful while the node is down.
        Err(_) => sample(&mut out, "weft_node_up", "gauge", "1 while the node answers.", 0),
    }
    state.metrics().encode(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The middleware: times every request, the fallbacks and 401s included.
pub(crate) async fn record(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or(UNMATCHED);
    state.metrics().observe(method, route, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_counts_everything_in_inf() {
        let metrics = ApiMetrics::default();
        metrics.observe("GET", "/health", 200, Duration::from_micros(500));
        metrics.observe("GET", "/health", 200, Duration::from_millis(30));
        metrics.observe("GET", "/health", 200, Duration::from_secs(60));
        let mut out = String::new();
        metrics.encode(&mut out);
        assert!(out.contains("weft_api_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 3"), "{out}");
        assert!(out.contains("weft_api_request_duration_seconds_bucket{route=\"/health\",le=\"0.001\"} 1"));
        assert!(out.contains("weft_api_request_duration_seconds_bucket{route=\"/health\",le=\"0.05\"} 2"));
        assert!(out.contains("weft_api_request_duration_seconds_bucket{route=\"/health\",le=\"10\"} 2"));
        assert!(out.contains("weft_api_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 3"));
        assert!(out.contains("weft_api_request_duration_seconds_count{route=\"/health\"} 3"));
    }

    #[test]
    fn series_beyond_the_bound_fold_into_overflow() {
        let metrics = ApiMetrics::default();
        for i in 0..API_SERIES_MAX + 10 {
            metrics.observe("GET", &format!("/r{i}"), 200, Duration::ZERO);
        }
        let series = metrics.series.lock().unwrap();
        assert!(series.requests.len() <= API_SERIES_MAX + 1);
        assert!(series.latency.len() <= API_SERIES_MAX + 1);
        assert_eq!(series.requests[&("GET", OVERFLOW.to_owned(), 200)], 10);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
