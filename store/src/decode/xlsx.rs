use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::header;
use crate::StoreError;
use crate::rows::{Cell, RowsBuilder};

/// Widest header accepted; a dataset has at most 1024 columns.
const MAX_COLUMNS: usize = 1100;

/// The first sheet of an Excel workbook, header in its first row. Cells are read one by
/// one, never as a dense grid, so a sheet with a stray cell at XFD1048576 costs nothing.
/// Spreadsheet dates carry no time zone and are taken as UTC.
pub(super) fn first_sheet(schema: SchemaRef, body: &[u8]) -> Result<RecordBatch, StoreError> {
    let unreadable =
        |e: &dyn std::fmt::Display| StoreError::Malformed { reason: format!("not a readable .xlsx workbook: {e}") };
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(body)).map_err(|e| unreadable(&e))?;
    let sheet = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Malformed { reason: "the workbook has no sheets".into() })?;
    let mut cells = workbook.worksheet_cells_reader(&sheet).map_err(|e| unreadable(&e))?;
    let mut sheet = Sheet { builder: RowsBuilder::new(schema)?, header: None, row: None, values: Vec::new() };
    while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
        let (row, column) = cell.get_position();
        sheet.place(row as usize, column as usize, Data::from(cell.get_value().clone()))?;
    }
    sheet.end_row()?;
    sheet.builder.finish()
}

/// Rows assembled from a stream of cells in row order.
struct Sheet {
    builder: RowsBuilder,
    /// For each schema column, its sheet column; known once the header row ended.
    header: Option<Vec<Option<usize>>>,
    /// The 0-based sheet row being assembled.
    row: Option<usize>,
    values: Vec<Data>,
}

impl Sheet {
    fn place(&mut self, row: usize, column: usize, value: Data) -> Result<(), StoreError> {
        if self.row != Some(row) {
            self.end_row()?;
            self.row = Some(row);
        }
        let width = match &self.header {
            Some(_) => self.values.len(),
            None if column < MAX_COLUMNS => column + 1,
            None => {
                return Err(StoreError::Malformed {
                    reason: format!("the header is wider than {MAX_COLUMNS} columns"),
                });
            }
        };
        if column < width {
            if self.values.len() < width {
                self.values.resize(width, Data::Empty);
            }
            self.values[column] = value;
        }
        Ok(())
    }

    fn end_row(&mut self) -> Result<(), StoreError> {
        let Some(row) = self.row else { return Ok(()) };
        let Some(positions) = &self.header else {
            let names: Vec<String> = self.values.iter().map(ToString::to_string).collect();
            let positions = header::positions(&self.builder, &names)?;
            let width = self.values.len();
            self.header = Some(positions);
            self.values = vec![Data::Empty; width];
            return Ok(());
        };
        if self.values.iter().all(|v| matches!(v, Data::Empty)) {
            return Ok(());
        }
        let types: Vec<&DataType> = self.builder.schema().fields().iter().map(|f| f.data_type()).collect();
        let as_text: Vec<Option<String>> = positions
            .iter()
            .zip(&types)
            .map(|(position, data_type)| {
                let value = position.and_then(|p| self.values.get(p))?;
                (**data_type == DataType::Utf8).then(|| number_as_text(value)).flatten()
            })
            .collect();
        let cells: Vec<Cell<'_>> = positions
            .iter()
            .zip(&as_text)
            .map(|(position, text)| match (text, position.and_then(|p| self.values.get(p))) {
                (Some(text), _) => Cell::Text(text),
                (None, Some(value)) => cell(value),
                (None, None) => Cell::Null,
            })
            .collect();
        // Sheet row number as the spreadsheet shows it (1-based, header included).
        self.builder.push_row(Some(row + 1), &cells);
        self.values.iter_mut().for_each(|v| *v = Data::Empty);
        Ok(())
    }
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
