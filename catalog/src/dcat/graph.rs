//! The triples of the catalogue, its agents, services and datasets.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use oxrdf::vocab::{rdf, xsd};
use oxrdf::{Literal, NamedNode, NamedNodeRef, TermRef, Triple, TripleRef};
use oxrdfio::WriterQuadSerializer;

use crate::catalog::FORMATS;
use crate::dcat::Paging;
use crate::dcat::vocabulary::{FLIGHT_SPEC, IANA_MEDIA_TYPES, WKT_LITERAL, dcat, dcatde, dct, foaf, hydra, vcard};
use crate::metadata::{ContactPoint, Moment, Publisher};
use crate::vocab::{
    ACCESS_RIGHTS_PUBLIC, FILE_TYPES, FREQUENCIES, GEOCODING_LEVELS, LANGUAGES, LICENCES, PUBLISHER_TYPES, THEMES,
    licence_requires_attribution,
};
use crate::{CatalogError, CatalogInfo, Dataset, Derived, Endpoints};

/// Where an entry of the catalogue lives: datasets hold rows, views assemble them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collection {
    Datasets,
    Views,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Self::Datasets => "datasets",
            Self::Views => "views",
        }
    }

    fn descriptor(self, id: &str) -> String {
        match self {
            Self::Datasets => format!("[\"{id}\"]"),
            Self::Views => format!("[\"views\", \"{id}\"]"),
        }
    }
}

pub(crate) struct Graph<'a> {
    info: &'a CatalogInfo,
    endpoints: &'a Endpoints,
    lang: &'static str,
    catalog: NamedNode,
    publisher: NamedNode,
    service: NamedNode,
}

/// Where triples go: the serializer, or a list written after the subject's own triples
/// so that the output reads subject by subject.
pub(crate) trait Sink {
    fn emit(&mut self, triple: TripleRef<'_>) -> Result<(), CatalogError>;
}

impl<W: Write> Sink for WriterQuadSerializer<W> {
    fn emit(&mut self, triple: TripleRef<'_>) -> Result<(), CatalogError> {
        Ok(self.serialize_triple(triple)?)
    }
}

impl Sink for Vec<Triple> {
    fn emit(&mut self, triple: TripleRef<'_>) -> Result<(), CatalogError> {
        self.push(triple.into_owned());
        Ok(())
    }
}

impl<'a> Graph<'a> {
    pub(crate) fn new(info: &'a CatalogInfo, endpoints: &'a Endpoints) -> Self {
        let base = &endpoints.http;
        Self {
            info,
            endpoints,
            lang: if LANGUAGES.code(&info.language) == "ENG" { "en" } else { "de" },
            catalog: node(format!("{base}/catalog")),
            publisher: node(format!("{base}/catalog#publisher")),
            service: node(format!("{base}/catalog#flight")),
        }
    }

    /// The `dcat:Catalog` with its publisher and the Flight service.
    pub(crate) fn catalog(&self, out: &mut impl Sink) -> Result<(), CatalogError> {
        let catalog = self.catalog.as_ref();
        link(out, catalog, rdf::TYPE, dcat::CATALOG)?;
        self.text(out, catalog, dct::TITLE, &self.info.title)?;
        self.text(out, catalog, dct::DESCRIPTION, &self.info.description)?;
        link(out, catalog, dct::PUBLISHER, self.publisher.as_ref())?;
        if let Some(homepage) = &self.info.homepage {
            link(out, catalog, foaf::HOMEPAGE, iri(homepage)?.as_ref())?;
        }
        if let Some(language) = LANGUAGES.iri(&self.info.language) {
            link(out, catalog, dct::LANGUAGE, iri(&language)?.as_ref())?;
        }
        link(out, catalog, dcat::SERVICE, self.service.as_ref())?;
        self.agents(out)
    }

    /// The node's publisher and its Flight service, which datasets refer to.
    pub(crate) fn agents(&self, out: &mut impl Sink) -> Result<(), CatalogError> {
        publisher(out, self.publisher.as_ref(), &self.info.publisher)?;
        let service = self.service.as_ref();
        link(out, service, rdf::TYPE, dcat::DATA_SERVICE)?;
        self.text(out, service, dct::TITLE, "Apache Arrow Flight")?;
        self.text(
            out,
            service,
            dct::DESCRIPTION,
            "Spaltenorientierter Datenzugang über Apache Arrow Flight (gRPC), z. B. mit pyarrow.flight.",
        )?;
        link(out, service, dcat::ENDPOINT_URL, iri(&self.endpoints.flight)?.as_ref())?;
        link(out, service, dcat::ENDPOINT_DESCRIPTION, NamedNodeRef::new_unchecked(FLIGHT_SPEC))?;
        link(out, service, dct::PUBLISHER, self.publisher.as_ref())?;
        link(out, service, dct::ACCESS_RIGHTS, NamedNodeRef::new_unchecked(ACCESS_RIGHTS_PUBLIC))?;
        Ok(())
    }

    /// `hydra:PagedCollection` for a page of the catalogue, as ckanext-dcat writes it.
    pub(crate) fn paging(&self, out: &mut impl Sink, paging: &Paging, total: usize) -> Result<(), CatalogError> {
        let page_url =
            |page: usize| format!("{}{}?page={page}&per_page={}", self.endpoints.http, paging.path, paging.per_page);
        let last = total.div_ceil(paging.per_page).max(1);
        let this = iri(&page_url(paging.page))?;
        let this = this.as_ref();
        link(out, this, rdf::TYPE, hydra::PAGED_COLLECTION)?;
        typed(out, this, hydra::TOTAL_ITEMS, &total.to_string(), xsd::INTEGER)?;
        typed(out, this, hydra::ITEMS_PER_PAGE, &paging.per_page.to_string(), xsd::INTEGER)?;
        plain(out, this, hydra::FIRST_PAGE, &page_url(1))?;
        plain(out, this, hydra::LAST_PAGE, &page_url(last))?;
        if paging.page > 1 {
            plain(out, this, hydra::PREVIOUS_PAGE, &page_url((paging.page - 1).min(last)))?;
        }
        if paging.page < last {
            plain(out, this, hydra::NEXT_PAGE, &page_url(paging.page + 1))?;
        }
        Ok(())
    }

    /// A dataset, its distributions and the parts it owns (contact, period, location).
    pub(crate) fn dataset(
        &self,
        out: &mut impl Sink,
        dataset: &Dataset,
        derived: &Derived,
        collection: Collection,
        in_catalog: bool,
    ) -> Result<(), CatalogError> {
        let spec = &dataset.spec;
        let id = dataset.id();
        let page = format!("{}/{}/{id}", self.endpoints.http, collection.path());
        let subject_node = node(page.clone());
        let subject = subject_node.as_ref();
        let mut later = Vec::new();
        if in_catalog {
            link(out, self.catalog.as_ref(), dcat::DATASET, subject)?;
        }
        link(out, self.service.as_ref(), dcat::SERVES_DATASET, subject)?;

        link(out, subject, rdf::TYPE, dcat::DATASET_CLASS)?;
        plain(out, subject, dct::IDENTIFIER, &subject_node.as_str().to_owned())?;
        self.text(out, subject, dct::TITLE, &spec.title)?;
        self.text(out, subject, dct::DESCRIPTION, &spec.description)?;
        for keyword in &spec.keywords {
            self.text(out, subject, dcat::KEYWORD, keyword)?;
        }
        for theme in &spec.themes {
            if let Some(theme) = THEMES.iri(theme) {
                link(out, subject, dcat::THEME, iri(&theme)?.as_ref())?;
            }
        }
        match &spec.publisher {
            Some(own) => {
                let agent = match &own.uri {
                    Some(uri) => iri(uri)?,
                    None => node(format!("{page}#publisher")),
                };
                link(out, subject, dct::PUBLISHER, agent.as_ref())?;
                publisher(&mut later, agent.as_ref(), own)?;
            }
            None => link(out, subject, dct::PUBLISHER, self.publisher.as_ref())?,
        }
        if let Some(contact) = spec.contact_point.as_ref().or(self.info.contact_point.as_ref()) {
            let card = node(format!("{page}#contact"));
            link(out, subject, dcat::CONTACT_POINT, card.as_ref())?;
            contact_point(&mut later, card.as_ref(), contact)?;
        }
        self.spatial(out, &mut later, subject, dataset)?;
        self.temporal(out, &mut later, subject, dataset, derived)?;
        if let Some(frequency) = spec.accrual_periodicity.as_deref().and_then(|f| FREQUENCIES.iri(f)) {
            link(out, subject, dct::ACCRUAL_PERIODICITY, iri(&frequency)?.as_ref())?;
        }
        let issued = match &spec.issued {
            Some(issued) => Moment::parse("issued", issued)?,
            None => Moment::DateTime(dataset.created),
        };
        moment(out, subject, dct::ISSUED, issued)?;
        let modified = derived.data_modified.map_or(dataset.modified, |data| data.max(dataset.modified));
        moment(out, subject, dct::MODIFIED, Moment::DateTime(modified))?;
        for standard in &spec.conforms_to {
            link(out, subject, dct::CONFORMS_TO, iri(standard)?.as_ref())?;
        }
        link(out, subject, dct::ACCESS_RIGHTS, NamedNodeRef::new_unchecked(ACCESS_RIGHTS_PUBLIC))?;
        if let Some(page) = &spec.landing_page {
            link(out, subject, dcat::LANDING_PAGE, iri(page)?.as_ref())?;
        }
        if let Some(language) = LANGUAGES.iri(&self.info.language) {
            link(out, subject, dct::LANGUAGE, iri(&language)?.as_ref())?;
        }
        self.distributions(out, &mut later, subject, dataset, collection, modified)?;
        for triple in &later {
            out.emit(triple.as_ref())?;
        }
        Ok(())
    }

    fn distributions(
        &self,
        out: &mut impl Sink,
        later: &mut Vec<Triple>,
        subject: NamedNodeRef<'_>,
        dataset: &Dataset,
        collection: Collection,
        modified: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        let spec = &dataset.spec;
        let base = &self.endpoints.http;
        let id = dataset.id();
        let page = subject.as_str();
        let path = collection.path();
        let licence =
            iri(&LICENCES.iri(spec.licence()).unwrap_or_else(|| format!("{}{}", LICENCES.base, spec.licence())))?;
        let attribution = match (&spec.attribution, licence_requires_attribution(spec.licence())) {
            (Some(text), _) => Some(text.clone()),
            (None, true) => Some(spec.publisher.as_ref().unwrap_or(&self.info.publisher).name.clone()),
            (None, false) => None,
        };
        for format in FORMATS {
            let (extension, label, media_type) = match format {
                "CSV" => ("csv", "CSV", "text/csv"),
                "JSON" => ("json", "JSON", "application/json"),
                _ => ("parquet", "Apache Parquet", "application/vnd.apache.parquet"),
            };
            let distribution = node(format!("{page}#{extension}"));
            let distribution = distribution.as_ref();
            let url = iri(&format!("{base}/api/v1/{path}/{id}/rows?format={extension}"))?;
            link(out, subject, dcat::DISTRIBUTION, distribution)?;
            link(later, distribution, rdf::TYPE, dcat::DISTRIBUTION_CLASS)?;
            self.text(later, distribution, dct::TITLE, &format!("{} ({label})", spec.title))?;
            link(later, distribution, dcat::ACCESS_URL, url.as_ref())?;
            link(later, distribution, dcat::DOWNLOAD_URL, url.as_ref())?;
            link(later, distribution, dct::FORMAT, iri(&format!("{FILE_TYPES}{format}"))?.as_ref())?;
            link(later, distribution, dcat::MEDIA_TYPE, iri(&format!("{IANA_MEDIA_TYPES}{media_type}"))?.as_ref())?;
            self.licensed(later, distribution, licence.as_ref(), attribution.as_deref())?;
            moment(later, distribution, dct::MODIFIED, Moment::DateTime(modified))?;
        }
        let flight = node(format!("{page}#flight"));
        let flight = flight.as_ref();
        link(out, subject, dcat::DISTRIBUTION, flight)?;
        link(later, flight, rdf::TYPE, dcat::DISTRIBUTION_CLASS)?;
        self.text(later, flight, dct::TITLE, &format!("{} (Apache Arrow Flight)", spec.title))?;
        self.text(
            later,
            flight,
            dct::DESCRIPTION,
            &format!("Flight-Deskriptor {} am Endpunkt {}", collection.descriptor(id), self.endpoints.flight),
        )?;
        link(later, flight, dcat::ACCESS_URL, iri(&self.endpoints.flight)?.as_ref())?;
        link(later, flight, dcat::ACCESS_SERVICE, self.service.as_ref())?;
        self.licensed(later, flight, licence.as_ref(), attribution.as_deref())?;
        if spec.time_column.is_none() || spec.series_key.is_none() {
            return Ok(());
        }
        // Stations with their latest values, where rows have a point location: the
        // dataset's geometry, or a view's `lon` and `lat` columns.
        let located = match collection {
            Collection::Datasets => spec.geometry.is_some(),
            Collection::Views => ["lon", "lat"].iter().all(|c| spec.schema.field(c).is_some()),
        };
        if !located {
            return Ok(());
        }
        let mut services = vec![(
            "geojson",
            "GeoJSON, latest values",
            "GEOJSON",
            "application/geo+json",
            format!("{base}/api/v1/{path}/{id}/latest.geojson"),
            None,
        )];
        if collection == Collection::Datasets {
            services.push((
                "sensorthings",
                "OGC SensorThings API 1.1",
                "JSON",
                "application/json",
                format!("{base}/sta/v1.1/Things?$filter=properties/dataset%20eq%20%27{id}%27"),
                Some(format!("OGC SensorThings API 1.1, Dienst {base}/sta/v1.1")),
            ));
        }
        for (fragment, label, format, media_type, url, description) in services {
            let distribution = node(format!("{page}#{fragment}"));
            let distribution = distribution.as_ref();
            let url = iri(&url)?;
            link(out, subject, dcat::DISTRIBUTION, distribution)?;
            link(later, distribution, rdf::TYPE, dcat::DISTRIBUTION_CLASS)?;
            self.text(later, distribution, dct::TITLE, &format!("{} ({label})", spec.title))?;
            if let Some(description) = description {
                self.text(later, distribution, dct::DESCRIPTION, &description)?;
            }
            link(later, distribution, dcat::ACCESS_URL, url.as_ref())?;
            link(later, distribution, dct::FORMAT, iri(&format!("{FILE_TYPES}{format}"))?.as_ref())?;
            link(later, distribution, dcat::MEDIA_TYPE, iri(&format!("{IANA_MEDIA_TYPES}{media_type}"))?.as_ref())?;
            self.licensed(later, distribution, licence.as_ref(), attribution.as_deref())?;
            moment(later, distribution, dct::MODIFIED, Moment::DateTime(modified))?;
        }
        Ok(())
    }

    fn licensed(
        &self,
        out: &mut impl Sink,
        distribution: NamedNodeRef<'_>,
        licence: NamedNodeRef<'_>,
        attribution: Option<&str>,
    ) -> Result<(), CatalogError> {
        link(out, distribution, dct::LICENSE, licence)?;
        if let Some(text) = attribution {
            plain(out, distribution, dcatde::LICENSE_ATTRIBUTION_BY_TEXT, text)?;
        }
        Ok(())
    }

    fn spatial(
        &self,
        out: &mut impl Sink,
        later: &mut Vec<Triple>,
        subject: NamedNodeRef<'_>,
        dataset: &Dataset,
    ) -> Result<(), CatalogError> {
        let spatial = dataset.spec.spatial.clone().unwrap_or_default();
        let (geocoding, level) = match spatial.geocoding_iri() {
            Some(geocoding) => (Some(geocoding), spatial.level.clone()),
            None => match &self.info.geocoding {
                Some(own) => (Some(format!("{}{own}", crate::vocab::GEOCODING_BASE)), Some("municipality".to_owned())),
                None => (None, spatial.level.clone()),
            },
        };
        if let Some(geocoding) = geocoding {
            let place = iri(&geocoding)?;
            link(out, subject, dct::SPATIAL, place.as_ref())?;
            link(later, place.as_ref(), rdf::TYPE, dct::LOCATION)?;
        }
        if let Some(level) = level.as_deref().and_then(|l| GEOCODING_LEVELS.iri(l)) {
            link(out, subject, dcatde::POLITICAL_GEOCODING_LEVEL_URI, iri(&level)?.as_ref())?;
        }
        if let Some([west, south, east, north]) = spatial.bbox {
            let area = node(format!("{}#spatial", subject.as_str()));
            let area = area.as_ref();
            link(out, subject, dct::SPATIAL, area)?;
            link(later, area, rdf::TYPE, dct::LOCATION)?;
            let wkt =
                format!("POLYGON(({west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}))");
            typed(later, area, dcat::BBOX, &wkt, WKT_LITERAL)?;
        }
        Ok(())
    }

    fn temporal(
        &self,
        out: &mut impl Sink,
        later: &mut Vec<Triple>,
        subject: NamedNodeRef<'_>,
        dataset: &Dataset,
        derived: &Derived,
    ) -> Result<(), CatalogError> {
        let (start, end) = match &dataset.spec.temporal {
            Some(declared) => (
                Moment::parse("temporal.start", &declared.start)?,
                declared.end.as_deref().map(|end| Moment::parse("temporal.end", end)).transpose()?,
            ),
            None => match derived.first.zip(derived.last) {
                Some((first, last)) => (Moment::DateTime(first), Some(Moment::DateTime(last))),
                None => return Ok(()),
            },
        };
        let period = node(format!("{}#temporal", subject.as_str()));
        let period = period.as_ref();
        link(out, subject, dct::TEMPORAL, period)?;
        link(later, period, rdf::TYPE, dct::PERIOD_OF_TIME)?;
        moment(later, period, dcat::START_DATE, start)?;
        if let Some(end) = end {
            moment(later, period, dcat::END_DATE, end)?;
        }
        Ok(())
    }

    fn text(
        &self,
        out: &mut impl Sink,
        s: NamedNodeRef<'_>,
        p: NamedNodeRef<'_>,
        text: &str,
    ) -> Result<(), CatalogError> {
        let literal = Literal::new_language_tagged_literal_unchecked(text, self.lang);
        emit(out, s, p, literal.as_ref().into())
    }
}

fn publisher(out: &mut impl Sink, agent: NamedNodeRef<'_>, publisher: &Publisher) -> Result<(), CatalogError> {
    link(out, agent, rdf::TYPE, foaf::AGENT)?;
    plain(out, agent, foaf::NAME, &publisher.name)?;
    if let Some(kind) = publisher.kind.as_deref().and_then(|k| PUBLISHER_TYPES.iri(k)) {
        link(out, agent, dct::TYPE, iri(&kind)?.as_ref())?;
    }
    Ok(())
}

fn contact_point(out: &mut impl Sink, card: NamedNodeRef<'_>, contact: &ContactPoint) -> Result<(), CatalogError> {
    link(out, card, rdf::TYPE, vcard::ORGANIZATION)?;
    plain(out, card, vcard::FN, &contact.name)?;
    if let Some(email) = &contact.email {
        link(out, card, vcard::HAS_EMAIL, iri(&format!("mailto:{email}"))?.as_ref())?;
    }
    if let Some(url) = &contact.url {
        link(out, card, vcard::HAS_URL, iri(url)?.as_ref())?;
    }
    Ok(())
}

fn moment(out: &mut impl Sink, s: NamedNodeRef<'_>, p: NamedNodeRef<'_>, value: Moment) -> Result<(), CatalogError> {
    match value {
        Moment::Date(date) => typed(out, s, p, &date.format("%Y-%m-%d").to_string(), xsd::DATE),
        Moment::DateTime(time) => typed(out, s, p, &time.to_rfc3339_opts(SecondsFormat::Secs, true), xsd::DATE_TIME),
    }
}

fn link(
    out: &mut impl Sink,
    s: NamedNodeRef<'_>,
    p: NamedNodeRef<'_>,
    o: NamedNodeRef<'_>,
) -> Result<(), CatalogError> {
    emit(out, s, p, o.into())
}

fn plain(out: &mut impl Sink, s: NamedNodeRef<'_>, p: NamedNodeRef<'_>, text: &str) -> Result<(), CatalogError> {
    emit(out, s, p, Literal::new_simple_literal(text).as_ref().into())
}

fn typed(
    out: &mut impl Sink,
    s: NamedNodeRef<'_>,
    p: NamedNodeRef<'_>,
    value: &str,
    datatype: NamedNodeRef<'_>,
) -> Result<(), CatalogError> {
    emit(out, s, p, Literal::new_typed_literal(value, datatype).as_ref().into())
}

fn emit(out: &mut impl Sink, s: NamedNodeRef<'_>, p: NamedNodeRef<'_>, o: TermRef<'_>) -> Result<(), CatalogError> {
    out.emit(TripleRef::new(s, p, o))
}

/// An IRI from our own, well-formed parts (base URL plus path).
fn node(value: String) -> NamedNode {
    NamedNode::new(value.clone()).unwrap_or_else(|_| NamedNode::new_unchecked(value))
}

/// An IRI from configuration or a dataset description, checked.
fn iri(value: &str) -> Result<NamedNode, CatalogError> {
    NamedNode::new(value).map_err(|e| std::io::Error::other(format!("`{value}` is not an IRI: {e}")).into())
}
