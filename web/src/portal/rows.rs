//! What a page shows of rows: series of (time, value) per station, their latest values and
//! positions, and a preview of the latest rows.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::util::display::array_value_to_string;

/// Columns that name a series for people, best first, where its key is a code.
pub(crate) const LABELS: [&str; 4] = ["shortname", "name", "station", "longname"];
/// Numbers that describe where a station is, not what it measures.
pub(crate) const NOT_MEASURES: [&str; 5] = ["lon", "lat", "km", "gauge_zero", "records"];

/// The columns a page draws from.
pub(crate) struct Columns {
    pub(crate) time: String,
    pub(crate) value: String,
    pub(crate) key: Option<String>,
    /// A readable name of the series (`shortname`, `name`, …) where the key is a code.
    pub(crate) label: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) lon: Option<String>,
    pub(crate) lat: Option<String>,
}

/// One series (a station), oldest point first.
pub(crate) struct Series {
    /// Its label, or its key.
    pub(crate) name: String,
    pub(crate) points: Vec<(i64, f64)>,
    /// The state and position at the latest point.
    pub(crate) state: Option<String>,
    pub(crate) position: Option<(f64, f64)>,
}

impl Series {
    pub(crate) fn latest(&self) -> Option<(i64, f64)> {
        self.points.last().copied()
    }
}

impl Columns {
    /// The columns of `schema` to draw: the time column, the value (`value`, or the first
    /// number that is not a coordinate), the series key and, where present, `state`,
    /// `lon` and `lat`. `None` without a time column or a number.
    pub(crate) fn pick(schema: &Schema, time: Option<&str>, key: Option<&str>) -> Option<Self> {
        let time = time.filter(|t| schema.field_with_name(t).is_ok())?.to_owned();
        let has = |name: &str| schema.field_with_name(name).is_ok().then(|| name.to_owned());
        let numeric = |t: &DataType| t.is_integer() || t.is_floating();
        let value = schema
            .field_with_name("value")
            .ok()
            .filter(|f| numeric(f.data_type()))
            .or_else(|| {
                schema
                    .fields()
                    .iter()
                    .map(AsRef::as_ref)
                    .find(|f| numeric(f.data_type()) && !NOT_MEASURES.contains(&f.name().as_str()))
            })?
            .name()
            .clone();
        Some(Self {
            time,
            value,
            key: key.and_then(has),
            label: LABELS.into_iter().find_map(has),
            state: has("state"),
            lon: has("lon"),
            lat: has("lat"),
        })
    }

    /// The batches' rows as series, by key (one series when there is none).
    pub(crate) fn series(&self, batches: &[RecordBatch]) -> Vec<Series> {
        let mut found: BTreeMap<String, Series> = BTreeMap::new();
        for batch in batches {
            let Some(parts) = self.parts(batch) else { continue };
            for row in 0..batch.num_rows() {
                if parts.time.is_null(row) || parts.value.is_null(row) {
                    continue;
                }
                let key = parts.key.as_ref().map_or(String::new(), |k| text(k, row).unwrap_or_default());
                let series = found.entry(key).or_insert_with_key(|key| {
                    let name = parts.label.as_ref().and_then(|l| text(l, row)).unwrap_or_else(|| key.clone());
                    Series { name, points: Vec::new(), state: None, position: None }
                });
                let at = parts.time.value(row);
                if series.points.last().is_none_or(|(last, _)| *last <= at) {
                    series.state = parts.state.as_ref().and_then(|s| text(s, row));
                    series.position = match (&parts.lon, &parts.lat) {
                        (Some(lon), Some(lat)) if lon.is_valid(row) && lat.is_valid(row) => {
                            Some((lon.value(row), lat.value(row)))
                        }
                        _ => series.position,
                    };
                }
                series.points.push((at, parts.value.value(row)));
            }
        }
        let mut series: Vec<Series> = found.into_values().collect();
        for one in &mut series {
            one.points.sort_by_key(|(at, _)| *at);
        }
        series.sort_by(|a, b| a.name.cmp(&b.name));
        series
    }

    fn parts(&self, batch: &RecordBatch) -> Option<Parts> {
        let column = |name: &str| batch.column_by_name(name).cloned();
        let millis = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let time = cast(&column(&self.time)?, &millis).ok()?;
        let value = cast(&column(&self.value)?, &DataType::Float64).ok()?;
        let utf8 =
            |name: &Option<String>| name.as_deref().and_then(column).and_then(|c| cast(&c, &DataType::Utf8).ok());
        let float = |name: &Option<String>| {
            name.as_deref().and_then(column).and_then(|c| cast(&c, &DataType::Float64).ok()).and_then(floats)
        };
        Some(Parts {
            time: time.as_any().downcast_ref::<TimestampMillisecondArray>()?.clone(),
            value: floats(value)?,
            key: utf8(&self.key),
            label: utf8(&self.label),
            state: utf8(&self.state),
            lon: float(&self.lon),
            lat: float(&self.lat),
        })
    }

    /// The latest `n` rows, newest first, every column as text.
    pub(crate) fn preview(&self, batches: &[RecordBatch], n: usize) -> (Vec<String>, Vec<Vec<String>>) {
        let Some(first) = batches.first() else { return (Vec::new(), Vec::new()) };
        let header: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
        let mut rows: Vec<(i64, usize, usize)> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let Some(parts) = self.parts(batch) else { continue };
            rows.extend(
                (0..batch.num_rows())
                    .map(|r| (if parts.time.is_null(r) { i64::MIN } else { parts.time.value(r) }, b, r)),
            );
        }
        rows.sort_unstable_by(|a, b| b.cmp(a));
        let cells = rows
            .into_iter()
            .take(n)
            .map(|(_, b, r)| {
                batches[b]
                    .columns()
                    .iter()
                    .map(|c| if c.is_null(r) { String::new() } else { array_value_to_string(c, r).unwrap_or_default() })
                    .collect()
            })
            .collect();
        (header, cells)
    }
}

struct Parts {
    time: TimestampMillisecondArray,
    value: Float64Array,
    key: Option<ArrayRef>,
    label: Option<ArrayRef>,
    state: Option<ArrayRef>,
    lon: Option<Float64Array>,
    lat: Option<Float64Array>,
}

fn floats(array: ArrayRef) -> Option<Float64Array> {
    array.as_any().downcast_ref::<Float64Array>().cloned()
}

fn text(array: &ArrayRef, row: usize) -> Option<String> {
    let strings = array.as_any().downcast_ref::<StringArray>()?;
    strings.is_valid(row).then(|| strings.value(row).to_owned())
}
