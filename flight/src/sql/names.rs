//! How datasets are named in SQL: catalog `urbanmesh`, then one schema per town and one
//! for the regional views, then the dataset's id.
//!
//! A town's schema is its name folded so that it can be typed without quotes: lowercase,
//! each run of characters other than letters and digits made one `_`, none at either end.
//! Letters stay as they are, umlauts included: `Gütersloh` is `gütersloh`, `Bad Salzuflen`
//! is `bad_salzuflen`. A table is named by the dataset's id, which may hold hyphens, so it
//! is quoted where it does: `bad_salzuflen."pegel-werre"`.

/// The one catalog.
pub(crate) const CATALOG: &str = "urbanmesh";

/// The schema of the regional views this node serves.
pub(crate) const VIEWS: &str = "views";

/// The schema of this node's own municipality.
pub(crate) fn own_schema(context: &crate::FlightContext) -> String {
    schema_of(&context.catalog.info().municipality)
}

/// How a dataset of the town `town` is written in SQL, in full.
pub fn table_name(town: &str, dataset: &str) -> String {
    let plain = dataset.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && dataset.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let table = if plain { dataset.to_owned() } else { format!("\"{}\"", dataset.replace('"', "\"\"")) };
    format!("{CATALOG}.{}.{table}", schema_of(town))
}

/// The schema of a town named `name`; a name with no letter or digit is `town`, and a
/// name that folds to a reserved schema name gets a `town_` prefix.
pub(crate) fn schema_of(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_alphanumeric() {
            folded.extend(c.to_lowercase());
        } else if !folded.is_empty() && !folded.ends_with('_') {
            folded.push('_');
        }
    }
    let folded = folded.trim_end_matches('_');
    match folded {
        "" => "town".to_owned(),
        VIEWS | "information_schema" | "public" => format!("town_{folded}"),
        _ => folded.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn town_names_fold_to_typeable_schemas() {
        assert_eq!(schema_of("Gütersloh"), "gütersloh");
        assert_eq!(schema_of("Bad Salzuflen"), "bad_salzuflen");
        assert_eq!(schema_of("  Rheda-Wiedenbrück (Stadt) "), "rheda_wiedenbrück_stadt");
        assert_eq!(schema_of("STRAẞBURG"), "straßburg");
        assert_eq!(schema_of("Views"), "town_views");
        assert_eq!(schema_of("--"), "town");
    }

    #[test]
    fn tables_with_hyphens_are_quoted() {
        assert_eq!(table_name("Bad Salzuflen", "pegel-werre"), "urbanmesh.bad_salzuflen.\"pegel-werre\"");
        assert_eq!(table_name("Herford", "wetter"), "urbanmesh.herford.wetter");
        assert_eq!(table_name("Herford", "2024_counts"), "urbanmesh.herford.\"2024_counts\"");
    }
}
