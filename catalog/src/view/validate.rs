//! The checks a view definition passes before it is stored: each refusal names the field
//! at fault.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::CatalogError;
use crate::dataset::is_dataset_id;
use crate::metadata::non_empty;
use crate::schema::{FieldType, is_column_name};
use crate::vocab::THEMES;

use super::spec::{AggregateFunction, ColumnSource, SOURCE_DATASET, SOURCE_NODE, ViewAggregate, ViewSpec};

impl ViewSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if !is_dataset_id(&self.id) {
            return Err(CatalogError::invalid(
                "id",
                format!("`{}` is not a valid view id: use 1-64 lower-case letters, digits, `-` and `_`", self.id),
            ));
        }
        non_empty("title", &self.title)?;
        non_empty("description", &self.description)?;
        self.validate_select()?;
        self.schema.validate()?;
        for reserved in [SOURCE_NODE, SOURCE_DATASET] {
            if self.schema.field(reserved).is_some() {
                return Err(CatalogError::invalid(
                    "schema.fields",
                    format!("`{reserved}` is added by the view itself"),
                ));
            }
        }
        if let Some(time) = &self.time_column {
            self.expect_column("time_column", time, |t| t.is_timestamp(), "a timestamp")?;
        }
        if let Some(key) = &self.series_key {
            self.expect_column("series_key", key, |_| true, "")?;
        }
        self.validate_mapping("columns", &self.columns)?;
        for (source, mapping) in &self.sources {
            if source.split_once('/').is_none_or(|(node, dataset)| node.is_empty() || dataset.is_empty()) {
                return Err(CatalogError::invalid(
                    format!("sources.{source}"),
                    "name a source as `<municipality>/<dataset>`",
                ));
            }
            self.validate_mapping(&format!("sources.{source}"), mapping)?;
        }
        for (field, span) in [("deadline", Some(&self.deadline)), ("window", self.window.as_ref())] {
            if span.is_some_and(|span| span.get().is_zero()) {
                return Err(CatalogError::invalid(field, "must be longer than 0s"));
            }
        }
        if self.deadline() > Duration::from_secs(60) {
            return Err(CatalogError::invalid("deadline", "must be at most 60s"));
        }
        if self.window.is_some() && self.time_column.is_none() {
            return Err(CatalogError::invalid("window", "needs a `time_column`"));
        }
        if let Some(aggregate) = &self.aggregate {
            self.validate_aggregate(aggregate)?;
        }
        for (i, theme) in self.themes.iter().enumerate() {
            THEMES.check(&format!("themes[{i}]"), theme)?;
        }
        for (i, keyword) in self.keywords.iter().enumerate() {
            non_empty(&format!("keywords[{i}]"), keyword)?;
        }
        Ok(())
    }

    fn validate_select(&self) -> Result<(), CatalogError> {
        if self.select.is_empty() {
            return Err(CatalogError::invalid("select", "name at least one theme, keyword or conforms_to"));
        }
        for (i, theme) in self.select.themes.iter().enumerate() {
            THEMES.check(&format!("select.themes[{i}]"), theme)?;
        }
        for (i, keyword) in self.select.keywords.iter().enumerate() {
            non_empty(&format!("select.keywords[{i}]"), keyword)?;
        }
        for (i, standard) in self.select.conforms_to.iter().enumerate() {
            crate::metadata::check_iri(&format!("select.conforms_to[{i}]"), standard)?;
        }
        Ok(())
    }

    fn validate_mapping(&self, path: &str, mapping: &BTreeMap<String, ColumnSource>) -> Result<(), CatalogError> {
        for (target, source) in mapping {
            if self.schema.field(target).is_none() {
                return Err(CatalogError::invalid(
                    format!("{path}.{target}"),
                    format!("`{target}` is not a column of the view's schema"),
                ));
            }
            if !is_column_name(source.column()) {
                return Err(CatalogError::invalid(
                    format!("{path}.{target}"),
                    format!("`{}` is not a valid column name", source.column()),
                ));
            }
            if let Some(unit) = source.unit() {
                non_empty(&format!("{path}.{target}.unit"), unit)?;
            }
        }
        Ok(())
    }

    fn validate_aggregate(&self, aggregate: &ViewAggregate) -> Result<(), CatalogError> {
        let time = self
            .time_column
            .as_deref()
            .ok_or_else(|| CatalogError::invalid("aggregate", "needs a `time_column` to bucket"))?;
        if aggregate.bucket.whole_seconds().is_none() {
            return Err(CatalogError::invalid(
                "aggregate.bucket",
                format!("`{}` is not a bucket width of whole seconds, such as 15m, 1h or 1d", aggregate.bucket),
            ));
        }
        for (i, column) in aggregate.by.iter().enumerate() {
            if self.schema.field(column).is_none() || column == time {
                return Err(CatalogError::invalid(
                    format!("aggregate.by[{i}]"),
                    format!("`{column}` is not a non-time column of the view's schema"),
                ));
            }
        }
        if aggregate.values.is_empty() {
            return Err(CatalogError::invalid("aggregate.values", "name at least one column and its function"));
        }
        for (column, function) in &aggregate.values {
            let path = format!("aggregate.values.{column}");
            if column == time || aggregate.by.contains(column) {
                return Err(CatalogError::invalid(path, "is the time column or a grouping column"));
            }
            let numeric = |t: FieldType| matches!(t, FieldType::Int64 | FieldType::Float64);
            match function {
                AggregateFunction::Avg | AggregateFunction::Sum => {
                    self.expect_column(&path, column, numeric, "int64 or float64")?
                }
                _ => self.expect_column(&path, column, |_| true, "")?,
            }
        }
        Ok(())
    }

    fn expect_column(
        &self,
        field: &str,
        column: &str,
        accepts: impl Fn(FieldType) -> bool,
        wanted: &str,
    ) -> Result<(), CatalogError> {
        let spec = self
            .schema
            .field(column)
            .ok_or_else(|| CatalogError::invalid(field, format!("`{column}` is not a column of the view's schema")))?;
        let found = spec.field_type;
        if !accepts(found) {
            return Err(CatalogError::invalid(field, format!("column `{column}` is {found}, but must be {wanted}")));
        }
        Ok(())
    }
}
