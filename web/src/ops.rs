use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::AppState;
use crate::auth::Caller;
use crate::problem::Problem;

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Prometheus text. Anonymous scrapes get the series that name no dataset; staff (the
/// admin token, or a person with a staff role) get the per-dataset series as well.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, Problem> {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let mut text = String::new();
    let failed = |e: std::fmt::Error| Problem::internal(format!("encoding metrics: {e}"));
    encode_registry(&mut text, &state.registry).map_err(failed)?;
    if caller.is_staff() {
        encode_registry(&mut text, &state.staff_registry).map_err(failed)?;
    }
    encode_eof(&mut text).map_err(failed)?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text))
}
