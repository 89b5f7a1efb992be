use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CatalogError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int64,
    Float64,
    Utf8,
    Bool,
    Date32,
    TimestampMillis,
    TimestampMicros,
}

impl FieldType {
    /// The type names a dataset schema may use, as written in the API.
    pub const NAMES: &str = "int64, float64, utf8, bool, date32, timestamp[ms, UTC], timestamp[us, UTC]";

    pub fn parse(name: &str) -> Option<Self> {
        let compact: String = name.chars().filter(|c| !c.is_whitespace()).collect();
        Some(match compact.to_ascii_lowercase().as_str() {
            "int64" => Self::Int64,
            "float64" => Self::Float64,
            "utf8" => Self::Utf8,
            "bool" => Self::Bool,
            "date32" => Self::Date32,
            "timestamp[ms,utc]" => Self::TimestampMillis,
            "timestamp[us,utc]" => Self::TimestampMicros,
            _ => return None,
        })
    }

    pub fn arrow(self) -> DataType {
        match self {
            Self::Int64 => DataType::Int64,
            Self::Float64 => DataType::Float64,
            Self::Utf8 => DataType::Utf8,
            Self::Bool => DataType::Boolean,
            Self::Date32 => DataType::Date32,
            Self::TimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Self::TimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    pub fn is_timestamp(self) -> bool {
        matches!(self, Self::TimestampMillis | Self::TimestampMicros)
    }
}

/// Written as its name (`timestamp[ms, UTC]`); read from any spelling [`FieldType::parse`]
/// takes, and an unknown name is refused with the names allowed.
impl Serialize for FieldType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown type `{name}`; allowed: {}", Self::NAMES)))
    }
}

/// In the API document: one of the names [`FieldType::parse`] reads, as written back.
impl utoipa::PartialSchema for FieldType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let all = [
            Self::Int64,
            Self::Float64,
            Self::Utf8,
            Self::Bool,
            Self::Date32,
            Self::TimestampMillis,
            Self::TimestampMicros,
        ];
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(all.iter().map(ToString::to_string)))
            .into()
    }
}

impl utoipa::ToSchema for FieldType {}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Int64 => "int64",
            Self::Float64 => "float64",
            Self::Utf8 => "utf8",
            Self::Bool => "bool",
            Self::Date32 => "date32",
            Self::TimestampMillis => "timestamp[ms, UTC]",
            Self::TimestampMicros => "timestamp[us, UTC]",
        })
    }
}

/// One column as declared by the data owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    pub fields: Vec<FieldSpec>,
}

impl SchemaSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if self.fields.is_empty() {
            return Err(CatalogError::invalid("schema.fields", "a dataset needs at least one column"));
        }
        if self.fields.len() > 1024 {
            return Err(CatalogError::invalid("schema.fields", "at most 1024 columns are allowed"));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, field) in self.fields.iter().enumerate() {
            if !is_column_name(&field.name) {
                return Err(CatalogError::invalid(
                    format!("schema.fields[{index}].name"),
                    format!(
                        "`{}` is not a valid column name: use 1-63 lower-case letters, digits and `_`, \
                         starting with a letter or `_`, so that filters can name it without quotes",
                        field.name
                    ),
                ));
            }
            if !seen.insert(field.name.as_str()) {
                return Err(CatalogError::invalid(
                    format!("schema.fields[{index}].name"),
                    format!("column `{}` is declared twice", field.name),
                ));
            }
        }
        Ok(())
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The names of the columns that hold numbers (what a chart can draw).
    pub fn numbers(&self) -> Vec<&str> {
        self.fields.iter().filter(|f| f.field_type.arrow().is_numeric()).map(|f| f.name.as_str()).collect()
    }

    /// The Arrow schema; units and descriptions travel as field metadata.
    pub fn to_arrow(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .fields
            .iter()
            .map(|spec| {
                let mut metadata = std::collections::HashMap::new();
                if let Some(unit) = &spec.unit {
                    metadata.insert("unit".to_owned(), unit.clone());
                }
                if let Some(description) = &spec.description {
                    metadata.insert("description".to_owned(), description.clone());
                }
                Field::new(&spec.name, spec.field_type.arrow(), spec.nullable).with_metadata(metadata)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

pub(crate) fn is_column_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok && name.len() < 64 && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fields: &[(&str, &str)]) -> Result<SchemaSpec, serde_json::Error> {
        let fields: Vec<_> = fields.iter().map(|(name, ty)| serde_json::json!({"name": name, "type": ty})).collect();
        serde_json::from_value(serde_json::json!({ "fields": fields }))
    }

    #[test]
    fn parses_every_type_name() {
        let schema = spec(&[
            ("a", "int64"),
            ("b", "float64"),
            ("c", "utf8"),
            ("d", "bool"),
            ("e", "date32"),
            ("f", "timestamp[ms, UTC]"),
            ("g", "timestamp[us,UTC]"),
        ])
        .expect("types");
        schema.validate().expect("valid");
        let arrow = schema.to_arrow();
        assert_eq!(arrow.field(5).data_type(), &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())));
        assert_eq!(arrow.field(6).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    }

    #[test]
    fn names_the_bad_field_and_lists_allowed_types() {
        let err = spec(&[("a", "int64"), ("b", "double")]).expect_err("unknown type");
        let message = err.to_string();
        assert!(message.contains("unknown type `double`"), "{message}");
        assert!(message.contains("float64") && message.contains("timestamp[us, UTC]"), "{message}");
        let err = spec(&[("Bad Name", "int64")]).expect("types").validate().expect_err("invalid");
        assert!(err.to_string().contains("schema.fields[0].name"));
        let err = spec(&[("a", "int64"), ("a", "utf8")]).expect("types").validate().expect_err("duplicate");
        assert!(err.to_string().contains("declared twice"));
    }
}
