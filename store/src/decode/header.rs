use crate::StoreError;
use crate::rows::RowsBuilder;

/// For each schema column, its position among the source's header names.
pub(super) fn positions(builder: &RowsBuilder, names: &[String]) -> Result<Vec<Option<usize>>, StoreError> {
    let mut positions = vec![None; builder.schema().fields().len()];
    for (position, name) in names.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            continue; // an unnamed column (a trailing delimiter, a blank header cell) is ignored
        }
        let column = builder.column_index(name).ok_or_else(|| StoreError::Malformed {
            reason: format!(
                "header: column {} `{name}` is not in the dataset; the dataset has: {}",
                position + 1,
                builder.column_list()
            ),
        })?;
        if positions[column].replace(position).is_some() {
            return Err(StoreError::Malformed { reason: format!("header: column `{name}` appears twice") });
        }
    }
    for (field, position) in builder.schema().fields().iter().zip(&positions) {
        if position.is_none() && !field.is_nullable() {
            return Err(StoreError::Malformed {
                reason: format!("header: required column `{}` is missing", field.name()),
            });
        }
    }
    Ok(positions)
}
