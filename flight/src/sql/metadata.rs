//! The catalogue commands of Flight SQL, answered from the caller's listing: what the
//! server is (`GetSqlInfo`), its catalog, schemas, tables and their columns, the table
//! types and the column types. Primary keys: none, as datasets have none.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfoData};
use arrow_flight::sql::{
    Command, CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, SqlInfo, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
};

use super::names::{self, CATALOG, VIEWS};
use super::tables::{self, Listed, Origin};
use super::types;
use crate::auth::Caller;
use crate::{FlightContext, FlightError};

/// A catalogue command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Metadata {
    SqlInfo(CommandGetSqlInfo),
    Catalogs(CommandGetCatalogs),
    DbSchemas(CommandGetDbSchemas),
    Tables(CommandGetTables),
    TableTypes(CommandGetTableTypes),
    XdbcTypeInfo(CommandGetXdbcTypeInfo),
    PrimaryKeys(CommandGetPrimaryKeys),
}

const TABLE: &str = "TABLE";
const VIEW: &str = "VIEW";

static SQL_INFO: LazyLock<Result<SqlInfoData, String>> = LazyLock::new(|| {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "Urban Mesh");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    info.append(SqlInfo::FlightSqlServerCancel, false);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, false);
    info.append(SqlInfo::SqlIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32);
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(SqlInfo::SqlQuotedIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32);
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    info.append(SqlInfo::SqlNullOrdering, 0_i32); // sorted high: last ascending, first descending
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.build().map_err(|e| e.to_string())
});

static XDBC_TYPES: LazyLock<Result<XdbcTypeInfoData, String>> =
    LazyLock::new(|| types::xdbc_types().map_err(|e| e.to_string()));

fn sql_info() -> Result<&'static SqlInfoData, FlightError> {
    SQL_INFO.as_ref().map_err(|e| FlightError::Sql { reason: format!("server description: {e}") })
}

fn xdbc_types() -> Result<&'static XdbcTypeInfoData, FlightError> {
    XDBC_TYPES.as_ref().map_err(|e| FlightError::Sql { reason: format!("type catalogue: {e}") })
}

/// The primary keys' columns, as the standard fixes them.
static PRIMARY_KEYS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

impl Metadata {
    /// The command as sent.
    pub(crate) fn command(&self) -> Command {
        match self {
            Self::SqlInfo(c) => Command::CommandGetSqlInfo(c.clone()),
            Self::Catalogs(c) => Command::CommandGetCatalogs(*c),
            Self::DbSchemas(c) => Command::CommandGetDbSchemas(c.clone()),
            Self::Tables(c) => Command::CommandGetTables(c.clone()),
            Self::TableTypes(c) => Command::CommandGetTableTypes(*c),
            Self::XdbcTypeInfo(c) => Command::CommandGetXdbcTypeInfo(*c),
            Self::PrimaryKeys(c) => Command::CommandGetPrimaryKeys(c.clone()),
        }
    }

    /// The schema of the command's answer.
    pub(crate) fn schema(&self) -> Result<SchemaRef, FlightError> {
        Ok(match self {
            Self::SqlInfo(_) => Arc::new(SqlInfoDataBuilder::schema().clone()),
            Self::Catalogs(command) => command.into_builder().schema(),
            Self::DbSchemas(command) => command.clone().into_builder().schema(),
            Self::Tables(command) => command.clone().into_builder().schema(),
            Self::TableTypes(command) => command.into_builder().schema(),
            Self::XdbcTypeInfo(_) => xdbc_types()?.schema(),
            Self::PrimaryKeys(_) => Arc::clone(&PRIMARY_KEYS),
        })
    }

    /// The command's answer for the caller.
    pub(crate) async fn answer(self, context: &FlightContext, caller: &Caller) -> Result<RecordBatch, FlightError> {
        let batch = match self {
            Self::SqlInfo(command) => command.into_builder(sql_info()?).build(),
            Self::Catalogs(command) => {
                let mut builder = command.into_builder();
                builder.append(CATALOG);
                builder.build()
            }
            Self::DbSchemas(command) => {
                let mut builder = command.into_builder();
                for schema in schemas(context, &tables::list(context, caller)?) {
                    builder.append(CATALOG, schema);
                }
                builder.build()
            }
            Self::Tables(command) => return tables(context, caller, command).await,
            Self::TableTypes(command) => {
                let mut builder = command.into_builder();
                builder.append(TABLE);
                builder.append(VIEW);
                builder.build()
            }
            Self::XdbcTypeInfo(command) => command.into_builder(xdbc_types()?).build(),
            Self::PrimaryKeys(_) => Ok(RecordBatch::new_empty(Arc::clone(&PRIMARY_KEYS))),
        };
        batch.map_err(FlightError::Stream)
    }
}

/// The schemas the caller sees: the node's own and the views' always, and each member's
/// with a table the caller may query.
fn schemas(context: &FlightContext, listed: &[Listed]) -> BTreeSet<String> {
    let mut schemas: BTreeSet<String> = listed.iter().map(|t| t.schema.clone()).collect();
    schemas.insert(names::own_schema(context));
    schemas.insert(VIEWS.to_owned());
    schemas
}

async fn tables(
    context: &FlightContext,
    caller: &Caller,
    command: CommandGetTables,
) -> Result<RecordBatch, FlightError> {
    let include_schema = command.include_schema;
    let mut builder: GetTablesBuilder = command.into_builder();
    for table in tables::list(context, caller)? {
        let kind = if table.origin == Origin::View { VIEW } else { TABLE };
        let schema = if include_schema { columns(context, caller, &table).await? } else { table.described };
        builder
            .append(CATALOG, &table.schema, &table.table, kind, &types::with_type_names(&schema))
            .map_err(FlightError::Stream)?;
    }
    builder.build().map_err(FlightError::Stream)
}

/// A table's columns as the caller would read them: this node's datasets as the grant
/// releases them; members' datasets and views as the catalogue describes them.
async fn columns(context: &FlightContext, caller: &Caller, table: &Listed) -> Result<SchemaRef, FlightError> {
    match table.origin {
        Origin::Own => {
            let dataset = context.catalog.get(&table.table)?;
            Ok(context.gate.listed_schema(&caller.reader(), &dataset).await?.0)
        }
        Origin::Member { .. } | Origin::View => Ok(Arc::clone(&table.described)),
    }
}
