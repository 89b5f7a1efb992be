//! Source formats a client may send rows in, each decoded into one checked batch.

mod csv;
mod header;
mod json;
mod xlsx;
mod xlsx_package;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::StoreError;
pub use json::cell as json_cell;

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

/// Bounds on what one body may make a decoder unpack and hold. A text body holds no more
/// than its own size (bounded by the HTTP body limit); an `.xlsx` file is a zip whose
/// parts may unpack to thousands of times its size, so it has bounds of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Bytes all parts of a workbook unpack to, together.
    pub xlsx_max_decompressed_bytes: u64,
    /// Entries of a workbook's shared-string table, as declared and as present.
    pub xlsx_max_shared_strings: u64,
    /// Cells of a workbook's worksheets, together.
    pub xlsx_max_cells: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            xlsx_max_decompressed_bytes: 256 * 1024 * 1024,
            xlsx_max_shared_strings: 1_000_000,
            xlsx_max_cells: 10_000_000,
        }
    }
}

/// Decodes a whole body; all rows or none.
pub fn decode(
    format: Format,
    schema: SchemaRef,
    body: &[u8],
    limits: &DecodeLimits,
) -> Result<RecordBatch, StoreError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(StoreError::Empty);
    }
    match format {
        Format::Json => json::array(schema, body),
        Format::NdJson => json::lines(schema, body),
        Format::Csv => csv::rows(schema, body),
        Format::Xlsx => {
            xlsx_package::check(body, limits)?;
            xlsx::first_sheet(schema, body)
        }
    }
}
