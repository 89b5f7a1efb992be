use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::column::{Column, Value};
use super::{Cell, MAX_REPORTED_ERRORS, RowError};
use crate::StoreError;

/// Builds one all-or-nothing batch from rows of cells in schema order.
///
/// Every row is checked even after the first error, so that one rejected upload
/// names every row that needs fixing (up to [`MAX_REPORTED_ERRORS`]).
pub struct RowsBuilder {
    schema: SchemaRef,
    columns: Vec<Column>,
    by_name: HashMap<String, usize>,
    rows: usize,
    rejected: usize,
    errors: Vec<RowError>,
    /// Whether the row being built was already flagged by the source decoder.
    flagged: bool,
}

impl RowsBuilder {
    pub fn new(schema: SchemaRef) -> Result<Self, StoreError> {
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                Column::for_type(field.data_type()).ok_or_else(|| StoreError::Corrupt {
                    reason: format!("column `{}` has unsupported type {}", field.name(), field.data_type()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let by_name = schema.fields().iter().enumerate().map(|(i, f)| (f.name().clone(), i)).collect();
        Ok(Self { schema, columns, by_name, rows: 0, rejected: 0, errors: Vec::new(), flagged: false })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The schema's column names, for error messages.
    pub fn column_list(&self) -> String {
        super::column_list(&self.schema)
    }

    /// Rows pushed so far, rejected or not.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Records a problem the source decoder found with the row about to be pushed.
    pub fn flag(&mut self, line: Option<usize>, column: Option<&str>, reason: impl Into<String>) {
        self.record(RowError { row: self.rows + 1, line, column: column.map(str::to_owned), reason: reason.into() });
        self.flagged = true;
    }

    /// Counts a row the source decoder could not read at all (bad JSON line, wrong field count).
    pub fn reject_row(&mut self, line: Option<usize>, column: Option<&str>, reason: impl Into<String>) {
        self.rows += 1;
        self.rejected += 1;
        self.record(RowError { row: self.rows, line, column: column.map(str::to_owned), reason: reason.into() });
    }

    /// Checks and adds one row; `cells[i]` belongs to schema column `i`.
    pub fn push_row(&mut self, line: Option<usize>, cells: &[Cell<'_>]) {
        let row = self.rows + 1;
        let mut row_ok = !std::mem::take(&mut self.flagged);
        let mut values = Vec::with_capacity(cells.len());
        let mut errors = Vec::new();
        for ((column, field), cell) in self.columns.iter().zip(self.schema.fields()).zip(cells) {
            let reason = match column.check(cell) {
                Ok(Value::Null) if !field.is_nullable() => "missing value for a required column".to_owned(),
                Ok(value) => {
                    values.push(value);
                    continue;
                }
                Err(reason) => reason,
            };
            row_ok = false;
            errors.push(RowError { row, line, column: Some(field.name().clone()), reason });
        }
        for error in errors {
            self.record(error);
        }
        self.rows = row;
        if !row_ok {
            self.rejected += 1;
        } else if self.rejected == 0 {
            // Once a row is rejected the batch is lost anyway; later rows are only checked.
            for (column, value) in self.columns.iter_mut().zip(values) {
                column.append(value);
            }
        }
    }

    /// The batch, or every reason it was rejected.
    pub fn finish(mut self) -> Result<RecordBatch, StoreError> {
        if self.rows == 0 && self.errors.is_empty() {
            return Err(StoreError::Empty);
        }
        if self.rejected > 0 || !self.errors.is_empty() {
            return Err(StoreError::InvalidRows { errors: self.errors, rejected: self.rejected, total: self.rows });
        }
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        Ok(RecordBatch::try_new(self.schema, arrays)?)
    }

    fn record(&mut self, error: RowError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn builder() -> RowsBuilder {
        RowsBuilder::new(Arc::new(Schema::new(vec![
            Field::new("station", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ])))
        .expect("builder")
    }

    #[test]
    fn builds_a_batch_from_good_rows() {
        let mut rows = builder();
        rows.push_row(None, &[Cell::Text("a"), Cell::Float(1.5)]);
        rows.push_row(None, &[Cell::Text("b"), Cell::Null]);
        let batch = rows.finish().expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(1).null_count(), 1);
    }

    #[test]
    fn rejects_the_whole_batch_and_names_every_bad_row() {
        let mut rows = builder();
        rows.push_row(Some(2), &[Cell::Text("a"), Cell::Text("x")]);
        rows.push_row(Some(3), &[Cell::Text("b"), Cell::Float(2.0)]);
        rows.push_row(Some(4), &[Cell::Null, Cell::Float(2.0)]);
        let Err(StoreError::InvalidRows { errors, rejected, total }) = rows.finish() else {
            panic!("expected rejection");
        };
        assert_eq!((rejected, total), (2, 3));
        assert_eq!(errors[0].row, 1);
        assert_eq!(errors[0].column.as_deref(), Some("value"));
        assert_eq!(errors[1].row, 3);
        assert_eq!(errors[1].line, Some(4));
        assert!(errors[1].reason.contains("required"), "{}", errors[1].reason);
    }

    #[test]
    fn no_rows_is_its_own_error() {
        assert!(matches!(builder().finish(), Err(StoreError::Empty)));
    }
}
