//! `urbanmesh demo`: five towns of Ostwestfalen-Lippe, each its own node with its own
//! water-level stations, joined into one federation by invitations, on this machine.
//! The data is deterministic: a month of 15-minute levels with a daily rhythm, a seasonal
//! drift and a flood wave on the Werre that reaches Detmold, Bad Salzuflen and Herford
//! one after another. Herford also has its town centre's weather and pedestrian counts.

mod pegel_owl;
mod town_centre;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DurationRound, TimeDelta, Utc};
use urbanmesh_catalog::DatasetSpec;

use urbanmesh::init::{self, TOKEN_FILE};
use urbanmesh::{Config, Overrides, RunningNode};

use crate::cli::DemoArgs;

const STEP_MINUTES: i64 = 15;
const DAYS: i64 = 30;

/// A gauging station, described as PEGELONLINE describes its stations.
struct Station {
    name: &'static str,
    water: &'static str,
    lon: f64,
    lat: f64,
    /// Mean water level above gauge zero.
    mean_cm: f64,
    /// Hours the Werre's flood wave needs from Detmold to here.
    delay_hours: f64,
    /// River kilometre.
    km: f64,
    /// Gauge zero in metres above NHN.
    gauge_zero: f64,
}

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
            Station {
                name: "Gütersloh Dalke",
                water: "Dalke",
                lon: 8.3833,
                lat: 51.9062,
                mean_cm: 84.0,
                delay_hours: 30.0,
                km: 12.4,
                gauge_zero: 72.31,
            },
            Station {
                name: "Avenwedde Ölbach",
                water: "Ölbach",
                lon: 8.4291,
                lat: 51.9317,
                mean_cm: 61.0,
                delay_hours: 33.0,
                km: 8.9,
                gauge_zero: 75.02,
            },
            Station {
                name: "Isselhorst Lutter",
                water: "Lutter",
                lon: 8.4112,
                lat: 51.9688,
                mean_cm: 118.0,
                delay_hours: 37.0,
                km: 21.7,
                gauge_zero: 81.45,
            },
        ],
    },
    Town {
        slug: "bielefeld",
        name: "Bielefeld",
        ars: "057110000000",
        stations: &[
            Station {
                name: "Bielefeld Johannisbach",
                water: "Johannisbach",
                lon: 8.5326,
                lat: 52.0476,
                mean_cm: 52.0,
                delay_hours: 28.0,
                km: 6.3,
                gauge_zero: 104.18,
            },
            Station {
                name: "Brake Aa",
                water: "Aa",
                lon: 8.5968,
                lat: 52.0735,
                mean_cm: 70.0,
                delay_hours: 30.0,
                km: 17.2,
                gauge_zero: 78.66,
            },
        ],
    },
    Town {
        slug: "herford",
        name: "Herford",
        ars: "057580012012",
        stations: &[
            Station {
                name: "Herford Werre",
                water: "Werre",
                lon: 8.6782,
                lat: 52.1128,
                mean_cm: 140.0,
                delay_hours: 16.0,
                km: 17.9,
                gauge_zero: 56.12,
            },
            Station {
                name: "Herford Aa",
                water: "Aa",
                lon: 8.6612,
                lat: 52.1204,
                mean_cm: 80.0,
                delay_hours: 20.0,
                km: 2.1,
                gauge_zero: 58.4,
            },
        ],
    },
    Town {
        slug: "detmold",
        name: "Detmold",
        ars: "057660020020",
        stations: &[
            Station {
                name: "Detmold Werre",
                water: "Werre",
                lon: 8.8837,
                lat: 51.9385,
                mean_cm: 95.0,
                delay_hours: 0.0,
                km: 62.5,
                gauge_zero: 126.73,
            },
            Station {
                name: "Berlebeck Berlebecke",
                water: "Berlebecke",
                lon: 8.8541,
                lat: 51.9122,
                mean_cm: 40.0,
                delay_hours: 1.0,
                km: 3.4,
                gauge_zero: 158.2,
            },
        ],
    },
    Town {
        slug: "bad-salzuflen",
        name: "Bad Salzuflen",
        ars: "057660008008",
        stations: &[
            Station {
                name: "Bad Salzuflen Werre",
                water: "Werre",
                lon: 8.7473,
                lat: 52.0862,
                mean_cm: 120.0,
                delay_hours: 8.0,
                km: 34.8,
                gauge_zero: 70.95,
            },
            Station {
                name: "Bad Salzuflen Salze",
                water: "Salze",
                lon: 8.7380,
                lat: 52.0822,
                mean_cm: 45.0,
                delay_hours: 6.0,
                km: 1.6,
                gauge_zero: 72.37,
            },
        ],
    },
];

pub(crate) async fn run(args: DemoArgs, query: tokio::runtime::Handle) -> anyhow::Result<()> {
    let stop = urbanmesh::shutdown_signal();
    let towns = &TOWNS[..usize::from(args.nodes).min(TOWNS.len())];
    let mut nodes = Vec::with_capacity(towns.len());
    for (index, town) in towns.iter().enumerate() {
        let node = start_town(&args.base_dir, town, index, query.clone()).await?;
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

/// The first town's portal is at http://127.0.0.1:8470, the next at 8471, …, and their
/// Flight at 8815, 8816, …, where those ports are free; any free port otherwise.
const FIRST_HTTP_PORT: u16 = 8470;
const FIRST_FLIGHT_PORT: u16 = 8815;

async fn start_town(
    base: &Path,
    town: &Town,
    index: usize,
    query: tokio::runtime::Handle,
) -> anyhow::Result<RunningNode> {
    let data_dir = base.join(town.slug);
    if !Config::path(&data_dir).exists() {
        init::init(&data_dir, town.name, Some(town.ars))?;
    }
    let offset = u16::try_from(index).unwrap_or(0);
    let overrides = Overrides {
        http: Some(loopback_port(FIRST_HTTP_PORT + offset)),
        flight: Some(loopback_port(FIRST_FLIGHT_PORT + offset)),
        ..Overrides::default()
    };
    let node = urbanmesh::start(&data_dir, Config::load(&data_dir, None, &overrides)?, query).await?;
    let dataset = dataset_id(town);
    if node.catalog.get(&dataset).is_err() {
        load_water_levels(&node, town).await?;
    }
    if town.slug == "herford" {
        town_centre::load(&node).await?;
        town_centre::dashboard(&node).await?;
    }
    pegel_owl::define(&node).await?;
    Ok(node)
}

/// `port` on loopback if nothing listens there, else any free port.
fn loopback_port(port: u16) -> SocketAddr {
    let wanted = SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpListener::bind(wanted) {
        Ok(_) => wanted,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
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
    let waters: Vec<&str> = town.stations.iter().map(|s| s.water).collect();
    let (west, south, east, north) = town.stations.iter().fold((180.0f64, 90.0f64, -180.0f64, -90.0f64), |b, s| {
        (b.0.min(s.lon), b.1.min(s.lat), b.2.max(s.lon), b.3.max(s.lat))
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
            {"name": "uuid", "type": "utf8", "description": "station uuid"},
            {"name": "number", "type": "utf8", "description": "station number"},
            {"name": "shortname", "type": "utf8"},
            {"name": "longname", "type": "utf8"},
            {"name": "water", "type": "utf8"},
            {"name": "km", "type": "float64", "description": "river kilometre"},
            {"name": "agency", "type": "utf8"},
            {"name": "lon", "type": "float64"},
            {"name": "lat", "type": "float64"},
            {"name": "value", "type": "float64", "unit": "cm", "description": "water level above gauge zero"},
            {"name": "state", "type": "utf8", "description": "low, normal or high"},
            {"name": "gauge_zero", "type": "float64", "unit": "m", "description": "gauge zero above NHN"}
        ]},
        "time_column": "time",
        "series_key": "uuid",
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
    let dataset = create(node, spec).await?;
    let batch = water_levels(dataset.arrow_schema(), town)?;
    let appended = node.store.append(dataset.id(), batch).await?;
    tracing::info!(town = town.name, rows = appended.rows, "loaded the demo's water levels");
    Ok(())
}

/// Publishes a dataset the way the REST API does: description and table, or neither.
async fn create(node: &RunningNode, spec: DatasetSpec) -> anyhow::Result<urbanmesh_catalog::Dataset> {
    Ok(urbanmesh_dataspace::publish(&node.catalog, &node.store, spec).await?)
}

fn print_welcome(base: &Path, nodes: &[RunningNode]) {
    let towns = &TOWNS[..nodes.len()];
    println!("\nUrban Mesh demo — the federation \"Pegelverbund OWL\" of {} towns on this machine.", nodes.len());
    println!("Open a town's portal in your browser:\n");
    for (node, town) in nodes.iter().zip(towns) {
        println!("  {:<14} {}/", town.name, node.addresses.http);
    }
    println!("\nTheir APIs and Flight endpoints:\n");
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
    if let Some((herford, _)) = nodes.iter().zip(towns).find(|(_, t)| t.slug == "herford") {
        println!(
            "\nHerford shares its pedestrian counts ({}) with the members only as hourly sums over at least \
             ten people; its weather ({}) is public. Its staff see both on one dashboard, built as the \
             workspace builds them (/admin/dashboards): {}/dashboards/{}",
            town_centre::PEDESTRIANS,
            town_centre::WEATHER,
            herford.addresses.http,
            town_centre::DASHBOARD
        );
    }
    println!(
        "\nThe regional view \"Pegelstände OWL\", assembled live from every town (stop one and its stations \
         turn stale):\n\n  curl '{http}/api/v1/views/{view}/rows?format=csv'\n  curl '{http}/api/v1/views/{view}/status'\n  \
         client.do_get(client.get_flight_info(fl.FlightDescriptor.for_path(\"views\", \"{view}\")).endpoints[0].ticket).read_pandas()\n",
        http = first.addresses.http,
        view = pegel_owl::VIEW
    );
    println!(
        "Map layers: {home}'s stations with their latest values by the SensorThings API, as Masterportal asks, \
         and every town's as GeoJSON:\n\n  curl '{http}/sta/v1.1/{layer}'\n  curl '{http}/api/v1/views/{view}/latest.geojson'\n",
        home = home.name,
        http = first.addresses.http,
        layer = "Things?$expand=Locations,Datastreams/Observations($orderby=phenomenonTime%20desc;$top=1)",
        view = pegel_owl::VIEW
    );
    print_sql(first, towns);
    println!("Admin token of {}: {}", home.name, base.join(home.slug).join(TOKEN_FILE).display());
    println!("Sign in to {}'s workspace with it: {}/admin", home.name, first.addresses.http);
    println!("\nPress Ctrl-C to stop all {} nodes.", nodes.len());
}

/// Every town's highest level per station in one SQL statement, asked at the first town.
fn print_sql(first: &RunningNode, towns: &[Town]) {
    let per_town: Vec<String> = towns
        .iter()
        .map(|town| {
            let table = urbanmesh_flight::table_name(town.name, &dataset_id(town));
            format!("SELECT '{}' AS town, shortname, max(value) AS top FROM {table} GROUP BY shortname", town.name)
        })
        .collect();
    println!(
        "SQL across the towns (pip install adbc-driver-flightsql); each GROUP BY runs in its own town:\n\n  \
         import adbc_driver_flightsql.dbapi as flightsql\n  \
         cur = flightsql.connect(\"{}\").cursor()\n  \
         cur.execute(\"\"\"{}\"\"\")\n  \
         print(cur.fetch_df())\n",
        first.addresses.flight,
        per_town.join("\n      UNION ALL ")
    );
}

/// A month of levels ending now: a seasonal drift, a daily rhythm, some noise, and a flood
/// wave ten days ago that reaches each station after its delay. Deterministic in time.
fn water_levels(schema: arrow::datatypes::SchemaRef, town: &Town) -> anyhow::Result<RecordBatch> {
    let step = TimeDelta::minutes(STEP_MINUTES);
    let end = Utc::now().duration_trunc(step)?;
    let start = end - TimeDelta::days(DAYS);
    let flood_peak = (end - TimeDelta::days(10)).timestamp_millis() as f64;
    let steps = DAYS * 24 * 60 / STEP_MINUTES;
    let agency = format!("Stadt {}, Umweltamt", town.name);
    let mut rows = Rows::default();
    for station in town.stations {
        let (uuid, number) = (station_uuid(station.name), station_number(station.name));
        let shortname = station.name.to_uppercase();
        for i in 0..steps {
            let at = (start + step * i as i32).timestamp_millis();
            let hours = at as f64 / 3.6e6;
            let seasonal = 8.0 * (hours / (24.0 * 17.0)).sin();
            let daily = 2.5 * (hours / 24.0 * std::f64::consts::TAU).sin();
            let noise = ((at / 900_000).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 - 0.5;
            let since_peak_hours = (at as f64 - flood_peak) / 3.6e6 - station.delay_hours;
            let amplitude = if station.water == "Werre" { 95.0 } else { 15.0 };
            let flood = amplitude * (-(since_peak_hours / 18.0).powi(2)).exp();
            let mean = station.mean_cm;
            let level = ((mean + seasonal + daily + noise + flood) * 10.0).round() / 10.0;
            rows.time.push(at);
            rows.uuid.push(uuid.clone());
            rows.number.push(number.clone());
            rows.shortname.push(shortname.clone());
            rows.longname.push(station.name);
            rows.water.push(station.water);
            rows.km.push(station.km);
            rows.agency.push(agency.clone());
            rows.lon.push(station.lon);
            rows.lat.push(station.lat);
            rows.value.push(level);
            rows.state.push(if level > mean + 40.0 {
                "high"
            } else if level < mean - 10.0 {
                "low"
            } else {
                "normal"
            });
            rows.gauge_zero.push(station.gauge_zero);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(rows.time).with_timezone("UTC")),
        Arc::new(StringArray::from(rows.uuid)),
        Arc::new(StringArray::from(rows.number)),
        Arc::new(StringArray::from(rows.shortname)),
        Arc::new(StringArray::from(rows.longname)),
        Arc::new(StringArray::from(rows.water)),
        Arc::new(Float64Array::from(rows.km)),
        Arc::new(StringArray::from(rows.agency)),
        Arc::new(Float64Array::from(rows.lon)),
        Arc::new(Float64Array::from(rows.lat)),
        Arc::new(Float64Array::from(rows.value)),
        Arc::new(StringArray::from(rows.state)),
        Arc::new(Float64Array::from(rows.gauge_zero)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The columns of the water levels, as they are built.
#[derive(Default)]
struct Rows {
    time: Vec<i64>,
    uuid: Vec<String>,
    number: Vec<String>,
    shortname: Vec<String>,
    longname: Vec<&'static str>,
    water: Vec<&'static str>,
    km: Vec<f64>,
    agency: Vec<String>,
    lon: Vec<f64>,
    lat: Vec<f64>,
    value: Vec<f64>,
    state: Vec<&'static str>,
    gauge_zero: Vec<f64>,
}

/// A stable UUID-shaped id from the station's name (FNV-1a, spread over 128 bits).
fn station_uuid(name: &str) -> String {
    let a = fnv(name, 0xcbf2_9ce4_8422_2325);
    let b = fnv(name, 0x8422_2325_cbf2_9ce4);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// A seven-digit station number from the station's name.
fn station_number(name: &str) -> String {
    format!("{:07}", fnv(name, 0xcbf2_9ce4_8422_2325) % 10_000_000)
}

fn fnv(text: &str, seed: u64) -> u64 {
    text.bytes().fold(seed, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}
