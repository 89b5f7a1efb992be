use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::header;
use crate::StoreError;
use crate::rows::{Cell, RowsBuilder};

/// The first sheet of an Excel workbook, header in its first row. Spreadsheet dates
/// carry no time zone and are taken as UTC.
pub(super) fn first_sheet(schema: SchemaRef, body: &[u8]) -> Result<RecordBatch, StoreError> {
    let unreadable =
        |e: &dyn std::fmt::Display| StoreError::Malformed { reason: format!("not a readable .xlsx workbook: {e}") };
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(body)).map_err(|e| unreadable(&e))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| StoreError::Malformed { reason: "the workbook has no sheets".into() })?
        .map_err(|e| unreadable(&e))?;
    let first_sheet_row = range.start().map_or(0, |(row, _)| row as usize);
    let mut sheet_rows = range.rows();
    let names: Vec<String> = sheet_rows.next().ok_or(StoreError::Empty)?.iter().map(ToString::to_string).collect();
    let mut builder = RowsBuilder::new(schema)?;
    let positions = header::positions(&builder, &names)?;
    let types: Vec<DataType> = builder.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    for (index, row) in sheet_rows.enumerate() {
        if row.iter().all(|cell| matches!(cell, Data::Empty)) {
            continue;
        }
        // Sheet row number as the spreadsheet shows it (1-based, header included).
        let line = Some(first_sheet_row + index + 2);
        let as_text: Vec<Option<String>> = positions
            .iter()
            .zip(&types)
            .map(|(position, data_type)| {
                let data = position.and_then(|p| row.get(p))?;
                (*data_type == DataType::Utf8).then(|| number_as_text(data)).flatten()
            })
            .collect();
        let cells: Vec<Cell<'_>> = positions
            .iter()
            .zip(&as_text)
            .map(|(position, text)| match (text, position.and_then(|p| row.get(p))) {
                (Some(text), _) => Cell::Text(text),
                (None, Some(data)) => cell(data),
                (None, None) => Cell::Null,
            })
            .collect();
        builder.push_row(line, &cells);
    }
    builder.finish()
}

/// Numbers typed into a text column (station numbers, postcodes) are kept as written.
fn number_as_text(data: &Data) -> Option<String> {
    match data {
        Data::Int(i) => Some(i.to_string()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        Data::Float(f) => Some(f.to_string()),
        Data::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn cell(data: &Data) -> Cell<'_> {
    match data {
        Data::Empty => Cell::Null,
        Data::Int(i) => Cell::Int(*i),
        Data::Float(f) => Cell::Float(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::String(s) if s.trim().is_empty() => Cell::Null,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(naive) => Cell::DateTime(naive),
            None => Cell::Unsupported(format!("the spreadsheet date {dt}")),
        },
        Data::Error(e) => Cell::Unsupported(format!("the spreadsheet error {e}")),
    }
}
