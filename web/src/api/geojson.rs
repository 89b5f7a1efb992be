//! `GET /api/v1/datasets/{id}/latest.geojson` and `GET /api/v1/views/{id}/latest.geojson`:
//! one Point per station at its latest position, carrying its latest values and their
//! time, for GIS tools and map portals. A dataset's come from its latest released rows
//! (`ReadGate::latest`); a view's from its assembled rows, with `lon` and `lat` columns.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use urbanmesh_flight::ViewRead;
use urbanmesh_policy::Interface;
use urbanmesh_store::LatestRows;

use super::encode::json_objects;
use super::read::duties;
use crate::AppState;
use crate::auth::Caller;
use crate::problem::Problem;

use crate::api::openapi::PROBLEM;

const MEDIA_TYPE: &str = "application/geo+json";

/// A dataset's stations at their latest values, as GeoJSON
#[utoipa::path(
    get,
    path = "/datasets/{id}/latest.geojson",
    tag = "datasets",
    params(("id" = String, Path, description = "The dataset's id")),
    responses(
        (status = 200, description = "A FeatureCollection with one Point per station", content((Object = "application/geo+json"))),
        (status = 400, description = "The dataset declares no geometry", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset, or one the caller may not see", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn dataset(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let dataset = state.catalog.get(&id).ok().filter(|d| state.gate.visible(&subject, d));
    let geometry = dataset.and_then(|d| d.spec.geometry);
    let latest = state.gate.latest(&subject, &id, Interface::SensorThings).await?;
    let geometry = geometry
        .ok_or_else(|| Problem::bad_request(format!("dataset `{id}` declares no geometry, so it has no map")))?;
    let collection = features(&latest.rows, &geometry.lon, &geometry.lat)?;
    let mut response = geojson(collection);
    duties(&mut response, latest.grant.attribution.as_deref(), latest.grant.licence.as_deref());
    Ok(response)
}

/// A regional view's stations at their latest values, as GeoJSON
#[utoipa::path(
    get,
    path = "/views/{id}/latest.geojson",
    tag = "views",
    params(("id" = String, Path, description = "The view's id")),
    responses(
        (status = 200, description = "A FeatureCollection with one Point per station", content((Object = "application/geo+json"))),
        (status = 400, description = "The view has no time column, series key or position", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such view, or one the caller may not see", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn view(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let ViewRead { view, assembled, audit } = state.views.read(&subject, &id, Interface::SensorThings).await?;
    let spec = &view.spec;
    let (Some(time), Some(key)) = (&spec.time_column, &spec.series_key) else {
        return Err(Problem::bad_request(format!(
            "view `{id}` has no time column and series key, so it has no latest values"
        )));
    };
    let mut latest = LatestRows::new(std::sync::Arc::clone(&assembled.schema), time, key)
        .ok_or_else(|| Problem::bad_request(format!("view `{id}` lacks its time column or series key")))?;
    for batch in &assembled.batches {
        latest.fold(batch).map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    let rows = latest.rows().clone();
    audit.served().add(rows.num_rows() as u64, 0);
    let collection = features(&[rows], "lon", "lat")?;
    let mut response = geojson(collection);
    duties(&mut response, view.policy.attribution.as_deref(), view.policy.licence.as_deref());
    Ok(response)
}

fn geojson(collection: Value) -> Response {
    crate::sta::any_origin(([(header::CONTENT_TYPE, MEDIA_TYPE)], collection.to_string()).into_response())
}

/// A FeatureCollection of the rows with a position: the coordinates as the geometry,
/// every other column as a property.
fn features(batches: &[RecordBatch], lon: &str, lat: &str) -> Result<Value, Problem> {
    let mut features = Vec::new();
    for batch in batches {
        let coordinate = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| cast(c, &DataType::Float64).ok())
                .ok_or_else(|| Problem::bad_request(format!("the coordinate column `{name}` is not released to you")))
        };
        let (xs, ys) = (coordinate(lon)?, coordinate(lat)?);
        let (xs, ys) = (xs.as_primitive::<Float64Type>(), ys.as_primitive::<Float64Type>());
        let objects = json_objects(batch).map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        for (row, mut properties) in objects.into_iter().enumerate() {
            if xs.is_null(row) || ys.is_null(row) {
                continue;
            }
            properties.remove(lon);
            properties.remove(lat);
            features.push(json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [xs.value(row), ys.value(row)]},
                "properties": properties,
            }));
        }
    }
    Ok(json!({"type": "FeatureCollection", "features": features}))
}
