//! The node's dataset records: what each dataset is, who owns it and its schema.
//!
//! Records live in the node's sled database; this crate never moves rows of data.

mod catalog;
mod dataset;
mod error;
mod schema;

pub use catalog::Catalog;
pub use dataset::{Dataset, DatasetSpec, Geometry};
pub use error::CatalogError;
pub use schema::{FieldSpec, FieldType, SchemaSpec};
