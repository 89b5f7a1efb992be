use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::header;
use crate::StoreError;
use crate::rows::{Cell, RowsBuilder};

/// CSV with a header row. The delimiter is `,`, or `;` or tab when the header uses
/// those instead (as German spreadsheet exports do); an empty field is null.
pub(super) fn rows(schema: SchemaRef, body: &[u8]) -> Result<RecordBatch, StoreError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new().delimiter(sniff_delimiter(body)).flexible(true).from_reader(body);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| StoreError::Malformed { reason: format!("header: {e}") })?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut builder = RowsBuilder::new(schema)?;
    let positions = header::positions(&builder, &names)?;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line() as usize);
                if record.len() != names.len() {
                    let reason = format!("has {} fields, but the header has {}", record.len(), names.len());
                    builder.reject_row(line, None, reason);
                    continue;
                }
                let cells: Vec<Cell<'_>> = positions
                    .iter()
                    .map(|position| match position.and_then(|p| record.get(p)) {
                        Some(text) if !text.is_empty() => Cell::Text(text),
                        _ => Cell::Null,
                    })
                    .collect();
                builder.push_row(line, &cells);
            }
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                builder.reject_row(line, None, csv_reason(&e));
                if fatal {
                    break;
                }
            }
        }
    }
    builder.finish()
}

fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8; save the file as UTF-8", err.field() + 1)
        }
        _ => error.to_string(),
    }
}

fn sniff_delimiter(body: &[u8]) -> u8 {
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| first_line.iter().filter(|b| **b == d).count();
    [b';', b'\t'].into_iter().find(|d| count(*d) > count(b',')).unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("station", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ]))
    }

    #[test]
    fn reads_comma_and_semicolon_files() {
        assert_eq!(rows(schema(), b"station,value\na,1.5\nb,\n").expect("csv").num_rows(), 2);
        assert_eq!(rows(schema(), b"\xEF\xBB\xBFvalue;station\n12,5;a\n").expect("csv").num_rows(), 1);
    }

    #[test]
    fn reports_lines_of_bad_rows() {
        let Err(StoreError::InvalidRows { errors, .. }) = rows(schema(), b"station,value\na,1\nb,x\nc\n") else {
            panic!("rejected")
        };
        assert_eq!((errors[0].row, errors[0].line), (2, Some(3)));
        assert_eq!((errors[1].row, errors[1].line), (3, Some(4)));
        let Err(StoreError::InvalidRows { errors, .. }) = rows(schema(), b"station,value\n\xFF,1\n") else {
            panic!("rejected")
        };
        assert!(errors[0].reason.contains("UTF-8"));
        assert!(matches!(rows(schema(), b"station,other\na,1\n"), Err(StoreError::Malformed { .. })));
    }
}
