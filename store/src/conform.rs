//! Fitting a batch that arrived as Arrow (Flight `DoPut`) to a dataset's schema.

use datafusion::arrow::array::{ArrayRef, new_null_array};
use datafusion::arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::StoreError;
use crate::rows::{MAX_REPORTED_ERRORS, RowError, column_list};

/// Matches columns by name, widens compatible types (int32 → int64, any timestamp unit or
/// zone → the dataset's, large or dictionary strings → utf8) and checks required columns.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, StoreError> {
    let incoming = batch.schema();
    if let Some(extra) = incoming.fields().iter().find(|f| schema.field_with_name(f.name()).is_err()) {
        return Err(StoreError::Malformed {
            reason: format!(
                "column `{}` is not in the dataset; the dataset has: {}",
                extra.name(),
                column_list(schema)
            ),
        });
    }
    if batch.num_rows() == 0 {
        return Err(StoreError::Empty);
    }
    let mut errors = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match incoming.index_of(field.name()) {
            Ok(index) => fit(batch.column(index), field.name(), field.data_type())?,
            Err(_) if field.is_nullable() => new_null_array(field.data_type(), batch.num_rows()),
            Err(_) => {
                return Err(StoreError::Malformed { reason: format!("required column `{}` is missing", field.name()) });
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            let nulls = column.logical_nulls();
            let first = nulls.iter().flat_map(|n| n.iter().enumerate()).find(|(_, valid)| !valid);
            let row = first.map_or(1, |(index, _)| index + 1);
            errors.push(RowError {
                row,
                line: None,
                column: Some(field.name().clone()),
                reason: format!("missing value for a required column ({} nulls in this batch)", column.null_count()),
            });
        }
        columns.push(column);
    }
    if !errors.is_empty() {
        let rejected = errors.len();
        errors.truncate(MAX_REPORTED_ERRORS);
        return Err(StoreError::InvalidRows { errors, rejected, total: batch.num_rows() });
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn fit(column: &ArrayRef, name: &str, target: &DataType) -> Result<ArrayRef, StoreError> {
    let source = column.data_type();
    if source == target {
        return Ok(column.clone());
    }
    let lossy = source.is_floating() && target.is_integer();
    if lossy || !can_cast_types(source, target) {
        return Err(StoreError::Malformed {
            reason: format!("column `{name}` is {source}, but the dataset stores {target}"),
        });
    }
    let options = CastOptions { safe: false, ..CastOptions::default() };
    cast_with_options(column, target, &options).map_err(|e| StoreError::Malformed {
        reason: format!("column `{name}`: cannot convert {source} to {target}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int32Array, StringArray, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new("value", DataType::Float64, false),
            Field::new("quality", DataType::Int64, true),
        ]))
    }

    #[test]
    fn widens_types_and_fills_optional_columns() {
        let batch = RecordBatch::try_from_iter([
            ("value", Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef),
            ("time", Arc::new(TimestampNanosecondArray::from(vec![1_000_000_000, 2_000_000_000])) as ArrayRef),
        ])
        .expect("batch");
        let fitted = conform(&batch, &schema()).expect("conforms");
        assert_eq!(fitted.schema(), schema());
        assert_eq!(fitted.column(2).null_count(), 2);
    }

    #[test]
    fn rejects_lossy_or_foreign_columns() {
        let batch = RecordBatch::try_from_iter([
            ("time", Arc::new(TimestampNanosecondArray::from(vec![1])) as ArrayRef),
            ("value", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
        ])
        .expect("batch");
        assert!(matches!(conform(&batch, &schema()), Err(StoreError::Malformed { .. })));
        let batch = RecordBatch::try_from_iter([
            ("time", Arc::new(TimestampNanosecondArray::from(vec![1])) as ArrayRef),
            ("value", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
            ("quality", Arc::new(Float64Array::from(vec![1.5])) as ArrayRef),
        ])
        .expect("batch");
        assert!(conform(&batch, &schema()).expect_err("lossy").to_string().contains("quality"));
        let batch = RecordBatch::try_from_iter([
            ("time", Arc::new(TimestampNanosecondArray::from(vec![Some(1), None])) as ArrayRef),
            ("value", Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef),
            ("quality", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ])
        .expect("batch");
        let Err(StoreError::InvalidRows { errors, .. }) = conform(&batch, &schema()) else { panic!("nulls") };
        assert_eq!((errors[0].row, errors[0].column.as_deref()), (2, Some("time")));
    }
}
