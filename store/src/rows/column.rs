use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};

use super::Cell;

/// Longest text accepted in one cell.
const MAX_TEXT_BYTES: usize = 1 << 20;

/// A checked value, ready to append to its column.
pub(super) enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
}

/// The Arrow builder for one column of a dataset schema.
pub(super) enum Column {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Bool(BooleanBuilder),
    Date32(Date32Builder),
    TimestampMillis(TimestampMillisecondBuilder),
    TimestampMicros(TimestampMicrosecondBuilder),
}

impl Column {
    pub(super) fn for_type(data_type: &DataType) -> Option<Self> {
        Some(match data_type {
            DataType::Int64 => Self::Int64(Int64Builder::new()),
            DataType::Float64 => Self::Float64(Float64Builder::new()),
            DataType::Utf8 => Self::Utf8(StringBuilder::new()),
            DataType::Boolean => Self::Bool(BooleanBuilder::new()),
            DataType::Date32 => Self::Date32(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Millisecond, tz) => {
                Self::TimestampMillis(TimestampMillisecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                Self::TimestampMicros(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            _ => return None,
        })
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Int64(_) => "int64",
            Self::Float64(_) => "float64",
            Self::Utf8(_) => "utf8",
            Self::Bool(_) => "bool",
            Self::Date32(_) => "date32 (YYYY-MM-DD)",
            Self::TimestampMillis(_) | Self::TimestampMicros(_) => {
                "a timestamp (RFC 3339 with offset, or epoch milliseconds)"
            }
        }
    }

    /// Checks one cell against this column's type.
    pub(super) fn check<'a>(&self, cell: &Cell<'a>) -> Result<Value<'a>, String> {
        let mismatch = || format!("expected {}, got {}", self.type_name(), cell.describe());
        if let Cell::Unsupported(what) = cell {
            return Err(format!("{what} cannot be stored in a {} column", self.type_name()));
        }
        if matches!(cell, Cell::Null) {
            return Ok(Value::Null);
        }
        Ok(match self {
            Self::Int64(_) => Value::Int(match *cell {
                Cell::Int(i) => i,
                Cell::UInt(u) => i64::try_from(u).map_err(|_| format!("{u} is out of range for int64"))?,
                Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
                Cell::Text(s) => s.trim().parse().map_err(|_| mismatch())?,
                _ => return Err(mismatch()),
            }),
            Self::Float64(_) => Value::Float(match *cell {
                Cell::Int(i) => i as f64,
                Cell::UInt(u) => u as f64,
                Cell::Float(f) => f,
                Cell::Text(s) => parse_float(s).ok_or_else(mismatch)?,
                _ => return Err(mismatch()),
            })
            .finite()?,
            Self::Utf8(_) => match cell {
                Cell::Text(s) if s.len() > MAX_TEXT_BYTES => {
                    return Err(format!("text of {} bytes is longer than the {MAX_TEXT_BYTES} allowed", s.len()));
                }
                Cell::Text(s) => Value::Text(s),
                _ => return Err(mismatch()),
            },
            Self::Bool(_) => Value::Bool(match cell {
                Cell::Bool(b) => *b,
                Cell::Int(0) => false,
                Cell::Int(1) => true,
                Cell::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(mismatch()),
                },
                _ => return Err(mismatch()),
            }),
            Self::Date32(_) => Value::Int(match cell {
                Cell::Text(s) => {
                    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map(days_since_epoch).map_err(|_| mismatch())?
                }
                Cell::DateTime(dt) => days_since_epoch(dt.date()),
                _ => return Err(mismatch()),
            }),
            Self::TimestampMillis(_) => Value::Int(epoch_millis(cell).ok_or_else(mismatch)?),
            Self::TimestampMicros(_) => Value::Int(match cell {
                Cell::Int(ms) => ms.checked_mul(1000).ok_or_else(mismatch)?,
                Cell::Text(s) => match s.trim().parse::<i64>() {
                    Ok(ms) => ms.checked_mul(1000).ok_or_else(mismatch)?,
                    Err(_) => parse_timestamp(s).ok_or_else(mismatch)?.timestamp_micros(),
                },
                Cell::DateTime(dt) => dt.and_utc().timestamp_micros(),
                _ => return Err(mismatch()),
            }),
        })
    }

    pub(super) fn append(&mut self, value: Value<'_>) {
        match (self, value) {
            (Self::Int64(b), Value::Int(v)) => b.append_value(v),
            (Self::Float64(b), Value::Float(v)) => b.append_value(v),
            (Self::Utf8(b), Value::Text(v)) => b.append_value(v),
            (Self::Bool(b), Value::Bool(v)) => b.append_value(v),
            (Self::Date32(b), Value::Int(v)) => b.append_value(v as i32),
            (Self::TimestampMillis(b), Value::Int(v)) => b.append_value(v),
            (Self::TimestampMicros(b), Value::Int(v)) => b.append_value(v),
            (column, _) => column.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Int64(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Date32(b) => b.append_null(),
            Self::TimestampMillis(b) => b.append_null(),
            Self::TimestampMicros(b) => b.append_null(),
        }
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Date32(b) => Arc::new(b.finish()),
            Self::TimestampMillis(b) => Arc::new(b.finish()),
            Self::TimestampMicros(b) => Arc::new(b.finish()),
        }
    }
}

impl Value<'_> {
    fn finite(self) -> Result<Self, String> {
        match self {
            Self::Float(f) if !f.is_finite() => {
                Err(format!("{f} is not a finite number; send null for a missing value"))
            }
            other => Ok(other),
        }
    }
}

/// Accepts `12.5` and, as German spreadsheets export it, `12,5`.
fn parse_float(text: &str) -> Option<f64> {
    let text = text.trim();
    text.parse().ok().or_else(|| {
        (text.matches(',').count() == 1 && !text.contains('.')).then(|| text.replace(',', ".").parse().ok()).flatten()
    })
}

fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|dt| dt.with_timezone(&Utc))
}

fn epoch_millis(cell: &Cell<'_>) -> Option<i64> {
    match cell {
        Cell::Int(ms) => Some(*ms),
        Cell::Text(s) => s.trim().parse().ok().or_else(|| parse_timestamp(s).map(|dt| dt.timestamp_millis())),
        Cell::DateTime(dt) => Some(dt.and_utc().timestamp_millis()),
        _ => None,
    }
}

fn days_since_epoch(date: NaiveDate) -> i64 {
    let epoch = DateTime::UNIX_EPOCH.date_naive();
    (date - epoch).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data_type: DataType, cell: Cell<'_>) -> Result<(), String> {
        Column::for_type(&data_type).expect("supported").check(&cell).map(|_| ())
    }

    #[test]
    fn accepts_what_each_source_sends() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        assert!(check(ts.clone(), Cell::Text("2026-03-01T12:00:00+01:00")).is_ok());
        assert!(check(ts.clone(), Cell::Int(1_767_225_600_000)).is_ok());
        assert!(check(ts.clone(), Cell::Text("1767225600000")).is_ok());
        assert!(check(DataType::Float64, Cell::Text("12,5")).is_ok());
        assert!(check(DataType::Int64, Cell::Float(3.0)).is_ok());
        assert!(check(DataType::Date32, Cell::Text("2026-03-01")).is_ok());
        assert!(check(DataType::Boolean, Cell::Text("TRUE")).is_ok());
    }

    #[test]
    fn explains_what_does_not_fit() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let naive = check(ts, Cell::Text("2026-03-01 12:00")).expect_err("no offset");
        assert!(naive.contains("RFC 3339"), "{naive}");
        assert!(check(DataType::Int64, Cell::Float(1.5)).expect_err("fraction").contains("int64"));
        assert!(check(DataType::Int64, Cell::UInt(u64::MAX)).expect_err("range").contains("out of range"));
        assert!(check(DataType::Float64, Cell::Float(f64::NAN)).expect_err("nan").contains("finite"));
        assert!(check(DataType::Utf8, Cell::Int(3)).expect_err("type").contains("expected utf8"));
    }
}
