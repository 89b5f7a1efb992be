use serde::{Deserialize, Serialize};

use crate::CatalogError;
use crate::metadata::{ContactPoint, Publisher, check_iri, non_empty};
use crate::vocab::LANGUAGES;

/// How the node describes its own catalogue (`dcat:Catalog`), and the defaults its
/// datasets inherit when they leave a field out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogInfo {
    /// The municipality running the node; the search facet "municipality".
    pub municipality: String,
    pub title: String,
    pub description: String,
    pub publisher: Publisher,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_point: Option<ContactPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// EU language code of the catalogue's texts.
    pub language: String,
    /// The municipality's dcat-ap.de political geocoding, e.g. `regionalKey/057540008008`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geocoding: Option<String>,
}

impl CatalogInfo {
    /// A complete description from the municipality's name alone.
    pub fn for_municipality(name: &str) -> Self {
        Self {
            municipality: name.to_owned(),
            title: format!("Offene Daten {name}"),
            description: format!("Datenkatalog von {name}: Datensätze, ihre Beschreibung und Zugänge."),
            publisher: Publisher { name: name.to_owned(), kind: Some("LocalAuthority".into()), uri: None },
            contact_point: None,
            homepage: None,
            language: "DEU".into(),
            geocoding: None,
        }
    }
}

impl CatalogInfo {
    pub fn validate(&self) -> Result<(), CatalogError> {
        non_empty("title", &self.title)?;
        non_empty("description", &self.description)?;
        self.publisher.validate("publisher")?;
        if let Some(contact) = &self.contact_point {
            contact.validate("contact_point")?;
        }
        if let Some(homepage) = &self.homepage {
            check_iri("homepage", homepage)?;
        }
        LANGUAGES.check("language", &self.language)
    }
}

/// Where this node can be reached from outside; the export's IRIs are built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Public base URL of the HTTP interface, without a trailing slash.
    pub http: String,
    /// The Arrow Flight endpoint, e.g. `grpc://host:8815`.
    pub flight: String,
}
