//! Why a source's rows do not fit a view: told on the view's status page, so that the
//! owner of the view or of the source can fix it.

use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use urbanmesh_catalog::CatalogError;
use urbanmesh_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Mismatch {
    #[error("has no column `{column}` for `{field}`")]
    MissingColumn { column: String, field: String },
    #[error("column `{column}` is {found}, which does not convert to {wanted} for `{field}`")]
    Type { column: String, found: DataType, wanted: DataType, field: String },
    #[error("column `{column}` is in {from}, which does not convert to {to} for `{field}`")]
    Unit { column: String, from: String, to: String, field: String },
    #[error("`{field}` is not numeric, so {column}'s unit cannot be converted")]
    NotNumeric { field: String, column: String },
    #[error("column `{column}` for `{field}`: {source}")]
    Value { column: String, field: String, source: ArrowError },
    #[error("the view's schema: {0}")]
    Schema(#[from] CatalogError),
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    #[error("aggregating: {0}")]
    Aggregate(#[from] StoreError),
}
