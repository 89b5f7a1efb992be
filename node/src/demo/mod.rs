//! `urbanmesh demo`: five towns of Ostwestfalen-Lippe, each its own node with its own
//! water-level stations, joined into one federation by invitations, on this machine.
//! The data is deterministic: a month of 15-minute levels with a daily rhythm, a seasonal
//! drift and a flood wave on the Werre that reaches Detmold, Bad Salzuflen and Herford
//! one after another. Herford also has its town centre's weather and pedestrian counts.

mod town_centre;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DurationRound, TimeDelta, Utc};
use urbanmesh_catalog::DatasetSpec;

use crate::cli::{DemoArgs, InitArgs, RunArgs};
use crate::config::Config;
use crate::init::{self, TOKEN_FILE};
use crate::node::{self, RunningNode};

const STEP_MINUTES: i64 = 15;
const DAYS: i64 = 30;

/// A gauging station: name, water, longitude, latitude, mean level in cm, flood delay in hours.
type Station = (&'static str, &'static str, f64, f64, f64, f64);

struct Town {
    slug: &'static str,
    name: &'static str,
    ars: &'static str,
    stations: &'static [Station],
}

/// The demo's towns; the flood on the Werre starts at Detmold.
const TOWNS: [Town; 5] = [
    Town {
        slug: "guetersloh",
        name: "Gütersloh",
        ars: "057540008008",
        stations: &[
            ("Gütersloh Dalke", "Dalke", 8.3833, 51.9062, 84.0, 30.0),
            ("Avenwedde Ölbach", "Ölbach", 8.4291, 51.9317, 61.0, 33.0),
            ("Isselhorst Lutter", "Lutter", 8.4112, 51.9688, 118.0, 37.0),
        ],
    },
    Town {
        slug: "bielefeld",
        name: "Bielefeld",
        ars: "057110000000",
        stations: &[
            ("Bielefeld Johannisbach", "Johannisbach", 8.5326, 52.0476, 52.0, 28.0),
            ("Brake Aa", "Aa", 8.5968, 52.0735, 70.0, 30.0),
        ],
    },
    Town {
        slug: "herford",
        name: "Herford",
        ars: "057580012012",
        stations: &[
            ("Herford Werre", "Werre", 8.6782, 52.1128, 140.0, 16.0),
            ("Herford Aa", "Aa", 8.6612, 52.1204, 80.0, 20.0),
        ],
    },
    Town {
        slug: "detmold",
        name: "Detmold",
        ars: "057660020020",
        stations: &[
            ("Detmold Werre", "Werre", 8.8837, 51.9385, 95.0, 0.0),
            ("Berlebeck Berlebecke", "Berlebecke", 8.8541, 51.9122, 40.0, 1.0),
        ],
    },
    Town {
        slug: "bad-salzuflen",
        name: "Bad Salzuflen",
        ars: "057660008008",
        stations: &[
            ("Bad Salzuflen Werre", "Werre", 8.7473, 52.0862, 120.0, 8.0),
            ("Bad Salzuflen Salze", "Salze", 8.7380, 52.0822, 45.0, 6.0),
        ],
    },
];

pub(crate) async fn run(args: DemoArgs, query: tokio::runtime::Handle) -> anyhow::Result<()> {
    let stop = node::shutdown_signal();
    let towns = &TOWNS[..usize::from(args.nodes).min(TOWNS.len())];
    let mut nodes = Vec::with_capacity(towns.len());
    for town in towns {
        let node = start_town(&args.base_dir, town, query.clone()).await?;
        nodes.push(node);
    }
    federate(&nodes).await?;
    print_welcome(&args.base_dir, &nodes);
    stop.await;
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}

async fn start_town(base: &Path, town: &Town, query: tokio::runtime::Handle) -> anyhow::Result<RunningNode> {
    let data_dir = base.join(town.slug);
    if !Config::path(&data_dir).exists() {
        init::init(&InitArgs { data_dir: data_dir.clone(), name: town.name.into(), ars: Some(town.ars.into()) })?;
    }
    let loopback = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let run_args = RunArgs { data_dir, http: loopback, flight: loopback, p2p: None };
    let node = node::start(&run_args, query).await?;
    let dataset = dataset_id(town);
    if node.catalog.get(&dataset).is_err() {
        load_water_levels(&node, town).await?;
    }
    if town.slug == "herford" {
        town_centre::load(&node).await?;
    }
    Ok(node)
}

/// The first town invites the others; a second run finds them members already, on new
/// ports, so every node dials the others' current addresses.
async fn federate(nodes: &[RunningNode]) -> anyhow::Result<()> {
    let Some((founder, others)) = nodes.split_first() else { return Ok(()) };
    for (node, town) in others.iter().zip(&TOWNS[1..]) {
        if node.federation.status().await.federation.is_some() {
            continue;
        }
        let invitation = founder
            .federation
            .invite(Some("Pegelverbund OWL"), Some(town.name.into()), Duration::from_secs(600))
            .await?;
        node.federation.join(&invitation).await?;
        tracing::info!(town = town.name, "joined the demo federation");
    }
    for node in nodes {
        for other in nodes.iter().filter(|other| !std::ptr::eq(node, *other)) {
            node.federation.dial(&other.addresses.p2p).await?;
        }
    }
    Ok(())
}

fn dataset_id(town: &Town) -> String {
    format!("pegel-{}", town.slug)
}

async fn load_water_levels(node: &RunningNode, town: &Town) -> anyhow::Result<()> {
    let waters: Vec<&str> = town.stations.iter().map(|s| s.1).collect();
    let (west, south, east, north) = town.stations.iter().fold((180.0f64, 90.0f64, -180.0f64, -90.0f64), |b, s| {
        (b.0.min(s.2), b.1.min(s.3), b.2.max(s.2), b.3.max(s.3))
    });
    let mut keywords = vec!["Pegel", "Wasserstand", "Hochwasser"];
    keywords.extend(waters.iter().copied());
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
        "id": dataset_id(town),
        "title": format!("Pegelstände {}", town.name),
        "description": format!(
            "Wasserstände der Pegel an {} in {} im 15-Minuten-Takt (Beispieldaten).", waters.join(", "), town.name
        ),
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
        "keywords": keywords,
        "themes": ["ENVI"],
        "publisher": {"name": format!("Stadt {}", town.name), "type": "LocalAuthority"},
        "contact_point": {"name": "Umweltamt", "email": format!("umwelt@{}.de", town.slug)},
        "spatial": {"level": "municipality", "bbox": [west - 0.02, south - 0.02, east + 0.02, north + 0.02]},
        "accrual_periodicity": "15MIN",
        "licence": "dl-by-de/2.0",
        "attribution": format!("Stadt {}, Pegeldaten (Beispieldaten)", town.name),
        "policy": {"visibility": "public", "attribution": format!("Stadt {}", town.name), "licence": "dl-by-de/2.0"}
    }))?;
    let dataset = node.catalog.create(spec).await?;
    node.store.create(&dataset).await?;
    let batch = water_levels(dataset.arrow_schema()?, town.stations)?;
    let appended = node.store.append(dataset.id(), batch).await?;
    tracing::info!(town = town.name, rows = appended.rows, "loaded the demo's water levels");
    Ok(())
}

fn print_welcome(base: &Path, nodes: &[RunningNode]) {
    let towns = &TOWNS[..nodes.len()];
    println!("\nUrban Mesh demo — the federation \"Pegelverbund OWL\" of {} towns on this machine:\n", nodes.len());
    for (node, town) in nodes.iter().zip(towns) {
        println!("  {:<14} {}/api/v1/datasets   Flight {}", town.name, node.addresses.http, node.addresses.flight);
    }
    let first = &nodes[0];
    // Detmold, where the flood starts, when it runs; else the last town.
    let home = &towns[0];
    let away = towns.iter().find(|t| t.slug == "detmold").unwrap_or(&towns[towns.len() - 1]);
    println!("\nEach data directory ({}/<town>/) holds addresses.json and admin.token.", base.display());
    println!("\nSearch every town's catalogue from {}:\n", home.name);
    println!("  curl '{}/api/v1/search?q=Pegelstände&scope=federation'", first.addresses.http);
    let descriptor = if nodes.len() > 1 {
        println!("\nRead {}'s water levels through {}'s node with pyarrow:\n", away.name, home.name);
        format!("\"remote\", \"{}\", \"{}\"", away.name, dataset_id(away))
    } else {
        println!("\nRead {}'s water levels with pyarrow:\n", home.name);
        format!("\"{}\"", dataset_id(home))
    };
    println!("  import pyarrow.flight as fl");
    println!("  client = fl.FlightClient(\"{}\")", first.addresses.flight);
    println!("  info = client.get_flight_info(fl.FlightDescriptor.for_path({descriptor}))");
    println!("  df = client.do_get(info.endpoints[0].ticket).read_pandas()");
    if nodes.len() > 1 {
        println!(
            "\nOr as CSV from {}'s node: curl '{}/api/v1/federation/{}/datasets/{}/rows?format=csv&filter=state%20%3D%20%27high%27'",
            home.name,
            first.addresses.http,
            away.name,
            dataset_id(away)
        );
    }
    if towns.iter().any(|t| t.slug == "herford") {
        println!(
            "\nHerford shares its pedestrian counts ({}) with the members only as hourly sums over at least \
             ten people; its weather ({}) is public.",
            town_centre::PEDESTRIANS,
            town_centre::WEATHER
        );
    }
    println!("Admin token of {}: {}", home.name, base.join(home.slug).join(TOKEN_FILE).display());
    println!("\nPress Ctrl-C to stop all {} nodes.", nodes.len());
}

/// A month of levels ending now: a seasonal drift, a daily rhythm, some noise, and a flood
/// wave ten days ago that reaches each station after its delay. Deterministic in time.
fn water_levels(schema: arrow::datatypes::SchemaRef, stations: &[Station]) -> anyhow::Result<RecordBatch> {
    let step = TimeDelta::minutes(STEP_MINUTES);
    let end = Utc::now().duration_trunc(step)?;
    let start = end - TimeDelta::days(DAYS);
    let flood_peak = (end - TimeDelta::days(10)).timestamp_millis() as f64;
    let steps = DAYS * 24 * 60 / STEP_MINUTES;
    let (mut time, mut station, mut water, mut value, mut state, mut lon, mut lat) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for &(name, river, x, y, mean, delay_hours) in stations {
        for i in 0..steps {
            let at = (start + step * i as i32).timestamp_millis();
            let hours = at as f64 / 3.6e6;
            let seasonal = 8.0 * (hours / (24.0 * 17.0)).sin();
            let daily = 2.5 * (hours / 24.0 * std::f64::consts::TAU).sin();
            let noise = ((at / 900_000).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 - 0.5;
            let since_peak_hours = (at as f64 - flood_peak) / 3.6e6 - delay_hours;
            let amplitude = if river == "Werre" { 95.0 } else { 15.0 };
            let flood = amplitude * (-(since_peak_hours / 18.0).powi(2)).exp();
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
