//! `GET /api/v1/search`: full-text and faceted search over the catalogue.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Serialize;
use urbanmesh_catalog::search::{FacetCount, SearchParams, SearchRequest};
use urbanmesh_catalog::{Dataset, Derived, Origin};

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::Caller;
use crate::problem::Problem;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SearchResponse {
    total: usize,
    page: usize,
    per_page: usize,
    pages: usize,
    hits: Vec<SearchHit>,
    /// Counts per value of each facet (`theme`, `publisher`, `licence`, …) over all hits.
    facets: BTreeMap<&'static str, Vec<FacetCount>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SearchHit {
    #[serde(flatten)]
    dataset: Dataset,
    /// What the caller may know of the rows (see `datasets::view`).
    #[serde(flatten)]
    derived: Derived,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    highlights: BTreeMap<&'static str, String>,
    /// The member holding a dataset found with `scope=federation`; absent for our own.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<Origin>,
    links: Links,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Links {
    #[serde(rename = "self")]
    this: String,
    rows: String,
    dcat: String,
}

/// Search the catalogue
///
/// Full text with facets, over this node's datasets or with `scope=federation` also those
/// the members share.
#[utoipa::path(
    get,
    path = "/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of hits, with facet counts", body = SearchResponse),
        (status = 400, description = "A bad parameter; `field` names it", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    Caller(subject): Caller,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, Problem> {
    let Query(params) = params?;
    let mut request = SearchRequest::parse(params)?;
    request.audience = subject.audience();
    let catalog = state.catalog.clone();
    let (request, results) = tokio::task::spawn_blocking(move || {
        let results = catalog.search(&request);
        (request, results)
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))?;
    let results = results?;
    let mut hits = Vec::with_capacity(results.hits.len());
    for hit in results.hits {
        if let Some(peer) = &hit.origin {
            // A replica removed since the search ran is left out.
            let Ok(replica) = state.catalog.replica(peer, &hit.id) else { continue };
            let base = replica.origin.http.clone().unwrap_or_default();
            let api = format!("{base}/api/v1/datasets/{}", hit.id);
            hits.push(SearchHit {
                links: Links {
                    rows: format!("{api}/rows"),
                    this: api,
                    dcat: format!("{base}/datasets/{}.ttl", hit.id),
                },
                // Staff see what the member lets this node know; visitors what it lets the public know.
                derived: if subject.is_staff() { replica.entry.derived } else { replica.entry.public },
                dataset: replica.entry.dataset,
                score: hit.score,
                highlights: hit.highlights,
                origin: Some(replica.origin),
            });
            continue;
        }
        // A hit deleted since the search ran is left out.
        let Ok(dataset) = state.catalog.get(&hit.id) else { continue };
        if !state.gate.visible(&subject, &dataset) {
            continue;
        }
        let derived = state.gate.known(&subject, &dataset)?;
        let dataset = if subject.is_staff() { dataset } else { Dataset { policy: dataset.policy.shared(), ..dataset } };
        let api = format!("/api/v1/datasets/{}", hit.id);
        hits.push(SearchHit {
            links: Links { rows: format!("{api}/rows"), this: api, dcat: format!("/datasets/{}.ttl", hit.id) },
            dataset,
            derived,
            score: hit.score,
            highlights: hit.highlights,
            origin: None,
        });
    }
    Ok(Json(SearchResponse {
        total: results.total,
        page: request.page,
        per_page: request.per_page,
        pages: results.total.div_ceil(request.per_page),
        hits,
        facets: results.facets,
    }))
}
