use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::CatalogError;

/// The type names a dataset schema may use, as written in the API.
const TYPE_NAMES: &str = "int64, float64, utf8, bool, date32, timestamp[ms, UTC], timestamp[us, UTC]";

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    pub fields: Vec<FieldSpec>,
}

impl FieldSpec {
    /// The parsed type; only valid after [`SchemaSpec::validate`].
    pub fn field_type(&self) -> Result<FieldType, CatalogError> {
        FieldType::parse(&self.type_name).ok_or_else(|| {
            CatalogError::invalid(
                format!("schema.fields[{}].type", self.name),
                format!("unknown type `{}`; allowed: {TYPE_NAMES}", self.type_name),
            )
        })
    }
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
            field.field_type()?;
        }
        Ok(())
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The Arrow schema; units and descriptions travel as field metadata.
    pub fn to_arrow(&self) -> Result<SchemaRef, CatalogError> {
        let fields = self
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
                Ok(Field::new(&spec.name, spec.field_type()?.arrow(), spec.nullable).with_metadata(metadata))
            })
            .collect::<Result<Vec<_>, CatalogError>>()?;
        Ok(Arc::new(Schema::new(fields)))
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

    fn spec(fields: &[(&str, &str)]) -> SchemaSpec {
        SchemaSpec {
            fields: fields
                .iter()
                .map(|(name, ty)| FieldSpec {
                    name: (*name).into(),
                    type_name: (*ty).into(),
                    unit: None,
                    description: None,
                    nullable: false,
                })
                .collect(),
        }
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
        ]);
        schema.validate().expect("valid");
        let arrow = schema.to_arrow().expect("arrow");
        assert_eq!(arrow.field(5).data_type(), &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())));
        assert_eq!(arrow.field(6).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    }

    #[test]
    fn names_the_bad_field_and_lists_allowed_types() {
        let err = spec(&[("a", "int64"), ("b", "double")]).validate().expect_err("invalid");
        let message = err.to_string();
        assert!(message.contains("schema.fields[b].type"), "{message}");
        assert!(message.contains("float64"), "{message}");
        let err = spec(&[("Bad Name", "int64")]).validate().expect_err("invalid");
        assert!(err.to_string().contains("schema.fields[0].name"));
        let err = spec(&[("a", "int64"), ("a", "utf8")]).validate().expect_err("duplicate");
        assert!(err.to_string().contains("declared twice"));
    }
}
