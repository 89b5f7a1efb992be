use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type MethodLabels = Vec<(&'static str, &'static str)>;

#[derive(Clone)]
pub(crate) struct FlightMetrics {
    requests: Family<MethodLabels, Histogram, fn() -> Histogram>,
    pub(crate) bytes_sent: Counter,
    pub(crate) rows_sent: Counter,
}

impl FlightMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            bytes_sent: Counter::default(),
            rows_sent: Counter::default(),
        };
        registry.register(
            "urbanmesh_flight_request_duration_seconds",
            "Flight calls by method, until the response (or its last batch) was produced",
            metrics.requests.clone(),
        );
        registry.register("urbanmesh_flight_sent_bytes", "Arrow IPC bytes sent by DoGet", metrics.bytes_sent.clone());
        registry.register("urbanmesh_flight_sent_rows", "Rows sent by DoGet", metrics.rows_sent.clone());
        metrics
    }

    pub(crate) fn observe(&self, method: &'static str, started: std::time::Instant) {
        self.requests.get_or_create(&vec![("method", method)]).observe(started.elapsed().as_secs_f64());
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}
