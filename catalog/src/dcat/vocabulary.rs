//! RDF namespaces and terms the export uses.

use oxrdf::NamedNodeRef;

/// Prefixes for readable Turtle; the terms are listed per namespace below.
pub(crate) const PREFIXES: [(&str, &str); 9] = [
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("dcatde", "http://dcat-ap.de/def/dcatde/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("gsp", "http://www.opengis.net/ont/geosparql#"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
];

pub(crate) const IANA_MEDIA_TYPES: &str = "https://www.iana.org/assignments/media-types/";
pub(crate) const FLIGHT_SPEC: &str = "https://arrow.apache.org/docs/format/Flight.html";
pub(crate) const WKT_LITERAL: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("http://www.opengis.net/ont/geosparql#wktLiteral");

macro_rules! terms {
    ($namespace:literal: $($name:ident = $local:literal),* $(,)?) => {
        $(pub(crate) const $name: oxrdf::NamedNodeRef<'static> =
            oxrdf::NamedNodeRef::new_unchecked(concat!($namespace, $local));)*
    };
}

pub(crate) mod dcat {
    terms!("http://www.w3.org/ns/dcat#": CATALOG = "Catalog", DATA_SERVICE = "DataService", DATASET_CLASS = "Dataset", DISTRIBUTION_CLASS = "Distribution", ACCESS_SERVICE = "accessService", ACCESS_URL = "accessURL", BBOX = "bbox", CONTACT_POINT = "contactPoint", DATASET = "dataset", DISTRIBUTION = "distribution", DOWNLOAD_URL = "downloadURL", END_DATE = "endDate", ENDPOINT_DESCRIPTION = "endpointDescription", ENDPOINT_URL = "endpointURL", KEYWORD = "keyword", LANDING_PAGE = "landingPage", MEDIA_TYPE = "mediaType", SERVES_DATASET = "servesDataset", SERVICE = "service", START_DATE = "startDate", THEME = "theme");
}

pub(crate) mod dct {
    terms!("http://purl.org/dc/terms/": LOCATION = "Location", PERIOD_OF_TIME = "PeriodOfTime", ACCESS_RIGHTS = "accessRights", ACCRUAL_PERIODICITY = "accrualPeriodicity", CONFORMS_TO = "conformsTo", DESCRIPTION = "description", FORMAT = "format", IDENTIFIER = "identifier", ISSUED = "issued", LANGUAGE = "language", LICENSE = "license", MODIFIED = "modified", PUBLISHER = "publisher", SPATIAL = "spatial", TEMPORAL = "temporal", TITLE = "title", TYPE = "type");
}

pub(crate) mod dcatde {
    terms!("http://dcat-ap.de/def/dcatde/": LICENSE_ATTRIBUTION_BY_TEXT = "licenseAttributionByText", POLITICAL_GEOCODING_LEVEL_URI = "politicalGeocodingLevelURI");
}

pub(crate) mod foaf {
    terms!("http://xmlns.com/foaf/0.1/": AGENT = "Agent", HOMEPAGE = "homepage", NAME = "name");
}

pub(crate) mod vcard {
    terms!("http://www.w3.org/2006/vcard/ns#": ORGANIZATION = "Organization", FN = "fn", HAS_EMAIL = "hasEmail", HAS_URL = "hasURL");
}

pub(crate) mod hydra {
    terms!("http://www.w3.org/ns/hydra/core#": PAGED_COLLECTION = "PagedCollection", FIRST_PAGE = "firstPage", ITEMS_PER_PAGE = "itemsPerPage", LAST_PAGE = "lastPage", NEXT_PAGE = "nextPage", PREVIOUS_PAGE = "previousPage", TOTAL_ITEMS = "totalItems");
}
