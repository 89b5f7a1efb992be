//! Sealed reads run on the store's query runtime, within the query's budgets.

use arrow::datatypes::SchemaRef;
use urbanmesh_policy::Grant;
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{BatchStream, Store};

use crate::DataspaceError;
use crate::sealed::plan;

/// Streams the rows `request` asks for out of what `grant` releases. Returns once the
/// plan is valid, so that a bad filter or column is reported before any data is streamed.
pub async fn scan(store: &Store, request: &ReadRequest, grant: &Grant) -> Result<BatchStream, DataspaceError> {
    let (planner, request, grant) = (store.clone(), request.clone(), grant.clone());
    store.run(move |_| async move { plan(&planner, &request, &grant).await }).await
}

/// The schema `request` would produce under `grant`, or why it is invalid (unknown
/// column, bad filter, a policy that cannot be applied), without reading.
pub async fn check(store: &Store, request: &ReadRequest, grant: &Grant) -> Result<SchemaRef, DataspaceError> {
    let (planner, request, grant) = (store.clone(), request.clone(), grant.clone());
    store.plan(move |_| async move { plan(&planner, &request, &grant).await.map(|plan| plan.schema()) }).await
}
