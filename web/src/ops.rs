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

/// Ready once started, and while the store takes writes: after a failed flush it takes
/// none until restarted (decision 012), which an orchestrator should see.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    } else if state.store.writable().is_err() {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: writes stopped after a failed flush; restart the node\n")
    } else {
        (StatusCode::OK, "ready\n")
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
