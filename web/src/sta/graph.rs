//! The SensorThings entities of the datasets a caller may read, built for one request from
//! each dataset's latest released rows (see `ReadGate::latest`):
//!
//! - a dataset with a time column, a series key and a geometry is one `Sensor`;
//! - each of its series (station) is a `Thing`, with one `Location` and one
//!   `FeatureOfInterest` at its latest position;
//! - each number the station measures is a `Datastream` with an `ObservedProperty`;
//! - the rows are the `Observations`, read through the sealed path on demand.
//!
//! Ids are numbers derived from the dataset, the series key and the column, so that they
//! stay the same across restarts and for every caller; an observation's id adds its time.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use serde_json::{Map, Value, json};
use urbanmesh_catalog::Dataset;
use urbanmesh_dataspace::{DataspaceError, RECORDS};
use urbanmesh_policy::{Interface, Subject};

use super::StaError;
use super::kind::Kind;
use crate::AppState;
use crate::api::encode::json_objects;
use crate::portal::rows::{LABELS, NOT_MEASURES};

/// One dataset served as a sensor.
pub(crate) struct Source {
    pub(crate) dataset: String,
    pub(crate) title: String,
    pub(crate) time: String,
    pub(crate) key: String,
    /// The width of a released bucket, where the grant releases aggregates only.
    pub(crate) bucket_seconds: Option<i64>,
}

/// One series of a source.
pub(crate) struct Station {
    pub(crate) source: usize,
    pub(crate) key: ScalarValue,
    key_text: String,
    name: String,
    position: Option<(f64, f64)>,
    /// The descriptive columns of its latest row.
    properties: Map<String, Value>,
}

/// One measured column of a station.
pub(crate) struct Stream {
    pub(crate) station: usize,
    pub(crate) column: String,
    unit: Option<String>,
    description: Option<String>,
    /// Its latest observation, where the station's latest row has a value for it.
    pub(crate) latest: Option<Observation>,
}

#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub(crate) stream: usize,
    pub(crate) time: DateTime<Utc>,
    pub(crate) result: Value,
    /// The rows behind an aggregate.
    pub(crate) records: Option<i64>,
}

/// An entity held in memory (every kind but observations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    Thing(usize),
    Location(usize),
    Feature(usize),
    Datastream(usize),
    Sensor(usize),
    Property(usize),
}

/// An entity of any kind.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Node(Node),
    Observation(Observation),
}

/// What a navigation leads to.
pub(crate) enum Related {
    One(Option<Item>),
    Many(Vec<Node>),
    /// The observations of these streams.
    Observations(Vec<usize>),
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) sources: Vec<Source>,
    pub(crate) stations: Vec<Station>,
    pub(crate) streams: Vec<Stream>,
    /// (source, column) of each observed property.
    properties: Vec<(usize, String)>,
    /// `{base}/sta/v1.1`
    pub(crate) base: String,
}

impl Graph {
    /// The entities of every dataset `subject` may read as sensors. A dataset the
    /// subject may not read this way (refused, or with its time or series withheld) is
    /// left out, as one it may not see is.
    pub(crate) async fn build(state: &AppState, subject: &Subject) -> Result<Self, StaError> {
        let mut graph = Self { base: format!("{}/sta/v1.1", state.endpoints.http), ..Self::default() };
        let mut datasets = state.catalog.list()?;
        datasets.sort_by(|a, b| a.id().cmp(b.id()));
        for dataset in datasets {
            let spec = &dataset.spec;
            if spec.time_column.is_none() || spec.series_key.is_none() || spec.geometry.is_none() {
                continue;
            }
            // A listing, not a read the caller asked for: what it may not read is left out
            // without a refusal in the access log.
            if !state.gate.visible(subject, &dataset) || !state.gate.may_read(subject, &dataset) {
                continue;
            }
            match state.gate.latest(subject, dataset.id(), Interface::SensorThings).await {
                Ok(latest) => graph.add(&dataset, &latest)?,
                Err(
                    e @ (DataspaceError::NotFound { .. }
                    | DataspaceError::Forbidden { .. }
                    | DataspaceError::InvalidRequest { .. }),
                ) => {
                    tracing::debug!(dataset = %dataset.id(), error = %e, "not served as a sensor to this caller");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(graph)
    }

    fn add(&mut self, dataset: &Dataset, latest: &urbanmesh_dataspace::Latest) -> Result<(), StaError> {
        let spec = &dataset.spec;
        let (Some(time), Some(key), Some(geometry)) = (&spec.time_column, &spec.series_key, &spec.geometry) else {
            return Ok(());
        };
        let source = self.sources.len();
        self.sources.push(Source {
            dataset: dataset.id().to_owned(),
            title: spec.title.clone(),
            time: time.clone(),
            key: key.clone(),
            bucket_seconds: latest.grant.aggregate.as_ref().and_then(|a| a.bucket_seconds()),
        });
        let measures: Vec<&str> = latest
            .schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_numeric())
            .map(|f| f.name().as_str())
            .filter(|name| {
                ![time.as_str(), key.as_str(), &geometry.lon, &geometry.lat].contains(name)
                    && !NOT_MEASURES.contains(name)
            })
            .collect();
        self.properties.extend(measures.iter().map(|column| (source, (*column).to_owned())));
        let label = LABELS.into_iter().find(|l| latest.schema.field_with_name(l).is_ok());
        for batch in &latest.rows {
            let objects = json_objects(batch).map_err(|e| StaError::internal(format!("latest rows as JSON: {e}")))?;
            let times = micros(batch, time)?;
            let coordinate = |name: &str, row: usize| {
                batch.column_by_name(name).and_then(|c| cast(c, &DataType::Float64).ok()).and_then(|c| {
                    let c = c.as_primitive::<Float64Type>();
                    c.is_valid(row).then(|| c.value(row))
                })
            };
            let Some(keys) = batch.column_by_name(key) else { continue };
            for (row, mut object) in objects.into_iter().enumerate() {
                let key_value = ScalarValue::try_from_array(keys.as_ref(), row)
                    .map_err(|e| StaError::internal(format!("series key: {e}")))?;
                let key_text = match &key_value {
                    ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                        s.clone()
                    }
                    other => other.to_string(),
                };
                let name = label
                    .and_then(|l| object.get(l))
                    .and_then(Value::as_str)
                    .map_or_else(|| key_text.clone(), str::to_owned);
                let position = coordinate(&geometry.lon, row).zip(coordinate(&geometry.lat, row));
                let station = self.stations.len();
                let at = times.get(row).copied().flatten();
                for column in &measures {
                    let field = spec.schema.field(column);
                    let result = object.get(*column).cloned().unwrap_or(Value::Null);
                    let records = object.get(RECORDS).and_then(Value::as_i64);
                    let stream = self.streams.len();
                    let latest =
                        at.filter(|_| !result.is_null()).map(|time| Observation { stream, time, result, records });
                    self.streams.push(Stream {
                        station,
                        column: (*column).to_owned(),
                        unit: field.and_then(|f| f.unit.clone()),
                        description: field.and_then(|f| f.description.clone()),
                        latest,
                    });
                }
                for drop in
                    [time.as_str(), geometry.lon.as_str(), geometry.lat.as_str(), RECORDS].iter().chain(&measures)
                {
                    object.remove(*drop);
                }
                self.stations.push(Station { source, key: key_value, key_text, name, position, properties: object });
            }
        }
        Ok(())
    }

    /// Every entity of `kind` held in memory, by id.
    pub(crate) fn all(&self, kind: Kind) -> Vec<Node> {
        let stations = 0..self.stations.len();
        let mut nodes: Vec<Node> = match kind {
            Kind::Thing => stations.map(Node::Thing).collect(),
            Kind::Location => stations.filter(|s| self.stations[*s].position.is_some()).map(Node::Location).collect(),
            Kind::FeatureOfInterest => {
                stations.filter(|s| self.stations[*s].position.is_some()).map(Node::Feature).collect()
            }
            Kind::Datastream => (0..self.streams.len()).map(Node::Datastream).collect(),
            Kind::Sensor => (0..self.sources.len()).map(Node::Sensor).collect(),
            Kind::ObservedProperty => (0..self.properties.len()).map(Node::Property).collect(),
            Kind::HistoricalLocation | Kind::Observation => Vec::new(),
        };
        nodes.sort_by_cached_key(|n| self.id(*n));
        nodes
    }

    pub(crate) fn every_stream(&self) -> Vec<usize> {
        (0..self.streams.len()).collect()
    }

    /// The entity of `kind` with `id`.
    pub(crate) fn find(&self, kind: Kind, id: &str) -> Option<Node> {
        let id: u64 = id.parse().ok()?;
        self.all(kind).into_iter().find(|n| self.id(*n) == id)
    }

    /// The stream and time an observation id names.
    pub(crate) fn observation_id(&self, id: &str) -> Option<(usize, DateTime<Utc>)> {
        let (stream, micros) = id.split_once('-')?;
        let stream = self.find(Kind::Datastream, stream)?;
        let Node::Datastream(stream) = stream else { return None };
        Some((stream, DateTime::from_timestamp_micros(micros.parse().ok()?)?))
    }

    pub(crate) fn id(&self, node: Node) -> u64 {
        let station = |s: usize| {
            let station = &self.stations[s];
            (self.sources[station.source].dataset.as_str(), station.key_text.as_str())
        };
        match node {
            Node::Thing(s) => {
                let (dataset, key) = station(s);
                stable_id(&["thing", dataset, key])
            }
            Node::Location(s) => {
                let (dataset, key) = station(s);
                stable_id(&["location", dataset, key])
            }
            Node::Feature(s) => {
                let (dataset, key) = station(s);
                stable_id(&["feature", dataset, key])
            }
            Node::Datastream(d) => {
                let stream = &self.streams[d];
                let (dataset, key) = station(stream.station);
                stable_id(&["datastream", dataset, key, &stream.column])
            }
            Node::Sensor(source) => stable_id(&["sensor", &self.sources[source].dataset]),
            Node::Property(p) => {
                let (source, column) = &self.properties[p];
                stable_id(&["property", &self.sources[*source].dataset, column])
            }
        }
    }

    pub(crate) fn kind(node: Node) -> Kind {
        match node {
            Node::Thing(_) => Kind::Thing,
            Node::Location(_) => Kind::Location,
            Node::Feature(_) => Kind::FeatureOfInterest,
            Node::Datastream(_) => Kind::Datastream,
            Node::Sensor(_) => Kind::Sensor,
            Node::Property(_) => Kind::ObservedProperty,
        }
    }

    /// Where the navigation property to `kind` leads from `item`.
    pub(crate) fn related(&self, item: &Item, kind: Kind) -> Related {
        let streams_of = |station: usize| {
            (0..self.streams.len()).filter(|d| self.streams[*d].station == station).collect::<Vec<_>>()
        };
        let located = |s: usize| self.stations[s].position.is_some();
        match (item, kind) {
            (Item::Node(Node::Thing(s)), Kind::Location) => {
                Related::Many(located(*s).then_some(Node::Location(*s)).into_iter().collect())
            }
            (Item::Node(Node::Thing(s)), Kind::Datastream) => {
                Related::Many(streams_of(*s).into_iter().map(Node::Datastream).collect())
            }
            (Item::Node(Node::Location(s)), Kind::Thing) => Related::Many(vec![Node::Thing(*s)]),
            (Item::Node(Node::Datastream(d)), Kind::Thing) => {
                Related::One(Some(Item::Node(Node::Thing(self.streams[*d].station))))
            }
            (Item::Node(Node::Datastream(d)), Kind::Sensor) => {
                Related::One(Some(Item::Node(Node::Sensor(self.stations[self.streams[*d].station].source))))
            }
            (Item::Node(Node::Datastream(d)), Kind::ObservedProperty) => {
                let stream = &self.streams[*d];
                let source = self.stations[stream.station].source;
                let property = self.properties.iter().position(|(s, c)| *s == source && *c == stream.column);
                Related::One(property.map(|p| Item::Node(Node::Property(p))))
            }
            (Item::Node(Node::Datastream(d)), Kind::Observation) => Related::Observations(vec![*d]),
            (Item::Node(Node::Sensor(source)), Kind::Datastream) => Related::Many(
                (0..self.streams.len())
                    .filter(|d| self.stations[self.streams[*d].station].source == *source)
                    .map(Node::Datastream)
                    .collect(),
            ),
            (Item::Node(Node::Property(p)), Kind::Datastream) => {
                let (source, column) = &self.properties[*p];
                Related::Many(
                    (0..self.streams.len())
                        .filter(|d| {
                            self.stations[self.streams[*d].station].source == *source
                                && self.streams[*d].column == *column
                        })
                        .map(Node::Datastream)
                        .collect(),
                )
            }
            (Item::Node(Node::Feature(s)), Kind::Observation) => Related::Observations(streams_of(*s)),
            (Item::Observation(o), Kind::Datastream) => Related::One(Some(Item::Node(Node::Datastream(o.stream)))),
            (Item::Observation(o), Kind::FeatureOfInterest) => {
                let station = self.streams[o.stream].station;
                Related::One(located(station).then_some(Item::Node(Node::Feature(station))))
            }
            (_, Kind::Observation) => Related::Observations(Vec::new()),
            _ => {
                let from = match item {
                    Item::Node(node) => Self::kind(*node),
                    Item::Observation(_) => Kind::Observation,
                };
                match from.navigations().iter().find(|(k, _)| *k == kind) {
                    Some((_, false)) => Related::One(None),
                    _ => Related::Many(Vec::new()),
                }
            }
        }
    }

    /// The entity as JSON: its id, self link, properties and navigation links.
    pub(crate) fn json(&self, item: &Item) -> Map<String, Value> {
        let (kind, id): (Kind, Value) = match item {
            Item::Node(node) => (Self::kind(*node), Value::from(self.id(*node))),
            Item::Observation(o) => (Kind::Observation, Value::from(self.observation_key(o))),
        };
        let link = match &id {
            Value::String(text) => format!("{}/{}('{text}')", self.base, kind.plural()),
            other => format!("{}/{}({other})", self.base, kind.plural()),
        };
        let mut object = Map::new();
        object.insert("@iot.id".into(), id);
        object.insert("@iot.selfLink".into(), Value::from(link.clone()));
        let properties = match item {
            Item::Node(node) => self.properties_of(*node),
            Item::Observation(o) => self.observation(o),
        };
        object.extend(properties);
        for (target, many) in kind.navigations() {
            let name = if *many { target.plural() } else { target.singular() };
            object.insert(format!("{name}@iot.navigationLink"), Value::from(format!("{link}/{name}")));
        }
        object
    }

    fn observation_key(&self, o: &Observation) -> String {
        format!("{}-{}", self.id(Node::Datastream(o.stream)), o.time.timestamp_micros())
    }

    fn observation(&self, o: &Observation) -> Map<String, Value> {
        let source = &self.sources[self.stations[self.streams[o.stream].station].source];
        let start = o.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let mut object = Map::new();
        match source.bucket_seconds.and_then(|s| o.time.checked_add_signed(chrono::TimeDelta::seconds(s))) {
            Some(end) => {
                let end = end.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                object.insert("phenomenonTime".into(), Value::from(format!("{start}/{end}")));
                object.insert("resultTime".into(), Value::from(end));
            }
            None => {
                object.insert("phenomenonTime".into(), Value::from(start.clone()));
                object.insert("resultTime".into(), Value::from(start));
            }
        }
        object.insert("result".into(), o.result.clone());
        if let Some(records) = o.records {
            object.insert("parameters".into(), json!({ "records": records }));
        }
        object
    }

    fn properties_of(&self, node: Node) -> Map<String, Value> {
        let point =
            |s: usize| self.stations[s].position.map(|(lon, lat)| json!({"type": "Point", "coordinates": [lon, lat]}));
        let value = match node {
            Node::Thing(s) => {
                let station = &self.stations[s];
                let source = &self.sources[station.source];
                let mut properties = station.properties.clone();
                properties.insert("dataset".into(), Value::from(source.dataset.clone()));
                json!({
                    "name": station.name,
                    "description": format!("{} – {}", source.title, station.name),
                    "properties": properties,
                })
            }
            Node::Location(s) | Node::Feature(s) => {
                let station = &self.stations[s];
                let geometry = if matches!(node, Node::Location(_)) { "location" } else { "feature" };
                json!({
                    "name": station.name,
                    "description": format!("{} – {}", self.sources[station.source].title, station.name),
                    "encodingType": "application/geo+json",
                    geometry: point(s),
                })
            }
            Node::Datastream(d) => {
                let stream = &self.streams[d];
                let station = &self.stations[stream.station];
                let unit = stream.unit.clone().unwrap_or_default();
                json!({
                    "name": format!("{} {}", station.name, stream.column),
                    "description": stream.description.clone().unwrap_or_else(|| format!("{} at {}", stream.column, station.name)),
                    "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                    "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": ""},
                    "properties": {"column": stream.column, "dataset": self.sources[station.source].dataset},
                })
            }
            Node::Sensor(source) => {
                let source = &self.sources[source];
                json!({
                    "name": source.title,
                    "description": format!("The sensors behind dataset `{}`", source.dataset),
                    "encodingType": "text/html",
                    "metadata": format!("{}/datasets/{}", self.base.trim_end_matches("/sta/v1.1"), source.dataset),
                    "properties": {"dataset": source.dataset},
                })
            }
            Node::Property(p) => {
                let (source, column) = &self.properties[p];
                let description = self
                    .streams
                    .iter()
                    .find(|s| s.column == *column && self.stations[s.station].source == *source)
                    .and_then(|s| s.description.clone())
                    .unwrap_or_else(|| column.clone());
                json!({
                    "name": column,
                    "definition": "",
                    "description": description,
                    "properties": {"dataset": self.sources[*source].dataset},
                })
            }
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// The times of `batch`'s time column, in microseconds.
pub(crate) fn micros(batch: &RecordBatch, time: &str) -> Result<Vec<Option<DateTime<Utc>>>, StaError> {
    let column = batch.column_by_name(time).ok_or_else(|| StaError::internal(format!("no time column `{time}`")))?;
    let column = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))
        .map_err(|e| StaError::internal(format!("time column `{time}`: {e}")))?;
    let column = column.as_primitive::<TimestampMicrosecondType>();
    Ok((0..column.len())
        .map(|i| column.is_valid(i).then(|| DateTime::from_timestamp_micros(column.value(i))).flatten())
        .collect())
}

/// FNV-1a over the parts, kept to 53 bits so that JavaScript reads it exactly.
fn stable_id(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash & ((1 << 53) - 1)
}

#[cfg(test)]
mod tests {
    use super::stable_id;

    #[test]
    fn ids_are_stable_and_tell_parts_apart() {
        // Fixed values: an id must never change between versions of the node.
        assert_eq!(stable_id(&["thing", "pegel", "a"]), stable_id(&["thing", "pegel", "a"]));
        assert_ne!(stable_id(&["thing", "pegel", "ab"]), stable_id(&["thing", "pegela", "b"]));
        assert!(stable_id(&["datastream", "x", "y", "value"]) < 1 << 53);
    }
}
