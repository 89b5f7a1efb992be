//! Streaming result encoders, run on a blocking thread (see [`crate::body`]).

use std::io;

use axum::body::Bytes;
use datafusion::arrow::csv;
use datafusion::arrow::json;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use futures::{Stream, StreamExt};
use tokio::runtime::Handle;
use tokio::sync::OwnedSemaphorePermit;
use urbanmesh_store::BatchStream;

use crate::body::{self, Chunks};
use crate::problem::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Json,
    NdJson,
    Csv,
    Parquet,
}

impl OutputFormat {
    pub(crate) fn parse(name: Option<&str>) -> Result<Self, Problem> {
        Ok(match name.unwrap_or("json") {
            "json" => Self::Json,
            "ndjson" => Self::NdJson,
            "csv" => Self::Csv,
            "parquet" => Self::Parquet,
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown format `{other}`; use json, ndjson, csv or parquet"
                )));
            }
        })
    }

    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::NdJson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub(crate) fn download_extension(self) -> Option<&'static str> {
        match self {
            Self::Csv => Some("csv"),
            Self::Parquet => Some("parquet"),
            Self::Json | Self::NdJson => None,
        }
    }
}

/// The encoded body. An error after the first byte aborts the body, so a client never
/// mistakes a truncated result for a complete one.
pub(crate) fn stream(
    format: OutputFormat,
    scan: BatchStream,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = io::Result<Bytes>> {
    let runtime = Handle::current();
    body::written(permit, move |body| encode(format, scan, body, &runtime))
}

fn encode(format: OutputFormat, scan: BatchStream, body: &mut Chunks, runtime: &Handle) -> io::Result<()> {
    let mut batches = scan.batches;
    let mut next = || -> io::Result<Option<RecordBatch>> {
        runtime.block_on(batches.next()).transpose().map_err(io::Error::other)
    };
    match format {
        OutputFormat::Json => write_json::<json::writer::JsonArray>(body, next),
        OutputFormat::NdJson => write_json::<json::writer::LineDelimited>(body, next),
        OutputFormat::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(true).build(body);
            let mut wrote_any = false;
            while let Some(batch) = next()? {
                writer.write(&batch).map_err(io::Error::other)?;
                wrote_any = true;
            }
            if !wrote_any {
                // An empty result still names its columns.
                writer.write(&RecordBatch::new_empty(scan.schema)).map_err(io::Error::other)?;
            }
            Ok(())
        }
        OutputFormat::Parquet => {
            let mut writer = ArrowWriter::try_new(body, scan.schema, None).map_err(io::Error::other)?;
            while let Some(batch) = next()? {
                writer.write(&batch).map_err(io::Error::other)?;
            }
            writer.close().map(drop).map_err(io::Error::other)
        }
    }
}

fn write_json<F: json::writer::JsonFormat>(
    body: &mut Chunks,
    mut next: impl FnMut() -> io::Result<Option<RecordBatch>>,
) -> io::Result<()> {
    let mut writer = json::WriterBuilder::new().with_explicit_nulls(true).build::<_, F>(body);
    while let Some(batch) = next()? {
        writer.write(&batch).map_err(io::Error::other)?;
    }
    writer.finish().map_err(io::Error::other)
}

/// The rows of `batch` as JSON objects, each column's value as the JSON download writes it.
pub(crate) fn json_objects(batch: &RecordBatch) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    let mut buffer = Vec::new();
    let mut writer =
        json::WriterBuilder::new().with_explicit_nulls(true).build::<_, json::writer::JsonArray>(&mut buffer);
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    if buffer.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buffer).map_err(|e| e.to_string())
}
