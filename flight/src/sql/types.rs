//! The SQL names of the Arrow types the node serves, as JDBC and ODBC clients expect them:
//! on every column of a described table (`ARROW:FLIGHT:SQL:TYPE_NAME`) and in the type
//! catalogue (`GetXdbcTypeInfo`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

/// Field metadata naming a column's SQL type.
pub(crate) const TYPE_NAME_KEY: &str = "ARROW:FLIGHT:SQL:TYPE_NAME";

/// The SQL name of an Arrow type.
pub(crate) fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::UInt8 => "TINYINT".into(),
        DataType::Int16 | DataType::UInt16 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt32 => "INTEGER".into(),
        DataType::Int64 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => {
            "DECIMAL".into()
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "VARBINARY".into()
        }
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Dictionary(_, value) => type_name(value),
        other => other.to_string().to_uppercase(),
    }
}

/// The schema with each column's SQL type name in its metadata.
pub(crate) fn with_type_names(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let mut metadata = field.metadata().clone();
            metadata.insert(TYPE_NAME_KEY.to_owned(), type_name(field.data_type()));
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The types a column can have here, for `GetXdbcTypeInfo`.
pub(crate) fn xdbc_types() -> Result<XdbcTypeInfoData, arrow_flight::error::FlightError> {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    let quoted = |name: &str, data_type, subcode| XdbcTypeInfo {
        type_name: name.to_owned(),
        data_type,
        literal_prefix: Some("'".to_owned()),
        literal_suffix: Some("'".to_owned()),
        nullable: Nullable::NullabilityNullable,
        case_sensitive: data_type == XdbcDataType::XdbcVarchar,
        searchable: Searchable::Full,
        local_type_name: Some(name.to_owned()),
        sql_data_type: data_type,
        datetime_subcode: subcode,
        ..XdbcTypeInfo::default()
    };
    let number = |name: &str, data_type, size: i32, radix: i32| XdbcTypeInfo {
        type_name: name.to_owned(),
        data_type,
        column_size: Some(size),
        nullable: Nullable::NullabilityNullable,
        searchable: Searchable::Full,
        unsigned_attribute: Some(false),
        local_type_name: Some(name.to_owned()),
        sql_data_type: data_type,
        num_prec_radix: Some(radix),
        ..XdbcTypeInfo::default()
    };
    builder.append(XdbcTypeInfo {
        type_name: "BOOLEAN".into(),
        data_type: XdbcDataType::XdbcBit,
        column_size: Some(1),
        nullable: Nullable::NullabilityNullable,
        searchable: Searchable::Basic,
        local_type_name: Some("BOOLEAN".into()),
        sql_data_type: XdbcDataType::XdbcBit,
        ..XdbcTypeInfo::default()
    });
    builder.append(number("TINYINT", XdbcDataType::XdbcTinyint, 3, 10));
    builder.append(number("SMALLINT", XdbcDataType::XdbcSmallint, 5, 10));
    builder.append(number("INTEGER", XdbcDataType::XdbcInteger, 10, 10));
    builder.append(number("BIGINT", XdbcDataType::XdbcBigint, 19, 10));
    builder.append(number("REAL", XdbcDataType::XdbcReal, 24, 2));
    builder.append(number("DOUBLE", XdbcDataType::XdbcDouble, 53, 2));
    builder.append(XdbcTypeInfo { fixed_prec_scale: true, ..number("DECIMAL", XdbcDataType::XdbcDecimal, 38, 10) });
    builder.append(quoted("VARCHAR", XdbcDataType::XdbcVarchar, None));
    builder.append(quoted("VARBINARY", XdbcDataType::XdbcVarbinary, None));
    builder.append(quoted("DATE", XdbcDataType::XdbcDate, None));
    builder.append(quoted("TIME", XdbcDataType::XdbcTime, Some(XdbcDatetimeSubcode::XdbcSubcodeTime)));
    builder.append(quoted("TIMESTAMP", XdbcDataType::XdbcTimestamp, Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp)));
    builder.append(quoted(
        "TIMESTAMP WITH TIME ZONE",
        XdbcDataType::XdbcTimestamp,
        Some(XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone),
    ));
    builder.build()
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::TimeUnit;

    use super::*;

    #[test]
    fn every_column_carries_its_sql_type() {
        let schema = Schema::new(vec![
            Field::new("time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new("value", DataType::Float64, true),
            Field::new("station", DataType::Utf8, false),
        ]);
        let named = with_type_names(&schema);
        let names: Vec<&str> =
            named.fields().iter().map(|f| f.metadata().get(TYPE_NAME_KEY).map_or("", String::as_str)).collect();
        assert_eq!(names, ["TIMESTAMP WITH TIME ZONE", "DOUBLE", "VARCHAR"]);
        assert!(xdbc_types().expect("types").record_batch(None).expect("batch").num_rows() >= 13);
    }
}
