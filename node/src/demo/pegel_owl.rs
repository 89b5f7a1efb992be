//! The regional view "Pegelstände OWL": every town's water levels of the last week, as one
//! table assembled live from the nodes of the federation.

use urbanmesh_catalog::view::ViewSpec;

use urbanmesh::RunningNode;

pub(crate) const VIEW: &str = "pegel-owl";

/// Defines the view on a town's node, unless a previous run did.
pub(crate) async fn define(node: &RunningNode) -> anyhow::Result<()> {
    if node.catalog.views().get(VIEW).is_ok() {
        return Ok(());
    }
    let spec: ViewSpec = serde_json::from_value(serde_json::json!({
        "id": VIEW,
        "title": "Pegelstände OWL",
        "description": "Wasserstände aller Pegel im Pegelverbund OWL der letzten sieben Tage im 15-Minuten-Takt, \
                        bei jedem Abruf aus den Knoten der Städte zusammengesetzt (Beispieldaten).",
        "select": {"themes": ["ENVI"], "keywords": ["Pegel"]},
        "schema": {"fields": [
            {"name": "time", "type": "timestamp[ms, UTC]"},
            {"name": "uuid", "type": "utf8"},
            {"name": "shortname", "type": "utf8"},
            {"name": "water", "type": "utf8"},
            {"name": "km", "type": "float64", "nullable": true},
            {"name": "lon", "type": "float64", "nullable": true},
            {"name": "lat", "type": "float64", "nullable": true},
            {"name": "value", "type": "float64", "unit": "cm"},
            {"name": "state", "type": "utf8", "nullable": true}
        ]},
        "time_column": "time",
        "series_key": "uuid",
        "window": "7d",
        "refresh": "1m",
        "deadline": "2s",
        "keywords": ["Pegel", "Wasserstand", "Hochwasser", "OWL"],
        "themes": ["ENVI"],
        "policy": {"visibility": "public", "attribution": "Städte des Pegelverbunds OWL", "licence": "dl-by-de/2.0"}
    }))?;
    node.catalog.views().create(spec).await?;
    Ok(())
}
