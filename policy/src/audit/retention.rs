//! Keeps the access log within its retention period.

use std::time::Duration;

use super::AuditLog;

const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

impl AuditLog {
    /// Removes records older than `days`, now and every hour, for as long as it runs.
    pub async fn keep_within(self, days: u32) {
        let mut every = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            every.tick().await;
            let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
            let log = self.clone();
            match tokio::task::spawn_blocking(move || log.expire(before)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(removed)) => tracing::info!(removed, days, "expired access-log records"),
                Ok(Err(error)) => tracing::warn!(%error, "access-log retention failed"),
                Err(error) => tracing::warn!(%error, "access-log retention task failed"),
            }
        }
    }
}
