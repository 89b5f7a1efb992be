//! The node's catalogue: dataset records and their DCAT-AP.de description, the search
//! index over them and the DCAT export.
//!
//! Records live in the node's sled database; this crate never moves rows of data.

mod catalog;
pub mod dashboard;
mod dataset;
pub mod dcat;
mod derived;
mod error;
mod info;
mod metadata;
mod replica;
mod schema;
pub mod search;
pub mod view;
pub mod vocab;

pub use catalog::{Catalog, FORMATS};
pub use dataset::{Dataset, DatasetSpec, Geometry};
pub use derived::Derived;
pub use error::CatalogError;
pub use info::{CatalogInfo, Endpoints};
pub use metadata::{ContactPoint, Moment, Publisher, Spatial, Temporal};
pub use replica::{Origin, Replica, SharedEntry};
pub use schema::{FieldSpec, FieldType, SchemaSpec};
