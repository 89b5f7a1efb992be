//! `urbanmesh demo`: a node for Gütersloh with a month of 15-minute water levels,
//! ready to be explored with curl and pyarrow.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DurationRound, TimeDelta, Utc};
use urbanmesh_catalog::DatasetSpec;

use crate::cli::{DemoArgs, InitArgs, RunArgs};
use crate::config::Config;
use crate::init::{self, TOKEN_FILE};
use crate::node::{self, RunningNode};

const DATASET: &str = "pegel-guetersloh";
const STEP_MINUTES: i64 = 15;
const DAYS: i64 = 30;

/// Gauging stations: name, water, longitude, latitude, mean level in cm, flood delay in hours.
const STATIONS: [(&str, &str, f64, f64, f64, f64); 3] = [
    ("Gütersloh Dalke", "Dalke", 8.3833, 51.9062, 84.0, 0.0),
    ("Avenwedde Ölbach", "Ölbach", 8.4291, 51.9317, 61.0, 3.0),
    ("Isselhorst Lutter", "Lutter", 8.4112, 51.9688, 118.0, 7.0),
];

pub(crate) async fn run(args: DemoArgs, query: tokio::runtime::Handle) -> anyhow::Result<()> {
    let data_dir = args.base_dir.join("guetersloh");
    if !Config::path(&data_dir).exists() {
        init::init(&InitArgs {
            data_dir: data_dir.clone(),
            name: "Gütersloh".into(),
            ars: Some("057540008008".into()),
        })?;
    }
    let loopback = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let run_args = RunArgs { data_dir: data_dir.clone(), http: loopback, flight: loopback, p2p: None };
    let node = node::start(&run_args, query).await?;
    if node.catalog.get(DATASET).is_err() {
        load_sample(&node).await?;
    }
    let token_path = data_dir.join(TOKEN_FILE);
    println!("\nUrban Mesh demo — node Gütersloh");
    println!("  REST API:   {}/api/v1/datasets", node.addresses.http);
    println!("  Flight:     {}", node.addresses.flight);
    println!("  Metrics:    {}/metrics", node.addresses.http);
    println!("  Admin token in {}", token_path.display());
    println!("\nRead the water levels into pandas:\n");
    println!("  import json, pyarrow.flight as fl");
    println!("  client = fl.FlightClient(\"{}\")", node.addresses.flight);
    println!("  cmd = {{\"dataset\": \"{DATASET}\", \"filter\": \"state = 'high'\"}}");
    println!("  info = client.get_flight_info(fl.FlightDescriptor.for_command(json.dumps(cmd)))");
    println!("  df = client.do_get(info.endpoints[0].ticket).read_pandas()");
    println!("\nOr as CSV: curl '{}/api/v1/datasets/{DATASET}/rows?format=csv&limit=10'", node.addresses.http);
    println!("\nPress Ctrl-C to stop.");
    node::shutdown_signal().await;
    node.stop().await
}

async fn load_sample(node: &RunningNode) -> anyhow::Result<()> {
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
        "id": DATASET,
        "title": "Pegelstände Gütersloh",
        "description": "Wasserstände der Pegel an Dalke, Ölbach und Lutter im 15-Minuten-Takt (Beispieldaten).",
        "schema": {"fields": [
            {"name": "time", "type": "timestamp[ms, UTC]"},
            {"name": "station", "type": "utf8"},
            {"name": "water", "type": "utf8"},
            {"name": "value", "type": "float64", "unit": "cm"},
            {"name": "state", "type": "utf8", "description": "low, normal or high"},
            {"name": "lon", "type": "float64"},
            {"name": "lat", "type": "float64"}
        ]},
        "time_column": "time",
        "series_key": "station",
        "geometry": {"lon": "lon", "lat": "lat"},
        "keywords": ["Pegel", "Wasserstand", "Hochwasser", "Dalke", "Lutter", "Ölbach"],
        "themes": ["ENVI"],
        "publisher": {"name": "Stadt Gütersloh", "type": "LocalAuthority"},
        "contact_point": {"name": "Fachbereich Umweltschutz", "email": "umwelt@guetersloh.de"},
        "spatial": {"level": "municipality", "bbox": [8.30, 51.85, 8.50, 51.95]},
        "accrual_periodicity": "15MIN",
        "licence": "dl-by-de/2.0",
        "attribution": "Stadt Gütersloh, Pegeldaten (Beispieldaten)"
    }))?;
    let dataset = node.catalog.create(spec).await?;
    node.store.create(&dataset).await?;
    let batch = water_levels(dataset.arrow_schema()?)?;
    let appended = node.store.append(DATASET, batch).await?;
    tracing::info!(rows = appended.rows, "loaded the demo's water levels");
    Ok(())
}

/// A month of levels ending now: a seasonal drift, a daily rhythm, some noise, and a flood
/// wave ten days ago that reaches the stations one after another. Deterministic in time.
fn water_levels(schema: arrow::datatypes::SchemaRef) -> anyhow::Result<RecordBatch> {
    let step = TimeDelta::minutes(STEP_MINUTES);
    let end = Utc::now().duration_trunc(step)?;
    let start = end - TimeDelta::days(DAYS);
    let flood_peak = (end - TimeDelta::days(10)).timestamp_millis() as f64;
    let steps = DAYS * 24 * 60 / STEP_MINUTES;
    let (mut time, mut station, mut water, mut value, mut state, mut lon, mut lat) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (name, river, x, y, mean, delay_hours) in STATIONS {
        for i in 0..steps {
            let at = (start + step * i as i32).timestamp_millis();
            let hours = at as f64 / 3.6e6;
            let seasonal = 8.0 * (hours / (24.0 * 17.0)).sin();
            let daily = 2.5 * (hours / 24.0 * std::f64::consts::TAU).sin();
            let noise = ((at / 900_000).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 - 0.5;
            let since_peak_hours = (at as f64 - flood_peak) / 3.6e6 - delay_hours;
            let flood = 95.0 * (-(since_peak_hours / 18.0).powi(2)).exp();
            let level = ((mean + seasonal + daily + noise + flood) * 10.0).round() / 10.0;
            time.push(at);
            station.push(name);
            water.push(river);
            value.push(level);
            state.push(if level > mean + 40.0 {
                "high"
            } else if level < mean - 10.0 {
                "low"
            } else {
                "normal"
            });
            lon.push(x);
            lat.push(y);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(time).with_timezone("UTC")),
        Arc::new(StringArray::from(station)),
        Arc::new(StringArray::from(water)),
        Arc::new(Float64Array::from(value)),
        Arc::new(StringArray::from(state)),
        Arc::new(Float64Array::from(lon)),
        Arc::new(Float64Array::from(lat)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
