//! Herford's town centre in the demo: hourly weather (public) and hourly pedestrian counts
//! per shopping street, shared with the federation only as hourly aggregates over at least
//! ten people, with the sensors' serial numbers masked — the seed's example of joining
//! pedestrian frequency with weather. Deterministic in time, like the water levels.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, DurationRound, TimeDelta, Timelike, Utc};
use urbanmesh_catalog::DatasetSpec;

use super::create;
use urbanmesh::RunningNode;

const DAYS: i64 = 30;
pub(super) const WEATHER: &str = "wetter-herford";
pub(super) const PEDESTRIANS: &str = "passanten-herford";
pub(super) const DASHBOARD: &str = "innenstadt-herford";

/// Shopping streets: name, sensor serial, share of the centre's visitors.
const STREETS: [(&str, &str, f64); 3] =
    [("Bäckerstraße", "HF-LS-0417", 0.45), ("Gehrenberg", "HF-LS-0422", 0.35), ("Radewiger Straße", "HF-LS-0431", 0.2)];

/// Urban Stack's example as a dashboard staff could have built in the workspace: the
/// pedestrian counts beside the weather, on one time axis. For staff only, since the
/// counts are not public (members get hourly sums).
pub(super) async fn dashboard(node: &RunningNode) -> anyhow::Result<()> {
    use urbanmesh_catalog::dashboard::{Dashboard, Range, Source, Tile, TileKind};
    if node.catalog.dashboards().get(DASHBOARD).is_ok() {
        return Ok(());
    }
    let chart = |source: &str, column: &str, title: &str| Tile {
        kind: TileKind::Chart,
        title: Some(title.to_owned()),
        source: Some(Source::Dataset(source.to_owned())),
        column: Some(column.to_owned()),
        text: None,
    };
    let dashboard = Dashboard {
        id: DASHBOARD.to_owned(),
        title: "Innenstadt Herford: Passanten und Wetter".to_owned(),
        description: "Wie viele Menschen in den Einkaufsstraßen unterwegs sind, neben Temperatur und Niederschlag."
            .to_owned(),
        range: Range::Week,
        visibility: urbanmesh_policy::Visibility::Internal,
        tiles: vec![
            chart(PEDESTRIANS, "count", "Passanten je Stunde"),
            chart(WEATHER, "temperature", "Temperatur"),
            chart(WEATHER, "precipitation", "Niederschlag"),
            Tile {
                kind: TileKind::Text,
                title: Some("Lesehilfe".to_owned()),
                source: None,
                column: None,
                text: Some(
                    "Alle Grafiken zeigen dieselben sieben Tage. Regen und Kälte leeren die Straßen.".to_owned(),
                ),
            },
        ],
    };
    node.catalog.dashboards().put(&dashboard, true).await?;
    Ok(())
}

/// Creates and fills both datasets unless they exist (a second run reuses them).
pub(super) async fn load(node: &RunningNode) -> anyhow::Result<()> {
    let hours = hours();
    let weather = weather(&hours);
    if node.catalog.get(WEATHER).is_err() {
        let spec = spec(serde_json::json!({
            "id": WEATHER,
            "title": "Wetter Herford Innenstadt",
            "description": "Stündliche Lufttemperatur und Niederschlag an der Station Herford-Innenstadt (Beispieldaten).",
            "schema": {"fields": [
                {"name": "time", "type": "timestamp[ms, UTC]"},
                {"name": "temperature", "type": "float64", "unit": "°C"},
                {"name": "precipitation", "type": "float64", "unit": "mm"}]},
            "time_column": "time",
            "keywords": ["Wetter", "Temperatur", "Niederschlag"],
            "themes": ["ENVI"],
            "accrual_periodicity": "HOURLY",
            "policy": {"visibility": "public", "attribution": "Stadt Herford", "licence": "dl-by-de/2.0"}
        }))?;
        let dataset = create(node, spec).await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(hours.clone()).with_timezone("UTC")),
            Arc::new(Float64Array::from(weather.iter().map(|w| w.0).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(weather.iter().map(|w| w.1).collect::<Vec<_>>())),
        ];
        node.store.append(WEATHER, RecordBatch::try_new(dataset.arrow_schema(), columns)?).await?;
    }
    if node.catalog.get(PEDESTRIANS).is_err() {
        let spec = spec(serde_json::json!({
            "id": PEDESTRIANS,
            "title": "Passantenfrequenz Herford Innenstadt",
            "description": "Stündlich gezählte Passanten je Einkaufsstraße, Laserscanner (Beispieldaten).",
            "schema": {"fields": [
                {"name": "time", "type": "timestamp[ms, UTC]"},
                {"name": "street", "type": "utf8"},
                {"name": "sensor_serial", "type": "utf8"},
                {"name": "count", "type": "int64"}]},
            "time_column": "time",
            "series_key": "street",
            "keywords": ["Passanten", "Fußgänger", "Frequenz", "Innenstadt"],
            "themes": ["TRAN", "ECON"],
            "accrual_periodicity": "HOURLY",
            "policy": {
                "visibility": "federation",
                "rules": [{"assignee": "federation", "masked": ["sensor_serial"],
                           "aggregate": {"bucket": "1h", "min_group": 10, "weight": "count"}}],
                "attribution": "Stadt Herford"
            }
        }))?;
        let dataset = create(node, spec).await?;
        node.store.append(PEDESTRIANS, pedestrians(dataset.arrow_schema(), &hours, &weather)?).await?;
    }
    Ok(())
}

fn spec(value: serde_json::Value) -> anyhow::Result<DatasetSpec> {
    Ok(serde_json::from_value(value)?)
}

/// The last 30 days of whole hours, in milliseconds.
fn hours() -> Vec<i64> {
    let step = TimeDelta::hours(1);
    let end = Utc::now().duration_trunc(step).unwrap_or_else(|_| Utc::now());
    (0..DAYS * 24).map(|i| (end - step * (DAYS * 24 - i) as i32).timestamp_millis()).collect()
}

/// Temperature (°C) and precipitation (mm) per hour: a daily cycle and rain on some days.
fn weather(hours: &[i64]) -> Vec<(f64, f64)> {
    hours
        .iter()
        .map(|&at| {
            let hour_of_day = (at / 3_600_000).rem_euclid(24) as f64;
            let day = at / 86_400_000;
            let temperature = 6.0
                + 4.0 * ((hour_of_day - 9.0) / 24.0 * std::f64::consts::TAU).sin()
                + ((day.wrapping_mul(48_271) % 7) as f64 - 3.0);
            let rainy_day = day.wrapping_mul(16_807) % 3 == 0;
            let shower = rainy_day && (at / 3_600_000).wrapping_mul(2_654_435_761) % 4 == 0;
            let precipitation = if shower { 0.4 + ((at / 3_600_000) % 7) as f64 * 0.3 } else { 0.0 };
            ((temperature * 10.0).round() / 10.0, (precipitation * 10.0).round() / 10.0)
        })
        .collect()
}

/// Visitors per street and hour: busy shop hours, quiet nights (often under ten people),
/// fewer on Sundays and in the rain.
fn pedestrians(
    schema: arrow::datatypes::SchemaRef,
    hours: &[i64],
    weather: &[(f64, f64)],
) -> anyhow::Result<RecordBatch> {
    let (mut time, mut street, mut serial, mut count) = (vec![], vec![], vec![], vec![]);
    for (&at, &(_, rain)) in hours.iter().zip(weather) {
        let moment = chrono::DateTime::from_timestamp_millis(at).unwrap_or_default();
        let local_hour = (moment.hour() + 1) % 24;
        let open = (9..20).contains(&local_hour);
        let base = if open { 900.0 * (1.0 - ((f64::from(local_hour) - 14.0) / 7.0).powi(2)) } else { 12.0 };
        let weekday = match moment.weekday() {
            chrono::Weekday::Sun => 0.15,
            chrono::Weekday::Sat => 1.3,
            _ => 1.0,
        };
        let weather = if rain > 0.0 { 0.6 } else { 1.0 };
        for (name, sensor, share) in STREETS {
            let noise = ((at / 3_600_000).wrapping_mul(2_654_435_761) % 100) as f64 / 100.0 + 0.5;
            time.push(at);
            street.push(name);
            serial.push(sensor);
            count.push((base * weekday * weather * share * noise).round() as i64);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(time).with_timezone("UTC")),
        Arc::new(StringArray::from(street)),
        Arc::new(StringArray::from(serial)),
        Arc::new(Int64Array::from(count)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
