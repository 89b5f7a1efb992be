use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type RequestLabels = Vec<(&'static str, String)>;

/// Latency of HTTP requests by method, route template and status.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "urbanmesh_http_request_duration_seconds",
            "HTTP requests by method, route and status, until the response head was ready",
            requests.clone(),
        );
        Self { requests }
    }
}

pub(crate) async fn observe(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let labels = vec![("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics.requests.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}
