//! One source's rows in the view's target schema: columns mapped, units converted,
//! types cast, provenance added.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use urbanmesh_catalog::DatasetSpec;
use urbanmesh_catalog::view::{Conversion, ViewSpec};

use super::mismatch::Mismatch;

/// How each target column is made from a source's columns; built once per source.
pub(crate) struct Mapping {
    target: SchemaRef,
    columns: Vec<ColumnPlan>,
}

enum ColumnPlan {
    /// The source column's position, and the unit conversion to apply.
    From { name: String, conversion: Conversion },
    /// The source has no such column and the target allows nulls.
    Null,
}

impl Mapping {
    /// Plans the mapping from the source's declared schema (units) and the schema its rows
    /// actually arrive in (after its policy); `Err` says why the source does not fit.
    pub(crate) fn plan(
        view: &ViewSpec,
        key: &str,
        declared: &DatasetSpec,
        arrived: &SchemaRef,
        target: SchemaRef,
    ) -> Result<Self, Mismatch> {
        let mut columns = Vec::with_capacity(view.schema.fields.len());
        for field in &view.schema.fields {
            let (column, stated_unit) = view.source_of(key, &field.name);
            let Ok(source) = arrived.field_with_name(column) else {
                if field.nullable {
                    columns.push(ColumnPlan::Null);
                    continue;
                }
                return Err(Mismatch::MissingColumn { column: column.to_owned(), field: field.name.clone() });
            };
            let wanted = target.field_with_name(&field.name)?.data_type();
            if !castable(source.data_type(), wanted) {
                return Err(Mismatch::Type {
                    column: column.to_owned(),
                    found: source.data_type().clone(),
                    wanted: wanted.clone(),
                    field: field.name.clone(),
                });
            }
            let source_unit = stated_unit.or_else(|| declared.schema.field(column).and_then(|f| f.unit.as_deref()));
            let conversion = match (source_unit, field.unit.as_deref()) {
                (Some(from), Some(to)) => Conversion::between(from, to).ok_or_else(|| Mismatch::Unit {
                    column: column.to_owned(),
                    from: from.to_owned(),
                    to: to.to_owned(),
                    field: field.name.clone(),
                })?,
                _ => Conversion::IDENTITY,
            };
            if !conversion.is_identity() && !is_numeric(wanted) {
                return Err(Mismatch::NotNumeric { field: field.name.clone(), column: column.to_owned() });
            }
            columns.push(ColumnPlan::From { name: column.to_owned(), conversion });
        }
        Ok(Self { target, columns })
    }

    /// The batch in the target schema followed by the provenance columns.
    pub(crate) fn apply(
        &self,
        batch: &RecordBatch,
        node: &str,
        dataset: &str,
        out: &SchemaRef,
    ) -> Result<RecordBatch, Mismatch> {
        let rows = batch.num_rows();
        let strict = CastOptions { safe: false, ..Default::default() };
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len() + 2);
        for (plan, field) in self.columns.iter().zip(self.target.fields()) {
            let array = match plan {
                ColumnPlan::Null => new_null_array(field.data_type(), rows),
                ColumnPlan::From { name, conversion } => {
                    let source = batch
                        .column_by_name(name)
                        .ok_or_else(|| Mismatch::MissingColumn { column: name.clone(), field: field.name().clone() })?;
                    let array = if conversion.is_identity() {
                        Arc::clone(source)
                    } else {
                        let floats = cast_with_options(source, &DataType::Float64, &strict)?;
                        let floats = floats
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .ok_or_else(|| ArrowError::CastError(format!("`{name}` did not cast to float64")))?;
                        let converted: Float64Array = floats.unary(|v| v.mul_add(conversion.scale, conversion.offset));
                        Arc::new(converted) as ArrayRef
                    };
                    cast_with_options(&array, field.data_type(), &strict).map_err(|source| Mismatch::Value {
                        column: name.clone(),
                        field: field.name().clone(),
                        source,
                    })?
                }
            };
            arrays.push(array);
        }
        arrays.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(node, rows))));
        arrays.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(dataset, rows))));
        Ok(RecordBatch::try_new(Arc::clone(out), arrays)?)
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating()
}

/// Conversions a view makes: numbers to numbers, timestamps to timestamps, anything to text.
fn castable(from: &DataType, to: &DataType) -> bool {
    from == to
        || (is_numeric(from) && is_numeric(to))
        || (matches!(from, DataType::Timestamp(..)) && matches!(to, DataType::Timestamp(..)))
        || matches!(to, DataType::Utf8 | DataType::LargeUtf8)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Float64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use urbanmesh_catalog::view::ColumnSource;

    use super::*;

    fn view() -> ViewSpec {
        serde_json::from_value(serde_json::json!({
            "id": "v", "title": "V", "description": "V", "select": {"keywords": ["Pegel"]},
            "schema": {"fields": [
                {"name": "station", "type": "utf8"},
                {"name": "value", "type": "float64", "unit": "cm"},
                {"name": "quality", "type": "int64", "nullable": true}]},
            "columns": {"station": "name"}
        }))
        .expect("view")
    }

    fn declared(unit: &str, value_type: &str) -> DatasetSpec {
        serde_json::from_value(serde_json::json!({
            "id": "pegel", "title": "P", "description": "P",
            "schema": {"fields": [{"name": "name", "type": "utf8"}, {"name": "w", "type": value_type, "unit": unit}]}
        }))
        .expect("dataset")
    }

    fn arrived(value: DataType) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, false), Field::new("w", value, true)]))
    }

    fn out(view: &ViewSpec) -> (SchemaRef, SchemaRef) {
        let target = view.schema.to_arrow();
        let mut fields: Vec<Field> = target.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        fields.push(Field::new("source_node", DataType::Utf8, false));
        fields.push(Field::new("source_dataset", DataType::Utf8, false));
        (target, Arc::new(Schema::new(fields)))
    }

    #[test]
    fn maps_columns_converts_units_and_adds_provenance() {
        let mut view = view();
        view.sources.insert("Bielefeld/pegel".into(), [("value".to_owned(), ColumnSource::Column("w".into()))].into());
        let (target, out_schema) = out(&view);
        let schema = arrived(DataType::Float64);
        let mapping =
            Mapping::plan(&view, "Bielefeld/pegel", &declared("m", "float64"), &schema, target).expect("fits");
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec!["A", "B"])), Arc::new(Float64Array::from(vec![1.25, 0.5]))],
        )
        .expect("batch");
        let mapped = mapping.apply(&batch, "Bielefeld", "pegel", &out_schema).expect("applied");
        let values = mapped.column(1).as_any().downcast_ref::<Float64Array>().expect("float64");
        assert_eq!(values.values(), &[125.0, 50.0]);
        assert_eq!(mapped.column(2).null_count(), 2, "a missing nullable column is null");
        let node = mapped.column(3).as_any().downcast_ref::<StringArray>().expect("utf8");
        assert_eq!(node.value(1), "Bielefeld");
    }

    #[test]
    fn refuses_what_does_not_convert() {
        let mut view = view();
        view.columns.insert("value".into(), ColumnSource::Column("w".into()));
        let (target, _) = out(&view);
        let text = Mapping::plan(&view, "X/pegel", &declared("cm", "utf8"), &arrived(DataType::Utf8), target.clone());
        assert!(matches!(text.err(), Some(Mismatch::Type { ref column, .. }) if column == "w"));
        let celsius = Mapping::plan(&view, "X/pegel", &declared("°C", "float64"), &arrived(DataType::Float64), target);
        let unit = celsius.err().expect("°C is not cm");
        assert!(matches!(unit, Mismatch::Unit { .. }) && unit.to_string().contains("°C"), "{unit}");
        let mut missing = self::view();
        missing.columns.clear();
        let (target, _) = out(&missing);
        let absent =
            Mapping::plan(&missing, "X/pegel", &declared("cm", "float64"), &arrived(DataType::Float64), target);
        let absent = absent.err().expect("no station column");
        assert!(absent.to_string().contains("no column `station`"), "{absent}");
    }
}
