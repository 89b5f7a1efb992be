use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use urbanmesh_policy::{Policy, Shape};

use crate::CatalogError;
use crate::metadata::{ContactPoint, Moment, Publisher, Spatial, Temporal, check_iri, non_empty};
use crate::schema::{FieldType, SchemaSpec};
use crate::vocab::{DEFAULT_LICENCE, FREQUENCIES, LICENCES, THEMES};

/// A dataset as the owner describes it (`POST /api/v1/datasets`): its shape and its
/// DCAT-AP.de description. Vocabulary fields take the codes of the official tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub id: String,
    #[schema(min_length = 1, max_length = 1000)]
    pub title: String,
    /// Mandatory in DCAT-AP.de: what the dataset contains, where and since when.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100000)]
    pub description: String,
    pub schema: SchemaSpec,
    /// The column that orders a time series; reads filter `from`/`to` on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// The column naming one series within the dataset, e.g. a gauging station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_key: Option<String>,
    /// A point location given by two float64 columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<Geometry>,
    /// `dcat:keyword`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// `dcat:theme`: EU data themes, e.g. `ENVI`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// `dct:publisher`; the node's publisher when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Publisher>,
    /// `dcat:contactPoint`; the node's contact when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_point: Option<ContactPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial: Option<Spatial>,
    /// Declared coverage; without it the export states the extent of the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal: Option<Temporal>,
    /// `dct:accrualPeriodicity`: an EU frequency, e.g. `15MIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrual_periodicity: Option<String>,
    /// A dcat-ap.de licence code; `dl-zero-de/2.0` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// `dcatde:licenseAttributionByText`; the publisher's name when the licence asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// `dct:conformsTo`: IRIs of standards or schemas the data follows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conforms_to: Vec<String>,
    /// `dct:issued`; the creation time when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    /// `dcat:landingPage`; the node's portal page when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
    /// The usage policy to start with; tenant-internal when left out. Taken into the
    /// dataset record on creation (and on update, when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Geometry {
    pub lon: String,
    pub lat: String,
}

/// A stored dataset record: the owner's description plus what the node adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dataset {
    #[serde(flatten)]
    pub spec: DatasetSpec,
    /// The municipality that owns the dataset.
    pub tenant: String,
    pub created: DateTime<Utc>,
    /// Last change of the description (rows are tracked in [`crate::Derived`]).
    pub modified: DateTime<Utc>,
    /// Who may see and read it, and how.
    #[serde(default)]
    pub policy: Policy,
}

impl Dataset {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        self.spec.schema.to_arrow()
    }

    /// What a policy of this dataset may refer to.
    pub fn shape(&self) -> Shape<'_> {
        self.spec.shape()
    }
}

impl DatasetSpec {
    /// The licence code, with the open-data default.
    pub fn licence(&self) -> &str {
        self.licence.as_deref().map_or(DEFAULT_LICENCE, |l| LICENCES.code(l))
    }

    /// What a policy of this dataset may refer to.
    pub fn shape(&self) -> Shape<'_> {
        Shape {
            columns: self.schema.fields.iter().map(|f| f.name.as_str()).collect(),
            time_column: self.time_column.as_deref(),
            series_key: self.series_key.as_deref(),
        }
    }

    /// Whether `other` describes rows of the same shape, so that it may replace this description.
    pub fn same_shape(&self, other: &DatasetSpec) -> bool {
        self.schema == other.schema
            && self.time_column == other.time_column
            && self.series_key == other.series_key
            && self.geometry == other.geometry
    }
}

impl DatasetSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if !is_dataset_id(&self.id) {
            return Err(CatalogError::invalid(
                "id",
                format!(
                    "`{}` is not a valid dataset id: use 1-64 lower-case letters, digits, `-` and `_`, \
                     starting with a letter or digit",
                    self.id
                ),
            ));
        }
        if self.title.trim().is_empty() {
            return Err(CatalogError::invalid("title", "must not be empty"));
        }
        if self.title.len() > 1000 {
            return Err(CatalogError::invalid("title", "must be at most 1000 bytes"));
        }
        if self.description.trim().is_empty() {
            return Err(CatalogError::invalid(
                "description",
                "is mandatory in DCAT-AP.de: say what the dataset contains, where and since when",
            ));
        }
        if self.description.len() > 100_000 {
            return Err(CatalogError::invalid("description", "must be at most 100000 bytes"));
        }
        self.schema.validate()?;
        self.validate_metadata()?;
        if let Some(time) = &self.time_column {
            self.expect_column("time_column", time, "a timestamp", |t| t.is_timestamp())?;
        }
        if let Some(key) = &self.series_key {
            self.expect_column("series_key", key, "utf8 or int64", |t| {
                matches!(t, FieldType::Utf8 | FieldType::Int64)
            })?;
        }
        if let Some(geometry) = &self.geometry {
            self.expect_column("geometry.lon", &geometry.lon, "float64", |t| t == FieldType::Float64)?;
            self.expect_column("geometry.lat", &geometry.lat, "float64", |t| t == FieldType::Float64)?;
        }
        Ok(())
    }

    fn validate_metadata(&self) -> Result<(), CatalogError> {
        for (i, keyword) in self.keywords.iter().enumerate() {
            non_empty(&format!("keywords[{i}]"), keyword)?;
        }
        for (i, theme) in self.themes.iter().enumerate() {
            THEMES.check(&format!("themes[{i}]"), theme)?;
        }
        if let Some(publisher) = &self.publisher {
            publisher.validate("publisher")?;
        }
        if let Some(contact) = &self.contact_point {
            contact.validate("contact_point")?;
        }
        if let Some(spatial) = &self.spatial {
            spatial.validate()?;
        }
        if let Some(temporal) = &self.temporal {
            temporal.validate()?;
        }
        if let Some(frequency) = &self.accrual_periodicity {
            FREQUENCIES.check("accrual_periodicity", frequency)?;
        }
        if let Some(licence) = &self.licence {
            LICENCES.check("licence", licence)?;
        }
        if let Some(attribution) = &self.attribution {
            non_empty("attribution", attribution)?;
        }
        for (i, standard) in self.conforms_to.iter().enumerate() {
            check_iri(&format!("conforms_to[{i}]"), standard)?;
        }
        if let Some(issued) = &self.issued {
            Moment::parse("issued", issued)?;
        }
        if let Some(page) = &self.landing_page {
            check_iri("landing_page", page)?;
        }
        Ok(())
    }

    fn expect_column(
        &self,
        field: &str,
        column: &str,
        wanted: &str,
        accepts: impl Fn(FieldType) -> bool,
    ) -> Result<(), CatalogError> {
        let spec = self.schema.field(column).ok_or_else(|| {
            CatalogError::invalid(field, format!("names `{column}`, which is not a column of the schema"))
        })?;
        let field_type = spec.field_type;
        if !accepts(field_type) {
            return Err(CatalogError::invalid(
                field,
                format!("column `{column}` is {field_type}, but must be {wanted}"),
            ));
        }
        Ok(())
    }
}

pub(crate) fn is_dataset_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pegel() -> DatasetSpec {
        serde_json::from_str(
            r#"{"id": "pegel-guetersloh", "title": "Pegelstände Gütersloh", "description": "Wasserstände",
                "schema": {"fields": [
                  {"name": "time", "type": "timestamp[ms, UTC]"},
                  {"name": "station", "type": "utf8"},
                  {"name": "value", "type": "float64", "unit": "cm"},
                  {"name": "quality", "type": "int64", "nullable": true}]},
                "time_column": "time", "series_key": "station"}"#,
        )
        .expect("the documented shape parses")
    }

    #[test]
    fn accepts_the_documented_shape() {
        pegel().validate().expect("valid");
    }

    #[test]
    fn rejects_references_to_missing_or_mistyped_columns() {
        let mut spec = pegel();
        spec.time_column = Some("value".into());
        let message = spec.validate().expect_err("not a timestamp").to_string();
        assert!(message.contains("time_column") && message.contains("float64"), "{message}");
        let mut spec = pegel();
        spec.series_key = Some("nope".into());
        assert!(spec.validate().expect_err("missing").to_string().contains("series_key"));
        let mut spec = pegel();
        spec.id = "../etc".into();
        assert!(spec.validate().expect_err("bad id").to_string().contains("`id`"));
    }
}
