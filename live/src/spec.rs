//! A connector as staff define it (over the API or in the config file), and its check
//! against the dataset it fills: every refusal names the field at fault.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use urbanmesh_catalog::Dataset;
use urbanmesh_policy::Span;

use crate::LiveError;
use crate::mapping::Mapper;
use crate::path::JsonPath;

/// Where rows come from, and which dataset they go to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// Lowercase letters, digits and hyphens, at most 64.
    pub id: String,
    /// The local dataset the rows are appended to.
    pub dataset: String,
    pub kind: ConnectorKind,
    /// `mqtt://host:1883` or `mqtts://host:8883` for MQTT; the API's base URL
    /// (`…/rest-api/v2`) for PEGELONLINE; the URL to pull for `http-json`, where `{start}`
    /// stands for the newest stored time.
    pub url: String,
    /// MQTT topic filter, such as `v3/+/devices/+/up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// How an MQTT message is read; `json` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<MessageFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Never returned.
    #[serde(default, skip_serializing)]
    #[schema(write_only)]
    pub password: Option<String>,
    /// PEM certificates of the authority that signs the broker's certificate (`mqtts://`),
    /// when it is not one the system trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// The MQTT client id, which names the broker's persistent session; derived from the
    /// node and the connector when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// PEGELONLINE station UUIDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<String>,
    /// How often a pull connector pulls; `1m` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "5m")]
    pub every: Option<Span>,
    /// `http-json`: the path of the array of rows in the response; the response itself
    /// (an array, or one object) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<String>,
    #[serde(default)]
    pub mapping: ConnectorMapping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectorKind {
    /// Subscribes to an MQTT broker.
    Mqtt,
    /// Pulls water levels from a PEGELONLINE-shaped REST API.
    Pegelonline,
    /// Pulls rows from any JSON API.
    HttpJson,
}

/// How an MQTT message is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MessageFormat {
    /// The Things Stack v3 uplink JSON.
    Ttn,
    /// One JSON object, or an array of row objects.
    Json,
}

/// Which value of a message each column takes, and which columns say that a row is
/// already stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorMapping {
    /// Column → path in the message (`uplink_message.decoded_payload.level`). A column
    /// left out takes the format's default path.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Columns whose values identify a row; a row whose key is stored is not stored again.
    /// The dataset's series key and time column when left out.
    #[serde(default)]
    pub key: Vec<String>,
}

/// Where a checked connector reads from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Mqtt(Mqtt),
    Pegelonline { base: url::Url, stations: Vec<String>, every: Span },
    HttpJson { url: String, every: Span, rows: Option<JsonPath> },
}

#[derive(Debug, Clone)]
pub(crate) struct Mqtt {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) topic: String,
    pub(crate) format: MessageFormat,
    pub(crate) client_id: String,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) ca: Option<String>,
}

/// A connector checked against its dataset: ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) source: Source,
    pub(crate) mapper: Mapper,
}

const LONGEST_ID: usize = 64;
const LONGEST_TEXT: usize = 1024;
const MOST_STATIONS: usize = 500;
const DEFAULT_EVERY: u16 = 60;

impl ConnectorSpec {
    /// Checks the definition against `dataset` (the one it names): the first fault, by field.
    pub(crate) fn plan(&self, dataset: &Dataset, node: &str) -> Result<Plan, LiveError> {
        check_id(&self.id)?;
        for (field, text) in
            [("username", &self.username), ("password", &self.password), ("client_id", &self.client_id)]
        {
            if text.as_ref().is_some_and(|t| t.len() > LONGEST_TEXT) {
                return Err(invalid(field, format!("is longer than {LONGEST_TEXT} bytes")));
            }
        }
        let source = match self.kind {
            ConnectorKind::Mqtt => Source::Mqtt(self.mqtt(node)?),
            ConnectorKind::Pegelonline => {
                self.only_for_mqtt()?;
                self.not_given("rows", self.rows.is_some(), "http-json")?;
                Source::Pegelonline { base: self.http_url()?, stations: self.stations()?, every: self.every()? }
            }
            ConnectorKind::HttpJson => {
                self.only_for_mqtt()?;
                self.not_given("stations", !self.stations.is_empty(), "pegelonline")?;
                self.http_url()?;
                let rows = self.rows.as_deref().map(|rows| path("rows", rows)).transpose()?;
                Source::HttpJson { url: self.url.clone(), every: self.every()?, rows }
            }
        };
        let format = match &source {
            Source::Mqtt(mqtt) => Defaults::from(mqtt.format),
            Source::Pegelonline { .. } => Defaults::Pegelonline,
            Source::HttpJson { .. } => Defaults::Json,
        };
        let mapper = Mapper::new(dataset, &self.mapping, format)?;
        Ok(Plan { source, mapper })
    }

    fn mqtt(&self, node: &str) -> Result<Mqtt, LiveError> {
        self.not_given("stations", !self.stations.is_empty(), "pegelonline")?;
        self.not_given("every", self.every.is_some(), "pegelonline and http-json")?;
        self.not_given("rows", self.rows.is_some(), "http-json")?;
        let url = url::Url::parse(&self.url).map_err(|e| invalid("url", format!("is not a URL: {e}")))?;
        let tls = match url.scheme() {
            "mqtt" => false,
            "mqtts" => true,
            other => {
                return Err(invalid("url", format!("has scheme `{other}`; an MQTT broker is mqtt:// or mqtts://")));
            }
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || !url.username().is_empty() {
            return Err(invalid(
                "url",
                "names a broker only (mqtt://host:port); give the topic in `topic` and credentials in `username` and `password`",
            ));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| invalid("url", "has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let topic = self.topic.clone().ok_or_else(|| invalid("topic", "is required for an MQTT connector"))?;
        if topic.is_empty() || topic.len() > LONGEST_TEXT || !rumqttc::valid_filter(&topic) {
            return Err(invalid(
                "topic",
                format!("`{topic}` is not an MQTT topic filter (`+` for one level, `#` only at the end)"),
            ));
        }
        if self.ca.is_some() && !tls {
            return Err(invalid("ca", "applies to mqtts:// brokers only"));
        }
        if let Some(ca) = &self.ca {
            crate::mqtt::roots(Some(ca)).map_err(|reason| invalid("ca", reason))?;
        }
        let credentials = match (&self.username, &self.password) {
            (Some(user), password) => Some((user.clone(), password.clone().unwrap_or_default())),
            (None, Some(_)) => return Err(invalid("username", "is required with a password")),
            (None, None) => None,
        };
        Ok(Mqtt {
            port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
            host,
            tls,
            topic,
            format: self.format.unwrap_or(MessageFormat::Json),
            client_id: self.client_id.clone().unwrap_or_else(|| format!("urbanmesh-{node}-{}", self.id)),
            credentials,
            ca: self.ca.clone(),
        })
    }

    /// Refuses the MQTT-only fields on a pull connector.
    fn only_for_mqtt(&self) -> Result<(), LiveError> {
        for (field, given) in [
            ("topic", self.topic.is_some()),
            ("format", self.format.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("ca", self.ca.is_some()),
            ("client_id", self.client_id.is_some()),
        ] {
            self.not_given(field, given, "mqtt")?;
        }
        Ok(())
    }

    fn not_given(&self, field: &str, given: bool, kinds: &str) -> Result<(), LiveError> {
        if given {
            return Err(invalid(field, format!("applies to {kinds} connectors only, not to {}", self.kind.name())));
        }
        Ok(())
    }

    fn http_url(&self) -> Result<url::Url, LiveError> {
        let url = url::Url::parse(&self.url.replace("{start}", ""))
            .map_err(|e| invalid("url", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("url", format!("`{}` is not an http:// or https:// URL", self.url)));
        }
        Ok(url)
    }

    fn stations(&self) -> Result<Vec<String>, LiveError> {
        if self.stations.is_empty() || self.stations.len() > MOST_STATIONS {
            return Err(invalid("stations", format!("names 1 to {MOST_STATIONS} station UUIDs")));
        }
        for (index, station) in self.stations.iter().enumerate() {
            if station.is_empty() || station.len() > 64 || !station.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(invalid(format!("stations[{index}]"), format!("`{station}` is not a station UUID")));
            }
        }
        Ok(self.stations.clone())
    }

    fn every(&self) -> Result<Span, LiveError> {
        let every = self.every.clone().unwrap_or_else(|| Span::seconds(DEFAULT_EVERY));
        if every.get() < std::time::Duration::from_secs(1) || every.get() > std::time::Duration::from_secs(86_400) {
            return Err(invalid("every", format!("is `{every}`; pull at least every day and at most every second")));
        }
        Ok(every)
    }
}

impl ConnectorKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Pegelonline => "pegelonline",
            Self::HttpJson => "http-json",
        }
    }
}

/// The paths a column takes when the mapping leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defaults {
    /// A column's own name, at the top of the row.
    Json,
    /// The time from `received_at`, the series from the device id, others from the
    /// decoded payload.
    Ttn,
    /// The time from `timestamp`, the series from the station's short name.
    Pegelonline,
}

impl From<MessageFormat> for Defaults {
    fn from(format: MessageFormat) -> Self {
        match format {
            MessageFormat::Ttn => Self::Ttn,
            MessageFormat::Json => Self::Json,
        }
    }
}

fn check_id(id: &str) -> Result<(), LiveError> {
    let fits = !id.is_empty()
        && id.len() <= LONGEST_ID
        && !id.starts_with('-')
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if fits {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("must be 1 to {LONGEST_ID} lowercase letters, digits and hyphens, not starting with a hyphen"),
        ))
    }
}

pub(crate) fn path(field: &str, text: &str) -> Result<JsonPath, LiveError> {
    text.parse().map_err(|e: crate::path::BadPath| invalid(field, format!("is not a path: {}", e.0)))
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LiveError {
    LiveError::Invalid { field: field.into(), reason: reason.into() }
}

/// A definition checked against its dataset: what the API checks before storing it.
pub fn check(spec: &ConnectorSpec, dataset: &Dataset, node: &str) -> Result<Checked, LiveError> {
    Ok(Checked { plan: spec.plan(dataset, node)? })
}

/// A connector ready to read messages.
#[derive(Debug, Clone)]
pub struct Checked {
    plan: Plan,
}

impl Checked {
    /// The rows of one message (an MQTT payload, or a pulled document), all or none, with
    /// the reason for none.
    pub fn read(&self, payload: &[u8]) -> Result<datafusion::arrow::record_batch::RecordBatch, String> {
        let limits = crate::MessageLimits::default();
        match &self.plan.source {
            Source::Mqtt(mqtt) => crate::message::rows(payload, mqtt.format, &self.plan.mapper, limits),
            Source::HttpJson { rows, .. } => crate::message::table(
                &crate::message::parse(payload, limits)?,
                rows.as_ref(),
                &self.plan.mapper,
                limits,
            ),
            Source::Pegelonline { .. } => {
                crate::message::table(&crate::message::parse(payload, limits)?, None, &self.plan.mapper, limits)
            }
        }
    }
}
