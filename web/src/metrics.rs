//! HTTP metrics. Every label takes values from a fixed set, whatever a client sends: the
//! method is one of the standard ones or `other`, the route is the template the router
//! matched (never the raw path) or `unmatched`, and the status is its class.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type RequestLabels = Vec<(&'static str, String)>;

/// Latency of HTTP requests by method, route template and status class.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "urbanmesh_http_request_duration_seconds",
            "HTTP requests by method, route template and status class, until the response head was ready",
            requests.clone(),
        );
        Self { requests }
    }
}

pub(crate) async fn observe(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let labels =
        vec![("method", method.to_owned()), ("route", route), ("status", status_class(response.status()).to_owned())];
    metrics.requests.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: any method a client invents counts as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_take_values_from_fixed_sets() {
        assert_eq!(method_label(&Method::GET), "GET");
        for invented in ["FOO", "PROPFIND", "get", "X-Ab12"] {
            assert_eq!(method_label(&Method::from_bytes(invented.as_bytes()).expect("method")), "other", "{invented}");
        }
        for (code, class) in [(101, "1xx"), (204, "2xx"), (308, "3xx"), (404, "4xx"), (503, "5xx"), (999, "5xx")] {
            assert_eq!(status_class(StatusCode::from_u16(code).expect("status")), class);
        }
    }
}
