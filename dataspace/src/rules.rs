//! A policy's rules are tried against the dataset when they are written, so that a row
//! filter or an aggregation that cannot apply is refused then, not when someone reads.

use urbanmesh_catalog::Dataset;
use urbanmesh_policy::Grant;
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::Store;

use crate::DataspaceError;

/// Plans a whole read under each rule that filters or aggregates; the first that does not
/// plan is refused, naming its field (`policy.rules[1].row_filter`).
pub async fn check_rules(store: &Store, dataset: &Dataset) -> Result<(), DataspaceError> {
    let request = ReadRequest::whole(dataset.id());
    for (i, rule) in dataset.policy.rules.iter().enumerate() {
        if rule.row_filter.is_none() && rule.aggregate.is_none() {
            continue;
        }
        let grant = Grant {
            row_filter: rule.row_filter.clone(),
            masked: rule.masked.clone(),
            columns: rule.columns.clone(),
            aggregate: rule.aggregate.clone(),
            ..Grant::owner()
        };
        if let Err(error) = crate::check(store, &request, &grant).await {
            let part = if rule.row_filter.is_some() { "row_filter" } else { "aggregate" };
            return Err(DataspaceError::InvalidRule {
                field: format!("policy.rules[{i}].{part}"),
                reason: error.to_string(),
            });
        }
    }
    Ok(())
}
