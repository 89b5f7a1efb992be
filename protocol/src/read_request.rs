use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Upper bound on the size of an encoded request; a ticket is not a place for payloads.
const MAX_ENCODED_LEN: usize = 64 * 1024;

/// What a reader wants from one dataset: projection, half-open time range `[from, to)`,
/// an SQL boolean filter and a row limit. Everything but the dataset is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Why the data is read, where a usage policy asks (e.g. `urban planning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Set by a member relaying the read for someone who is not its staff: the origin then
    /// decides as for an anonymous caller, not for the member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub for_public: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadRequestError {
    #[error("request is {len} bytes, more than the {MAX_ENCODED_LEN} allowed")]
    TooLarge { len: usize },
    #[error(
        "request is not valid JSON of the form {{\"dataset\": ID, \"columns\": [...], \"from\": RFC3339, \"to\": RFC3339, \"filter\": SQL, \"limit\": N}}: {source}"
    )]
    Malformed { source: serde_json::Error },
    #[error("\"dataset\" must not be empty")]
    MissingDataset,
    #[error("\"from\" ({from}) must be before \"to\" ({to})")]
    EmptyRange { from: DateTime<Utc>, to: DateTime<Utc> },
}

impl ReadRequest {
    /// A request for a whole dataset.
    pub fn whole(dataset: impl Into<String>) -> Self {
        Self { dataset: dataset.into(), ..Self::default() }
    }

    /// Whether this asks for the whole dataset, with no projection, range, filter or limit.
    pub fn is_whole(&self) -> bool {
        Self { purpose: None, for_public: false, ..self.clone() } == Self::whole(self.dataset.clone())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ReadRequestError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ReadRequestError::TooLarge { len: bytes.len() });
        }
        let request: Self = serde_json::from_slice(bytes).map_err(|source| ReadRequestError::Malformed { source })?;
        request.validate()?;
        Ok(request)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings, numbers and timestamps cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), ReadRequestError> {
        if self.dataset.trim().is_empty() {
            return Err(ReadRequestError::MissingDataset);
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(ReadRequestError::EmptyRange { from, to });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let request = ReadRequest {
            dataset: "pegel".into(),
            columns: Some(vec!["time".into(), "value".into()]),
            from: Some("2026-01-01T00:00:00Z".parse().expect("time")),
            to: Some("2026-02-01T00:00:00+01:00".parse().expect("time")),
            filter: Some("value > 100".into()),
            limit: Some(10),
            purpose: Some("urban planning".into()),
            for_public: true,
        };
        assert_eq!(ReadRequest::decode(&request.encode()).expect("decode"), request);
    }

    #[test]
    fn rejects_unknown_fields_and_empty_ranges() {
        let unknown = ReadRequest::decode(br#"{"dataset":"a","colums":["x"]}"#);
        assert!(matches!(unknown, Err(ReadRequestError::Malformed { .. })));
        let empty =
            ReadRequest::decode(br#"{"dataset":"a","from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}"#);
        assert!(matches!(empty, Err(ReadRequestError::EmptyRange { .. })));
        assert!(matches!(ReadRequest::decode(br#"{"dataset":" "}"#), Err(ReadRequestError::MissingDataset)));
    }
}
