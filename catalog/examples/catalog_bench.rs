//! Catalogue benchmark: 100k synthetic datasets. Prints bulk indexing rate, search
//! latency (p50/p99 per query kind, against a linear scan of the records as the
//! reference), and full Turtle export time and peak memory at growing sizes.
//!
//! `cargo run --release -p urbanmesh-catalog --example catalog_bench [-- DATASETS]`

use std::io::Write;
use std::time::{Duration, Instant};

use urbanmesh_catalog::dcat::{self, RdfSyntax};
use urbanmesh_catalog::search::{SearchParams, SearchRequest};
use urbanmesh_catalog::{Catalog, CatalogInfo, DatasetSpec, Endpoints};

const SUBJECTS: [&str; 12] = [
    "Pegelstände",
    "Wasserstände",
    "Fußgängerzählung",
    "Luftqualität",
    "Verkehrszählung",
    "Parkplätze",
    "Haushaltsplan",
    "Bebauungspläne",
    "Schulstandorte",
    "Radverkehr",
    "Niederschlag",
    "Lärmkartierung",
];
const PLACES: [&str; 10] = [
    "Gütersloh",
    "Bielefeld",
    "Herford",
    "Detmold",
    "Bad Salzuflen",
    "Lemgo",
    "Minden",
    "Paderborn",
    "Höxter",
    "Lippstadt",
];
const WATERS: [&str; 6] = ["Ems", "Werre", "Lutter", "Dalke", "Bega", "Weser"];
const THEMES: [&str; 6] = ["ENVI", "TRAN", "REGI", "GOVE", "ECON", "EDUC"];
const LICENCES: [&str; 4] = ["dl-zero-de/2.0", "dl-by-de/2.0", "cc-by/4.0", "cc-zero"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::args().nth(1).map_or(Ok(100_000), |n| n.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let open = || {
        let db = sled::open(dir.path().join("meta"))?;
        Ok::<_, Box<dyn std::error::Error>>(Catalog::open(
            db,
            CatalogInfo::for_municipality("Ostwestfalen-Lippe"),
            &dir.path().join("index"),
        )?)
    };
    let catalog = open()?;
    let endpoints =
        Endpoints { http: "https://daten.example.de".into(), flight: "grpc://daten.example.de:8815".into() };
    println!("catalog_bench: {total} synthetic datasets, machine: {}", machine());

    let mut created = 0;
    let mut create_time = Duration::ZERO;
    let mut export_rows = Vec::new();
    for checkpoint in [total / 10, total / 2, total] {
        let specs: Vec<DatasetSpec> = (created..checkpoint).map(spec).collect::<Result<_, _>>()?;
        let started = Instant::now();
        for chunk in specs.chunks(10_000) {
            runtime.block_on(catalog.create_many(chunk.to_vec()))?;
        }
        runtime.block_on(catalog.sync_index())?;
        create_time += started.elapsed();
        created = checkpoint;
        export_rows.push(export(&catalog, &endpoints, created)?);
    }
    println!(
        "bulk create + index: {created} datasets in {:.2} s = {:.0} datasets/s (sled batch + fsync + tantivy commit)",
        create_time.as_secs_f64(),
        created as f64 / create_time.as_secs_f64()
    );
    drop(catalog);
    std::fs::remove_dir_all(dir.path().join("index"))?;
    let started = Instant::now();
    let catalog = open()?;
    let rebuild = started.elapsed();
    println!(
        "index rebuild from sled: {created} datasets in {:.2} s = {:.0} datasets/s",
        rebuild.as_secs_f64(),
        created as f64 / rebuild.as_secs_f64()
    );

    println!("search latency over {created} datasets (1 thread, 500 queries per kind, after 50 warm-up);");
    println!("warm: the same search again (facet counts cached per index generation, as when paging);");
    println!("cold: every search distinct (an always-true filter varied), so facets are counted each time:");
    println!(
        "  {:<34} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "query", "warm p50", "warm p99", "cold p50", "cold p99", "hits", "scan p50 ms"
    );
    let kinds: [(&str, &[(&str, &str)], Option<&str>); 7] = [
        ("one word (Pegelstände)", &[("q", "Pegelstände")], Some("pegelst")),
        ("two words (Pegelstände Ems)", &[("q", "Pegelstände Ems")], Some("ems")),
        ("compound part (Zählung)", &[("q", "Zählung")], Some("zählung")),
        (
            "word + theme + licence facet",
            &[("q", "Wasserstände"), ("theme", "ENVI"), ("licence", "dl-by-de/2.0")],
            None,
        ),
        ("bbox + time range", &[("bbox", "8.3,51.8,8.6,52.0"), ("from", "2024-01-01"), ("to", "2024-06-30")], None),
        ("no query, newest first, page 5", &[("sort", "modified"), ("page", "5")], None),
        ("phrase (\"Luftqualität Herford\")", &[("q", "\"Luftqualität Herford\"")], None),
    ];
    for (name, pairs, scan_word) in kinds {
        let request = request(pairs)?;
        for _ in 0..50 {
            catalog.search(&request)?;
        }
        let mut times = Vec::with_capacity(500);
        let mut hits = 0;
        for _ in 0..500 {
            let started = Instant::now();
            hits = catalog.search(&request)?.total;
            times.push(started.elapsed());
        }
        let mut cold = Vec::with_capacity(500);
        for i in 0..500 {
            let request = varied(pairs, i)?;
            let started = Instant::now();
            std::hint::black_box(catalog.search(&request)?.total);
            cold.push(started.elapsed());
        }
        let (cold50, cold99) = percentiles(&mut cold);
        let scan = match scan_word {
            Some(word) => format!("{:.1}", median_ms(scan_times(&catalog, word)?)),
            None => "-".into(),
        };
        let (p50, p99) = percentiles(&mut times);
        println!("  {name:<34} {p50:>9.3} {p99:>9.3} {cold50:>9.3} {cold99:>9.3} {hits:>9} {scan:>12}");
    }
    println!("full Turtle export (streamed to a byte counter):");
    println!("  {:>9} {:>9} {:>10} {:>14} {:>12}", "datasets", "seconds", "MB", "datasets/s", "peak RSS +MB");
    for line in export_rows {
        println!("  {line}");
    }
    Ok(())
}

fn spec(i: usize) -> Result<DatasetSpec, serde_json::Error> {
    let subject = SUBJECTS[i % SUBJECTS.len()];
    let place = PLACES[(i / 7) % PLACES.len()];
    let water = WATERS[(i / 3) % WATERS.len()];
    let west = 8.0 + (i % 100) as f64 * 0.01;
    let south = 51.5 + (i % 50) as f64 * 0.01;
    let year = 2015 + i % 10;
    serde_json::from_value(serde_json::json!({
        "id": format!("ds-{i:06}"),
        "title": format!("{subject} {place} {i}"),
        "description": format!("{subject} in {place} an der {water}, erhoben von der Stadt {place}; Datensatz Nummer {i}."),
        "keywords": [subject, place, water],
        "themes": [THEMES[i % THEMES.len()], THEMES[(i / 6) % THEMES.len()]],
        "licence": LICENCES[i % LICENCES.len()],
        "publisher": {"name": format!("Stadt {place}"), "type": "LocalAuthority"},
        "spatial": {"bbox": [west, south, west + 0.2, south + 0.1]},
        "temporal": {"start": format!("{year}-01-01"), "end": format!("{year}-12-31")},
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "value", "type": "float64"}]},
        "time_column": "time",
        "policy": {"visibility": "public"},
    }))
}

fn request(pairs: &[(&str, &str)]) -> Result<SearchRequest, Box<dyn std::error::Error>> {
    let map: serde_json::Map<String, serde_json::Value> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
    let params: SearchParams = serde_json::from_value(serde_json::Value::Object(map))?;
    Ok(SearchRequest::parse(params)?)
}

/// The same search made distinct by a filter that admits every dataset anyway.
fn varied(pairs: &[(&str, &str)], i: usize) -> Result<SearchRequest, Box<dyn std::error::Error>> {
    let mut owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    match owned.iter_mut().find(|(k, _)| k == "bbox") {
        Some((_, bbox)) => *bbox = format!("8.3,51.8,{:.7},52.0", 8.6 + i as f64 * 1e-7),
        None => owned.push(("from".into(), format!("{}-01-01", 1000 + i))),
    }
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    request(&borrowed)
}

/// The reference: what a catalogue without an index does, a pass over every record.
fn scan_times(catalog: &Catalog, word: &str) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut found = 0usize;
        for dataset in catalog.iter() {
            let dataset = dataset?;
            found += usize::from(dataset.spec.title.to_lowercase().contains(word));
        }
        std::hint::black_box(found);
        times.push(started.elapsed());
    }
    Ok(times)
}

fn export(catalog: &Catalog, endpoints: &Endpoints, datasets: usize) -> Result<String, Box<dyn std::error::Error>> {
    reset_peak_rss();
    let before = rss_mb("VmRSS");
    let started = Instant::now();
    let counter = dcat::write_catalog(
        catalog,
        endpoints,
        RdfSyntax::Turtle,
        None,
        &urbanmesh_policy::Subject::Admin,
        Counter(0),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = rss_mb("VmHWM") - before;
    Ok(format!(
        "{datasets:>9} {seconds:>9.2} {:>10.1} {:>14.0} {peak:>12.1}",
        counter.0 as f64 / 1e6,
        datasets as f64 / seconds
    ))
}

struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0 += data.len();
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    percentiles(&mut times).0
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cpu}, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()))
}
