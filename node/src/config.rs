use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use urbanmesh_catalog::{CatalogInfo, ContactPoint, Publisher};

/// `config.toml` in the data directory. Every section and field has a default, so a file
/// written by an older `init` keeps working.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub(crate) node: NodeSection,
    #[serde(default = "default_http")]
    pub(crate) http: Listen,
    #[serde(default = "default_flight")]
    pub(crate) flight: Listen,
    /// Flight for other members (mutual TLS with certificates from the node keys).
    #[serde(default = "default_peer_flight")]
    pub(crate) peer_flight: Listen,
    #[serde(default)]
    pub(crate) p2p: P2pSection,
    #[serde(default)]
    pub(crate) limits: Limits,
    #[serde(default)]
    pub(crate) storage: Storage,
    /// How the node describes its catalogue; defaults derive from the node's name.
    #[serde(default)]
    pub(crate) catalog: CatalogSection,
    #[serde(default)]
    pub(crate) policy: PolicySection,
    #[serde(default)]
    pub(crate) audit: AuditSection,
    /// The municipality's OpenID provider (Keycloak); without it, only the admin token
    /// and member nodes are known subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) oidc: Option<OidcSection>,
    /// Connectors the operator declares here; each is stored (replacing one of the same
    /// id) when the node starts, and staff see and change it like any other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) connectors: Vec<urbanmesh_live::ConnectorSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PolicySection {
    /// Purposes a policy may require readers to state.
    pub(crate) purposes: Vec<String>,
}

impl Default for PolicySection {
    fn default() -> Self {
        let purposes = ["urban planning", "research", "public information", "emergency management", "statistics"];
        Self { purposes: purposes.iter().map(|p| (*p).to_owned()).collect() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuditSection {
    /// Access-log records older than this are removed.
    pub(crate) retention_days: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self { retention_days: 365 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcSection {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret: Option<String>,
    /// A file holding the client secret (a mounted secret), read at start where
    /// `client_secret` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret_file: Option<PathBuf>,
    /// The `aud` of bearer tokens for this node; the client id when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<String>,
    #[serde(default = "default_roles_claim")]
    pub(crate) roles_claim: String,
    /// Claim naming a person's municipality; roles count only where it equals `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tenant_claim: Option<String>,
    /// This municipality's value of `tenant_claim`; the node's name when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<String>,
    /// The JOSE `typ` headers accepted for bearer access tokens; RFC 9068's `at+jwt` when
    /// left out. A Keycloak that does not write `at+jwt` needs `["at+jwt", "JWT"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_types: Option<Vec<String>>,
}

fn default_roles_claim() -> String {
    "realm_access.roles".into()
}

impl OidcSection {
    pub(crate) fn settings(&self, node_name: &str) -> urbanmesh_policy::OidcSettings {
        urbanmesh_policy::OidcSettings {
            issuer: self.issuer.trim_end_matches('/').to_owned(),
            audience: self.audience.clone().unwrap_or_else(|| self.client_id.clone()),
            roles_claim: self.roles_claim.clone(),
            tenant_claim: self.tenant_claim.clone(),
            tenant: self.tenant.clone().unwrap_or_else(|| node_name.to_owned()),
            token_types: self
                .token_types
                .clone()
                .unwrap_or_else(|| vec![urbanmesh_policy::ACCESS_TOKEN_TYPE.to_owned()]),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CatalogSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) homepage: Option<String>,
    /// EU language code of the texts, `DEU` or `ENG`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) publisher: Option<Publisher>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) contact_point: Option<ContactPoint>,
}

impl Config {
    /// The catalogue description: configured fields over defaults from the node's name.
    pub(crate) fn catalog_info(&self) -> anyhow::Result<CatalogInfo> {
        let mut info = CatalogInfo::for_municipality(&self.node.name);
        let section = self.catalog.clone();
        info.title = section.title.unwrap_or(info.title);
        info.description = section.description.unwrap_or(info.description);
        info.homepage = section.homepage;
        info.language = section.language.unwrap_or(info.language);
        info.publisher = section.publisher.unwrap_or(info.publisher);
        info.contact_point = section.contact_point;
        info.geocoding = self.node.ars.as_ref().map(|ars| format!("regionalKey/{ars}"));
        info.validate().context("config.toml, section [catalog]")?;
        Ok(info)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSection {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ars: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listen {
    pub(crate) listen: SocketAddr,
    /// How clients outside reach this listener (behind a proxy, under a domain), e.g.
    /// `https://daten.guetersloh.de`; the bound address when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) public_url: Option<String>,
}

fn default_http() -> Listen {
    Listen { listen: SocketAddr::from(([127, 0, 0, 1], 8470)), public_url: None }
}

fn default_peer_flight() -> Listen {
    Listen { listen: SocketAddr::from(([127, 0, 0, 1], 0)), public_url: None }
}

fn default_flight() -> Listen {
    Listen { listen: SocketAddr::from(([127, 0, 0, 1], 8815)), public_url: None }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct P2pSection {
    /// libp2p listen multiaddresses (TCP and QUIC); port 0 picks a free port.
    pub(crate) listen: Vec<String>,
    /// Peers to dial at start (multiaddresses ending in `/p2p/<peer id>`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) bootstrap: Vec<String>,
    /// Discover peers on the local network by mDNS.
    pub(crate) mdns: bool,
}

impl Default for P2pSection {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into(), "/ip4/127.0.0.1/udp/0/quic-v1".into()],
            bootstrap: Vec::new(),
            mdns: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    /// Largest HTTP request body of rows and uploaded files, in bytes.
    pub(crate) max_body_bytes: usize,
    /// Largest body of every other request (policies, views, dataset descriptions,
    /// federation requests, forms), in bytes.
    pub(crate) max_json_body_bytes: usize,
    /// Bytes all parts of an uploaded `.xlsx` file may unpack to together.
    pub(crate) xlsx_max_decompressed_bytes: u64,
    /// Entries of an `.xlsx` file's shared-string table.
    pub(crate) xlsx_max_shared_strings: u64,
    /// Cells of an `.xlsx` file's worksheets together.
    pub(crate) xlsx_max_cells: u64,
    /// Seconds a response may wait for its reader to take more bytes before it is ended.
    pub(crate) write_timeout_secs: u64,
    /// Bytes of memory one query may hold (an SQL statement, a Flight or REST read, a page).
    pub(crate) query_memory_bytes: usize,
    /// Seconds one query may compute for.
    pub(crate) query_timeout_secs: u64,
    /// Queries that run at once; others wait for a turn within their time.
    pub(crate) query_concurrency: usize,
    /// Bytes of one message a connector receives over MQTT; larger ones go to its dead letters.
    pub(crate) connector_message_bytes: usize,
    /// Bytes of one response a pull connector fetches.
    pub(crate) connector_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(urbanmesh_web::Limits::default())
    }
}

impl From<urbanmesh_web::Limits> for Limits {
    fn from(limits: urbanmesh_web::Limits) -> Self {
        Self {
            max_body_bytes: limits.max_body_bytes,
            max_json_body_bytes: limits.max_json_body_bytes,
            xlsx_max_decompressed_bytes: limits.decode.xlsx_max_decompressed_bytes,
            xlsx_max_shared_strings: limits.decode.xlsx_max_shared_strings,
            xlsx_max_cells: limits.decode.xlsx_max_cells,
            write_timeout_secs: limits.write_timeout.as_secs(),
            query_memory_bytes: urbanmesh_store::QueryLimits::default().memory_bytes,
            query_timeout_secs: urbanmesh_store::QueryLimits::default().time.as_secs(),
            query_concurrency: urbanmesh_store::QueryLimits::default().concurrency,
            connector_message_bytes: urbanmesh_live::ConnectorLimits::default().message.bytes,
            connector_response_bytes: urbanmesh_live::ConnectorLimits::default().response.bytes,
        }
    }
}

impl Limits {
    /// Each query's budgets; zero would refuse every query, so the least is one byte and
    /// one second.
    pub(crate) fn query(&self) -> urbanmesh_store::QueryLimits {
        urbanmesh_store::QueryLimits {
            memory_bytes: self.query_memory_bytes.max(1),
            time: std::time::Duration::from_secs(self.query_timeout_secs.max(1)),
            concurrency: self.query_concurrency.max(1),
        }
    }

    pub(crate) fn connectors(&self) -> urbanmesh_live::ConnectorLimits {
        let mut limits = urbanmesh_live::ConnectorLimits::default();
        limits.message.bytes = self.connector_message_bytes.max(1);
        limits.response.bytes = self.connector_response_bytes.max(1);
        limits
    }

    pub(crate) fn web(&self) -> urbanmesh_web::Limits {
        urbanmesh_web::Limits {
            max_body_bytes: self.max_body_bytes,
            max_json_body_bytes: self.max_json_body_bytes,
            decode: urbanmesh_store::decode::DecodeLimits {
                xlsx_max_decompressed_bytes: self.xlsx_max_decompressed_bytes,
                xlsx_max_shared_strings: self.xlsx_max_shared_strings,
                xlsx_max_cells: self.xlsx_max_cells,
            },
            // A zero timeout would end every response that waits at all.
            write_timeout: std::time::Duration::from_secs(self.write_timeout_secs.max(1)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Storage {
    /// Rows collected in the write-ahead log before they are compacted into a segment.
    pub(crate) segment_rows: usize,
    /// Seconds a smaller log tail may wait before it is compacted anyway.
    pub(crate) max_tail_age_secs: u64,
    /// Writes are refused (507) while the data directory's disk has less free space than
    /// this; reads go on, and writes resume once space is freed. 0 turns the floor off.
    pub(crate) min_free_bytes: u64,
    /// A file of this size in the data directory, given up to start on a full disk.
    pub(crate) ballast_bytes: u64,
    /// Where segments live when not in `DIR/segments`: S3-compatible object storage,
    /// `s3://bucket/prefix`, with credentials and endpoint from the `AWS_…` variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
    /// `AWS_ALLOW_HTTP`). The write-ahead log stays on local disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) segments: Option<String>,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            segment_rows: 1_000_000,
            max_tail_age_secs: 600,
            min_free_bytes: 64 << 20,
            ballast_bytes: 16 << 20,
            segments: None,
        }
    }
}

impl Config {
    pub(crate) fn new(name: &str, ars: Option<String>) -> Self {
        Self {
            node: NodeSection { name: name.to_owned(), ars },
            http: default_http(),
            flight: default_flight(),
            peer_flight: default_peer_flight(),
            p2p: P2pSection::default(),
            limits: Limits::default(),
            storage: Storage::default(),
            catalog: CatalogSection::default(),
            policy: PolicySection::default(),
            audit: AuditSection::default(),
            connectors: Vec::new(),
            oidc: None,
        }
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("config.toml")
    }

    /// The node's configuration: `file` (the data directory's `config.toml` when not
    /// given), then the settings of the environment over it (`URBANMESH_<SECTION>__<KEY>`,
    /// see [`crate::environment`]), then the command line's `overrides` over both.
    pub fn load(data_dir: &Path, file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let path = file.map_or_else(|| Self::path(data_dir), Path::to_path_buf);
        let mut config = Self::read(&path, crate::environment::settings())?;
        if let Some(http) = overrides.http {
            config.http.listen = http;
        }
        if let Some(flight) = overrides.flight {
            config.flight.listen = flight;
        }
        if let Some(peer_flight) = overrides.peer_flight {
            config.peer_flight.listen = peer_flight;
        }
        if let Some(p2p) = &overrides.p2p {
            config.p2p.listen = vec![p2p.clone()];
        }
        Ok(config)
    }

    /// `path` with the settings of `vars` over it, checked: an unknown or mistyped key is
    /// named with where it came from, and the parts that must fit together are checked
    /// ([`Config::check`]).
    pub fn read(path: &Path, vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("reading {}; create a node first with `urbanmesh init`, or give --config", path.display())
        })?;
        let mut table: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let defaults = toml::Table::try_from(Self::new("", None)).context("the default configuration")?;
        let applied = crate::environment::apply(&mut table, &defaults, vars)?;
        let mut config: Self = if applied.is_empty() {
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?
        } else {
            let merged = toml::to_string(&table).context("merging the environment's settings")?;
            toml::from_str(&merged)
                .with_context(|| format!("{} with the settings of {}", path.display(), applied.join(", ")))?
        };
        if let Some(oidc) = &mut config.oidc
            && oidc.client_secret.is_none()
            && let Some(file) = &oidc.client_secret_file
        {
            let secret = std::fs::read_to_string(file)
                .with_context(|| format!("[oidc] client_secret_file: reading {}", file.display()))?;
            oidc.client_secret = Some(secret.trim_end_matches(['\n', '\r']).to_owned());
        }
        config.check().with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    /// What the types alone do not check: the node's name, the catalogue's description,
    /// the OpenID provider's address and the purposes.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.node.name.trim().is_empty() {
            anyhow::bail!("[node] name: must name the municipality");
        }
        self.catalog_info()?;
        if let Some(oidc) = &self.oidc {
            if !(oidc.issuer.starts_with("https://") || oidc.issuer.starts_with("http://")) {
                anyhow::bail!("[oidc] issuer: `{}` is not an http(s) URL", oidc.issuer);
            }
            if oidc.client_id.trim().is_empty() {
                anyhow::bail!("[oidc] client_id: must not be empty");
            }
        }
        if let Some(empty) = self.policy.purposes.iter().position(|p| p.trim().is_empty()) {
            anyhow::bail!("[policy] purposes: entry {} is empty", empty + 1);
        }
        if let Some(segments) = &self.storage.segments
            && !segments.starts_with("s3://")
        {
            anyhow::bail!(
                "[storage] segments: `{segments}` is not an object storage address such as s3://bucket/prefix"
            );
        }
        for (key, listen) in [("http", &self.http), ("flight", &self.flight), ("peer_flight", &self.peer_flight)] {
            if let Some(url) = &listen.public_url
                && !url.contains("://")
            {
                anyhow::bail!("[{key}] public_url: `{url}` is not a URL such as https://daten.example.de");
            }
        }
        Ok(())
    }

    /// The node's name, as `[node] name` gives it.
    pub fn name(&self) -> &str {
        &self.node.name
    }
}

/// Listen addresses that replace the configured ones (port 0 picks a free port).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub http: Option<std::net::SocketAddr>,
    pub flight: Option<std::net::SocketAddr>,
    pub peer_flight: Option<std::net::SocketAddr>,
    pub p2p: Option<String>,
}

impl Overrides {
    /// Every listener on loopback, on a free port.
    pub fn loopback() -> Self {
        let any = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        Self { http: any, flight: any, peer_flight: any, p2p: Some("/ip4/127.0.0.1/tcp/0".into()) }
    }
}
