use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::StoreError;
use crate::rows::{Cell, RowsBuilder};

/// A JSON array of row objects.
pub(super) fn array(schema: SchemaRef, body: &[u8]) -> Result<RecordBatch, StoreError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| StoreError::Malformed { reason: format!("body is not valid JSON: {e}") })?;
    let Value::Array(rows) = value else {
        return Err(StoreError::Malformed { reason: "expected a JSON array of row objects".into() });
    };
    let mut builder = RowsBuilder::new(schema)?;
    for row in &rows {
        match row {
            Value::Object(object) => push_object(&mut builder, None, object),
            _ => builder.reject_row(None, None, "expected a JSON object with one key per column"),
        }
    }
    builder.finish()
}

/// One JSON object per line.
pub(super) fn lines(schema: SchemaRef, body: &[u8]) -> Result<RecordBatch, StoreError> {
    let mut builder = RowsBuilder::new(schema)?;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line_number = Some(index + 1);
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(object)) => push_object(&mut builder, line_number, &object),
            Ok(_) => builder.reject_row(line_number, None, "expected a JSON object with one key per column"),
            Err(e) => builder.reject_row(line_number, None, format!("not valid JSON: {e}")),
        }
    }
    builder.finish()
}

fn push_object(builder: &mut RowsBuilder, line: Option<usize>, object: &Map<String, Value>) {
    for key in object.keys() {
        if builder.column_index(key).is_none() {
            let reason = format!("unknown column; the dataset has: {}", builder.column_list());
            builder.flag(line, Some(key), reason);
        }
    }
    let cells: Vec<Cell<'_>> =
        builder.schema().fields().iter().map(|f| object.get(f.name()).map_or(Cell::Null, cell)).collect();
    builder.push_row(line, &cells);
}

/// A JSON value as a cell of a row, for decoders of JSON-shaped sources elsewhere too
/// (connectors map message fields onto columns with it).
pub fn cell(value: &Value) -> Cell<'_> {
    match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cell::Int(i),
            (None, Some(u)) => Cell::UInt(u),
            _ => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cell::Text(s),
        Value::Array(_) => Cell::Unsupported("a JSON array".into()),
        Value::Object(_) => Cell::Unsupported("a JSON object".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new("value", DataType::Float64, false),
        ]))
    }

    #[test]
    fn reads_arrays_and_lines() {
        let body = br#"[{"time": "2026-01-01T00:00:00Z", "value": 1}, {"time": 1767225600000, "value": 2.5}]"#;
        assert_eq!(array(schema(), body).expect("array").num_rows(), 2);
        let body = b"{\"time\": 1767225600000, \"value\": 1}\n\n{\"time\": 1767225600000, \"value\": 2}\n";
        assert_eq!(lines(schema(), body).expect("lines").num_rows(), 2);
    }

    #[test]
    fn names_unknown_and_missing_columns() {
        let body = br#"[{"time": 1767225600000, "value": 1, "extra": 3}, {"time": 1767225600000}]"#;
        let Err(StoreError::InvalidRows { errors, .. }) = array(schema(), body) else { panic!("rejected") };
        assert_eq!(errors[0].column.as_deref(), Some("extra"));
        assert_eq!((errors[1].row, errors[1].column.as_deref()), (2, Some("value")));
        let body = b"{\"time\": 1767225600000, \"value\": 1}\n{\"time\": \n";
        let Err(StoreError::InvalidRows { errors, .. }) = lines(schema(), body) else { panic!("rejected") };
        assert_eq!(errors[0].line, Some(2));
    }
}
