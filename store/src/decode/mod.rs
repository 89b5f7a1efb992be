//! Source formats a client may send rows in, each decoded into one checked batch.

mod csv;
mod header;
mod json;
mod xlsx;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::StoreError;

/// A body format understood by the ingest endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    NdJson,
    Csv,
    Xlsx,
}

impl Format {
    /// From a `Content-Type` header value (parameters such as `charset` are ignored).
    pub fn from_media_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "application/json" => Self::Json,
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Self::NdJson,
            "text/csv" => Self::Csv,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Self::Xlsx,
            _ => return None,
        })
    }

    /// From an uploaded file's name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match extension.as_str() {
            "csv" => Self::Csv,
            "xlsx" => Self::Xlsx,
            "json" => Self::Json,
            "ndjson" | "jsonl" => Self::NdJson,
            _ => return None,
        })
    }

    pub const ACCEPTED_MEDIA_TYPES: &'static str = "application/json, application/x-ndjson, text/csv";
}

/// Decodes a whole body; all rows or none.
pub fn decode(format: Format, schema: SchemaRef, body: &[u8]) -> Result<RecordBatch, StoreError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(StoreError::Empty);
    }
    match format {
        Format::Json => json::array(schema, body),
        Format::NdJson => json::lines(schema, body),
        Format::Csv => csv::rows(schema, body),
        Format::Xlsx => xlsx::first_sheet(schema, body),
    }
}
