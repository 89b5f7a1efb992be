//! Keeps the access log within its retention period.

use std::time::Duration;

use urbanmesh_policy::AuditLog;

const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Removes access-log records older than `days`, now and every hour.
pub(crate) async fn expire_audit(log: AuditLog, days: u32) {
    let mut every = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        every.tick().await;
        let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
        let log = log.clone();
        match tokio::task::spawn_blocking(move || log.expire(before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, days, "expired access-log records"),
            Ok(Err(error)) => tracing::warn!(%error, "access-log retention failed"),
            Err(error) => tracing::warn!(%error, "access-log retention task failed"),
        }
    }
}
