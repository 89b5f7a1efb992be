use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the node learns about a dataset from its rows, refreshed as rows arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derived {
    pub rows: u64,
    /// Earliest and latest value of the time column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<DateTime<Utc>>,
    /// When rows were last added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_modified: Option<DateTime<Utc>>,
}
