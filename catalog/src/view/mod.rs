//! Regional views: stored definitions that select datasets across the federation and map
//! them to one schema. Assembling them moves rows, so that happens in `flight`.

mod records;
mod spec;
mod units;
mod validate;

pub use records::ViewRecords;
pub use spec::{AggregateFunction, ColumnSource, SOURCE_DATASET, SOURCE_NODE, Selector, View, ViewAggregate, ViewSpec};
pub use units::Conversion;
