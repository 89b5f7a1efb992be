//! From a message's JSON to rows of the dataset: each column takes the value at its path,
//! checked by the same rules as every other write (`store::rows`).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;
use urbanmesh_catalog::Dataset;
use urbanmesh_store::decode::json_cell;
use urbanmesh_store::rows::{Cell, RowsBuilder};

use crate::LiveError;
use crate::path::JsonPath;
use crate::spec::{ConnectorMapping, Defaults, invalid, path};

/// A mapping checked against a dataset's schema.
#[derive(Debug, Clone)]
pub(crate) struct Mapper {
    schema: SchemaRef,
    /// The path of each schema column, in schema order.
    paths: Vec<JsonPath>,
    /// Schema positions of the key columns; empty: no row is a duplicate.
    pub(crate) key: Arc<[usize]>,
    /// The dataset's time column, by position.
    pub(crate) time: Option<usize>,
}

impl Mapper {
    pub(crate) fn new(dataset: &Dataset, mapping: &ConnectorMapping, defaults: Defaults) -> Result<Self, LiveError> {
        let schema = dataset.arrow_schema();
        let spec = &dataset.spec;
        let columns = urbanmesh_store::rows::column_list(&schema);
        if let Some(unknown) = mapping.columns.keys().find(|c| schema.index_of(c).is_err()) {
            return Err(invalid(
                format!("mapping.columns.{unknown}"),
                format!("names no column of dataset `{}`; it has: {columns}", spec.id),
            ));
        }
        let mut paths = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name().as_str();
            paths.push(match mapping.columns.get(name) {
                Some(text) => path(&format!("mapping.columns.{name}"), text)?,
                None => default_path(defaults, name, spec.time_column.as_deref(), spec.series_key.as_deref())
                    .parse()
                    .map_err(|_| {
                    invalid(format!("mapping.columns.{name}"), "needs a path: the column's name is none")
                })?,
            });
        }
        let key_names: Vec<&str> = if mapping.key.is_empty() {
            spec.series_key.iter().chain(&spec.time_column).map(String::as_str).collect()
        } else {
            mapping.key.iter().map(String::as_str).collect()
        };
        let mut key = Vec::with_capacity(key_names.len());
        for name in key_names {
            let index = schema.index_of(name).map_err(|_| {
                invalid("mapping.key", format!("`{name}` is no column of dataset `{}`; it has: {columns}", spec.id))
            })?;
            if key.contains(&index) {
                return Err(invalid("mapping.key", format!("names `{name}` twice")));
            }
            key.push(index);
        }
        let time = spec.time_column.as_deref().and_then(|t| schema.index_of(t).ok());
        Ok(Self { schema, paths, key: key.into(), time })
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The rows of `rows` (each a JSON object), all or none, with the reason for none.
    pub(crate) fn batch(&self, rows: &[&Value]) -> Result<RecordBatch, String> {
        let mut builder = RowsBuilder::new(Arc::clone(&self.schema)).map_err(|e| e.to_string())?;
        for row in rows {
            let mut cells = Vec::with_capacity(self.paths.len());
            for (path, field) in self.paths.iter().zip(self.schema.fields()) {
                cells.push(match path.find(row) {
                    Some(value) => json_cell(value),
                    None if field.is_nullable() => Cell::Null,
                    None => {
                        builder.flag(None, Some(field.name()), format!("path `{path}` is not in the message"));
                        Cell::Null
                    }
                });
            }
            builder.push_row(None, &cells);
        }
        builder.finish().map_err(|e| e.to_string())
    }
}

fn default_path<'a>(
    defaults: Defaults,
    column: &'a str,
    time: Option<&str>,
    series: Option<&str>,
) -> std::borrow::Cow<'a, str> {
    let is_time = time == Some(column);
    let is_series = series == Some(column);
    match defaults {
        Defaults::Json => column.into(),
        Defaults::Ttn if is_time => "received_at".into(),
        Defaults::Ttn if is_series => "end_device_ids.device_id".into(),
        Defaults::Ttn => format!("uplink_message.decoded_payload.{column}").into(),
        Defaults::Pegelonline if is_time => "timestamp".into(),
        Defaults::Pegelonline if is_series => "station.shortname".into(),
        Defaults::Pegelonline => column.into(),
    }
}
