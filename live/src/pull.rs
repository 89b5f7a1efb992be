//! Pull connectors: PEGELONLINE's water levels, and rows from any JSON API, fetched every
//! `every` from the newest stored time on. A pull that overlaps the last one stores no
//! duplicates (the sink leaves stored keys out); a failed pull is retried after a pause
//! that doubles up to `every`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::message::{self, MessageLimits};
use crate::path::JsonPath;
use crate::sink::Sink;
use crate::status::ConnectorState;

/// A pull resumes this far before the newest stored time, for values that arrived late.
const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::hours(1);
const TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// Station descriptions are fetched again after this long.
const STATIONS_FRESH: Duration = Duration::from_secs(3600);

/// What is pulled.
pub(crate) enum Pull {
    Pegelonline { base: url::Url, stations: Vec<String> },
    HttpJson { url: String, rows: Option<JsonPath> },
}

/// Pulls every `every` until `stop` is set.
pub(crate) async fn run(
    pull: Pull,
    every: Duration,
    mut sink: Sink,
    limits: MessageLimits,
    mut stop: watch::Receiver<bool>,
) {
    let tracker = Arc::clone(&sink.tracker);
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("urbanmesh/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracker.failed(format!("cannot build an HTTP client: {error}"));
            return;
        }
    };
    // Where every series resumes until it has been pulled once: computed before the first
    // pull, so that one series' rows do not move another's start.
    let resume = sink.newest_stored().map(|newest| newest - OVERLAP);
    let mut puller = Puller { client, limits, since: HashMap::new(), resume, stations: None };
    let mut pause = FIRST_PAUSE;
    loop {
        tracker.set_state(ConnectorState::Pulling);
        let wait = match puller.pull(&pull, &mut sink).await {
            Ok(()) => {
                tracker.succeeded(ConnectorState::Waiting);
                pause = FIRST_PAUSE;
                every
            }
            Err(error) => {
                tracker.failed(error);
                let wait = pause.min(every);
                pause = (pause * 2).min(every);
                wait
            }
        };
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracker.set_state(ConnectorState::Stopped);
}

struct Puller {
    client: reqwest::Client,
    limits: MessageLimits,
    /// The newest time pulled, per station (`""` for an `http-json` source).
    since: HashMap<String, DateTime<Utc>>,
    /// Where a series not pulled yet starts: the newest stored time at start, less an overlap.
    resume: Option<DateTime<Utc>>,
    stations: Option<(tokio::time::Instant, HashMap<String, Value>)>,
}

impl Puller {
    async fn pull(&mut self, pull: &Pull, sink: &mut Sink) -> Result<(), String> {
        match pull {
            Pull::Pegelonline { base, stations } => {
                let described = self.stations(base).await?;
                for uuid in stations {
                    let station = described
                        .get(uuid)
                        .cloned()
                        .ok_or_else(|| format!("station `{uuid}` is not in {base}/stations.json"))?;
                    let mut url = join(base, &format!("stations/{uuid}/W/measurements.json"))?;
                    if let Some(start) = self.start(uuid) {
                        url.query_pairs_mut().append_pair("start", &start.to_rfc3339_opts(SecondsFormat::Secs, false));
                    }
                    let measurements = self.fetch(url.as_str()).await?;
                    let Value::Array(measurements) = measurements else {
                        return Err(format!("{url} did not answer with an array of measurements"));
                    };
                    let rows: Vec<Value> = measurements
                        .into_iter()
                        .map(|m| json!({"station": station, "timestamp": m.get("timestamp"), "value": m.get("value")}))
                        .collect();
                    self.store(sink, url.as_str(), uuid, &Value::Array(rows), None).await?;
                }
                Ok(())
            }
            Pull::HttpJson { url, rows } => {
                let start = self.start("").map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default();
                let url =
                    url.replace("{start}", &url::form_urlencoded::byte_serialize(start.as_bytes()).collect::<String>());
                let document = self.fetch(&url).await?;
                self.store(sink, &url, "", &document, rows.as_ref()).await
            }
        }
    }

    /// Maps and stores one response; a response that does not map goes to the dead letters
    /// whole, and the pull goes on.
    async fn store(
        &mut self,
        sink: &mut Sink,
        url: &str,
        series: &str,
        document: &Value,
        rows: Option<&JsonPath>,
    ) -> Result<(), String> {
        sink.tracker.received(1);
        if matches!(document, Value::Array(items) if items.is_empty()) {
            return Ok(());
        }
        match message::table(document, rows, sink.mapper(), self.limits) {
            Ok(batch) => {
                let newest = sink.mapper().time.and_then(|index| newest(&batch, index));
                sink.write(&[batch]).await.map_err(|e| format!("cannot store the rows: {e}"))?;
                if let Some(newest) = newest {
                    let since = self.since.entry(series.to_owned()).or_insert(newest);
                    *since = (*since).max(newest);
                }
            }
            Err(reason) => {
                let payload = serde_json::to_vec(document).unwrap_or_default();
                sink.tracker.rejected(Some(url), &payload, format!("the response {reason}"));
            }
        }
        Ok(())
    }

    /// Where the next pull of `series` starts: the newest time pulled, or at its first
    /// pull the newest stored time when the connector started, less an overlap.
    fn start(&self, series: &str) -> Option<DateTime<Utc>> {
        self.since.get(series).copied().or(self.resume)
    }

    /// PEGELONLINE's stations by UUID, fetched again once an hour.
    async fn stations(&mut self, base: &url::Url) -> Result<HashMap<String, Value>, String> {
        if let Some((fetched, stations)) = &self.stations
            && fetched.elapsed() < STATIONS_FRESH
        {
            return Ok(stations.clone());
        }
        let url = join(base, "stations.json")?;
        let Value::Array(list) = self.fetch(url.as_str()).await? else {
            return Err(format!("{url} did not answer with an array of stations"));
        };
        let stations: HashMap<String, Value> =
            list.into_iter().filter_map(|station| Some((station.get("uuid")?.as_str()?.to_owned(), station))).collect();
        self.stations = Some((tokio::time::Instant::now(), stations.clone()));
        Ok(stations)
    }

    /// One GET, its body bounded, read as JSON.
    async fn fetch(&self, url: &str) -> Result<Value, String> {
        let mut response = self.client.get(url).send().await.map_err(|e| format!("GET {url} failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| format!("GET {url}: reading the body failed: {e}"))?
        {
            if body.len() + chunk.len() > self.limits.bytes {
                return Err(format!("GET {url}: the body is over the limit of {} bytes", self.limits.bytes));
            }
            body.extend_from_slice(&chunk);
        }
        message::parse(&body, self.limits).map_err(|reason| format!("GET {url}: the body {reason}"))
    }
}

fn join(base: &url::Url, path: &str) -> Result<url::Url, String> {
    let base = if base.path().ends_with('/') {
        base.clone()
    } else {
        url::Url::parse(&format!("{base}/")).map_err(|e| e.to_string())?
    };
    base.join(path).map_err(|e| format!("cannot form a URL from {base} and {path}: {e}"))
}

/// The newest value of the timestamp column `index`.
fn newest(batch: &datafusion::arrow::record_batch::RecordBatch, index: usize) -> Option<DateTime<Utc>> {
    let extent = urbanmesh_store::TimeExtent::of(batch, index)?;
    DateTime::from_timestamp_micros(extent.last_micros)
}
