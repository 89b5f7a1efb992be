use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use urbanmesh_policy::{Policy, Span};

use crate::schema::{FieldType, SchemaSpec};
use crate::{Dataset, DatasetSpec, FieldSpec};

/// The provenance columns every view adds to its target schema.
pub const SOURCE_NODE: &str = "source_node";
pub const SOURCE_DATASET: &str = "source_dataset";

/// A regional view as its owner defines it (`POST /api/v1/views`); see
/// `docs/decisions/008-regional-views.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewSpec {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub id: String,
    #[schema(min_length = 1)]
    pub title: String,
    #[serde(default)]
    #[schema(min_length = 1)]
    pub description: String,
    /// Which datasets of the federation are sources.
    pub select: Selector,
    /// The target schema every source is mapped to.
    pub schema: SchemaSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_key: Option<String>,
    /// Target column → source column, for every source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnSource>,
    /// `"<municipality>/<dataset>"` → target column → source column, for one source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, BTreeMap<String, ColumnSource>>,
    /// Only rows of the last `window` (e.g. `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<ViewAggregate>,
    /// How long an assembled result is reused; `0s` assembles on every read.
    #[serde(default = "default_refresh")]
    pub refresh: Span,
    /// How long any one source may take.
    #[serde(default = "default_deadline")]
    pub deadline: Span,
    /// `dcat:keyword` of the view itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// `dcat:theme` of the view itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// Visibility and duties; tenant-internal when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

fn default_refresh() -> Span {
    Span::minutes(1)
}

fn default_deadline() -> Span {
    Span::seconds(2)
}

/// Datasets match when every criterion given matches one of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conforms_to: Vec<String>,
}

/// Where a target column comes from: a source column, optionally with the unit its values
/// are in where the source schema does not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ColumnSource {
    Column(String),
    Converted {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
}

impl ColumnSource {
    pub fn column(&self) -> &str {
        match self {
            Self::Column(column) | Self::Converted { column, .. } => column,
        }
    }

    pub fn unit(&self) -> Option<&str> {
        match self {
            Self::Column(_) => None,
            Self::Converted { unit, .. } => unit.as_deref(),
        }
    }
}

/// Time buckets per group, e.g. hourly maximum per station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewAggregate {
    pub bucket: Span,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    /// Column → function.
    pub values: BTreeMap<String, AggregateFunction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AggregateFunction {
    Min,
    Max,
    Avg,
    Sum,
    Count,
}

/// A stored view: the owner's definition plus what the node adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct View {
    #[serde(flatten)]
    pub spec: ViewSpec,
    pub tenant: String,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    #[serde(default)]
    pub policy: Policy,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.themes.is_empty() && self.keywords.is_empty() && self.conforms_to.is_empty()
    }

    pub fn matches(&self, dataset: &DatasetSpec) -> bool {
        let any = |wanted: &[String], has: &[String], same: fn(&str, &str) -> bool| {
            wanted.is_empty() || wanted.iter().any(|w| has.iter().any(|h| same(w, h)))
        };
        !self.is_empty()
            && any(&self.themes, &dataset.themes, |a, b| a.eq_ignore_ascii_case(b))
            && any(&self.keywords, &dataset.keywords, |a, b| a.trim().to_lowercase() == b.trim().to_lowercase())
            && any(&self.conforms_to, &dataset.conforms_to, |a, b| a == b)
    }
}

impl ViewSpec {
    /// The source column and stated unit of a target column for the source
    /// `<municipality>/<dataset>`.
    pub fn source_of<'a>(&'a self, source: &str, target: &'a str) -> (&'a str, Option<&'a str>) {
        let mapped = self.sources.get(source).and_then(|m| m.get(target)).or_else(|| self.columns.get(target));
        mapped.map_or((target, None), |m| (m.column(), m.unit()))
    }

    pub fn refresh(&self) -> Duration {
        self.refresh.get()
    }

    pub fn deadline(&self) -> Duration {
        self.deadline.get()
    }

    pub fn window(&self) -> Option<Duration> {
        self.window.as_ref().map(Span::get)
    }

    pub fn bucket(&self) -> Option<Duration> {
        self.aggregate.as_ref().map(|a| a.bucket.get())
    }

    /// The columns of the assembled result: the target columns (after aggregation the
    /// time bucket, the groups and the values), then the provenance columns. Target columns
    /// are nullable there whatever the definition says: a source's policy may mask any of
    /// them (`nullable` in the definition says a source may lack the column).
    pub fn result_fields(&self) -> Vec<FieldSpec> {
        let mut fields: Vec<FieldSpec> = match (&self.aggregate, &self.time_column) {
            (Some(aggregate), Some(time)) => self
                .schema
                .fields
                .iter()
                .filter(|f| &f.name == time || aggregate.by.contains(&f.name) || aggregate.values.contains_key(&f.name))
                .map(|f| match aggregate.values.get(&f.name) {
                    Some(AggregateFunction::Count) => {
                        FieldSpec { field_type: FieldType::Int64, unit: None, nullable: false, ..f.clone() }
                    }
                    Some(AggregateFunction::Avg) => {
                        FieldSpec { field_type: FieldType::Float64, nullable: true, ..f.clone() }
                    }
                    Some(_) => FieldSpec { nullable: true, ..f.clone() },
                    None => f.clone(),
                })
                .collect(),
            _ => self.schema.fields.clone(),
        };
        for field in &mut fields {
            field.nullable = true;
        }
        for name in [SOURCE_NODE, SOURCE_DATASET] {
            fields.push(FieldSpec {
                name: name.into(),
                field_type: FieldType::Utf8,
                unit: None,
                description: None,
                nullable: false,
            });
        }
        fields
    }
}

impl View {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The view described as a dataset, for the DCAT export.
    pub fn described(&self) -> Dataset {
        let spec = &self.spec;
        Dataset {
            spec: DatasetSpec {
                id: spec.id.clone(),
                title: spec.title.clone(),
                description: spec.description.clone(),
                schema: SchemaSpec { fields: spec.result_fields() },
                time_column: spec.time_column.clone(),
                series_key: spec.series_key.clone(),
                geometry: None,
                keywords: spec.keywords.clone(),
                themes: spec.themes.clone(),
                publisher: None,
                contact_point: None,
                spatial: None,
                temporal: None,
                accrual_periodicity: None,
                licence: self.policy.licence.clone().filter(|l| crate::vocab::LICENCES.check("licence", l).is_ok()),
                attribution: self.policy.attribution.clone(),
                conforms_to: Vec::new(),
                issued: None,
                landing_page: None,
                policy: None,
            },
            tenant: self.tenant.clone(),
            created: self.created,
            modified: self.modified,
            policy: self.policy.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CatalogError;

    fn spec(extra: serde_json::Value) -> ViewSpec {
        let mut value = serde_json::json!({
            "id": "pegel-owl", "title": "Pegelstände OWL", "description": "Alle Pegel",
            "select": {"themes": ["ENVI"], "keywords": ["Pegel"]},
            "schema": {"fields": [
                {"name": "time", "type": "timestamp[ms, UTC]"},
                {"name": "station", "type": "utf8"},
                {"name": "value", "type": "float64", "unit": "cm"}]},
            "time_column": "time", "series_key": "station"
        });
        if let (Some(base), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
            base.extend(extra);
        }
        serde_json::from_value(value).expect("a view definition")
    }

    fn dataset(keywords: &[&str], themes: &[&str]) -> DatasetSpec {
        serde_json::from_value(serde_json::json!({
            "id": "pegel", "title": "Pegel", "description": "Pegel",
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}]},
            "keywords": keywords, "themes": themes
        }))
        .expect("a dataset")
    }

    fn refused(extra: serde_json::Value) -> String {
        match spec(extra).validate() {
            Err(CatalogError::InvalidDataset { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_selector_needs_every_criterion_given_and_any_of_its_values() {
        let select = spec(serde_json::json!({})).select;
        assert!(select.matches(&dataset(&["PEGEL", "Werre"], &["ENVI"])), "keywords ignore case");
        assert!(!select.matches(&dataset(&["Pegel"], &["TRAN"])), "the theme must match too");
        assert!(!select.matches(&dataset(&["Wetter"], &["ENVI"])));
        assert!(!Selector::default().matches(&dataset(&["Pegel"], &["ENVI"])), "an empty selector matches nothing");
    }

    #[test]
    fn a_source_mapping_overrides_the_common_one_which_overrides_the_name() {
        let view = spec(serde_json::json!({
            "columns": {"station": "shortname"},
            "sources": {"Bielefeld/pegel": {"value": {"column": "w", "unit": "m"}, "station": "name"}}
        }));
        view.validate().expect("valid");
        assert_eq!(view.source_of("Bielefeld/pegel", "value"), ("w", Some("m")));
        assert_eq!(view.source_of("Bielefeld/pegel", "station"), ("name", None));
        assert_eq!(view.source_of("Herford/pegel", "station"), ("shortname", None));
        assert_eq!(view.source_of("Herford/pegel", "time"), ("time", None));
    }

    #[test]
    fn refusals_name_the_field_at_fault() {
        assert_eq!(refused(serde_json::json!({"select": {}})), "select");
        assert_eq!(refused(serde_json::json!({"columns": {"nope": "x"}})), "columns.nope");
        assert_eq!(refused(serde_json::json!({"sources": {"no-slash": {}}})), "sources.no-slash");
        assert_eq!(refused(serde_json::json!({"deadline": "0s"})), "deadline");
        assert_eq!(refused(serde_json::json!({"deadline": "2m"})), "deadline");
        assert_eq!(
            refused(serde_json::json!({"aggregate": {"bucket": "1h", "values": {"station": "avg"}}})),
            "aggregate.values.station"
        );
        assert_eq!(refused(serde_json::json!({"aggregate": {"bucket": "1h", "values": {}}})), "aggregate.values");
        assert_eq!(
            refused(
                serde_json::json!({"schema": {"fields": [{"name": "source_node", "type": "utf8"}]}, "time_column": null, "series_key": null})
            ),
            "schema.fields"
        );
    }

    /// What the REST API answers (axum reads bodies through `serde_path_to_error`): a
    /// duration or a type outside the grammar is refused while reading, by its path.
    #[test]
    fn unreadable_durations_and_types_are_refused_by_their_path() {
        let read = |extra: serde_json::Value| {
            let mut value = serde_json::to_value(spec(serde_json::json!({}))).expect("json");
            if let (Some(base), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
                base.extend(extra);
            }
            let error = serde_path_to_error::deserialize::<_, ViewSpec>(value).expect_err("refused");
            (error.path().to_string(), error.inner().to_string())
        };
        let (path, why) = read(serde_json::json!({"window": "a week"}));
        assert_eq!(path, "window");
        assert!(why.contains("`a week` is not a duration such as"), "{why}");
        let (path, _) = read(serde_json::json!({"aggregate": {"bucket": "1 Stunde", "values": {"value": "max"}}}));
        assert_eq!(path, "aggregate.bucket");
        let (path, why) = read(serde_json::json!({"schema": {"fields": [{"name": "t", "type": "double"}]}}));
        assert_eq!(path, "schema.fields[0].type");
        assert!(why.contains("allowed: int64"), "{why}");
        let (path, _) = read(serde_json::json!({"refresh": "400d"}));
        assert_eq!(path, "refresh", "longer than a year");
    }

    #[test]
    fn a_stored_definition_writes_its_durations_back_as_written() {
        let view = spec(serde_json::json!({"window": "7d", "refresh": "90s"}));
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(
            (json["window"].as_str(), json["refresh"].as_str(), json["deadline"].as_str()),
            (Some("7d"), Some("90s"), Some("2s"))
        );
        assert_eq!(view.window(), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(serde_json::from_value::<ViewSpec>(json).expect("read back"), view);
    }

    #[test]
    fn an_aggregating_view_answers_the_bucket_the_groups_and_the_values() {
        let view =
            spec(serde_json::json!({"aggregate": {"bucket": "1h", "by": ["station"], "values": {"value": "max"}}}));
        view.validate().expect("valid");
        let names: Vec<String> = view.result_fields().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["time", "station", "value", SOURCE_NODE, SOURCE_DATASET]);
        assert_eq!(view.bucket(), Some(Duration::from_secs(3600)));
    }
}
