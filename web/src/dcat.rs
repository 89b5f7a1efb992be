//! The DCAT-AP.de export: `/catalog.ttl|.jsonld|.rdf`, `/catalog` by `Accept`, and one
//! dataset at `/datasets/{id}.ttl|.jsonld|.rdf` (or `/datasets/{id}` by `Accept`; a
//! browser gets the dataset's portal page there).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use urbanmesh_catalog::dcat::{self, MAX_EXPORT_PAGE, Paging, RdfSyntax};

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::etag;
use crate::portal::{self, lang::Chosen, layout::Frame};
use crate::problem::Problem;

#[derive(Debug, Deserialize)]
pub(crate) struct PageParams {
    page: Option<usize>,
    per_page: Option<usize>,
}

/// Datasets per page when only `page` is given, as in ckanext-dcat.
const DEFAULT_EXPORT_PAGE: usize = 100;

pub(crate) async fn catalog_turtle(
    state: State<AppState>,
    caller: Caller,
    page: Query<PageParams>,
    headers: HeaderMap,
) -> Response {
    catalog(state, caller, page, &headers, RdfSyntax::Turtle).await
}

pub(crate) async fn catalog_jsonld(
    state: State<AppState>,
    caller: Caller,
    page: Query<PageParams>,
    headers: HeaderMap,
) -> Response {
    catalog(state, caller, page, &headers, RdfSyntax::JsonLd).await
}

pub(crate) async fn catalog_rdfxml(
    state: State<AppState>,
    caller: Caller,
    page: Query<PageParams>,
    headers: HeaderMap,
) -> Response {
    catalog(state, caller, page, &headers, RdfSyntax::RdfXml).await
}

pub(crate) async fn catalog_negotiated(
    state: State<AppState>,
    caller: Caller,
    page: Query<PageParams>,
    headers: HeaderMap,
) -> Response {
    match negotiate(&headers) {
        Ok(syntax) => catalog(state, caller, page, &headers, syntax).await,
        Err(problem) => problem.into_response(),
    }
}

async fn catalog(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Query(params): Query<PageParams>,
    headers: &HeaderMap,
    syntax: RdfSyntax,
) -> Response {
    let paging = match (params.page, params.per_page) {
        (None, None) => None,
        (page, per_page) => {
            let page = page.unwrap_or(1);
            let per_page = per_page.unwrap_or(DEFAULT_EXPORT_PAGE);
            if page == 0 || per_page == 0 || per_page > MAX_EXPORT_PAGE {
                return Problem::bad_request(format!(
                    "`page` counts from 1 and `per_page` must be between 1 and {MAX_EXPORT_PAGE}"
                ))
                .into_response();
            }
            Some(Paging { page, per_page, path: format!("/catalog.{}", syntax.extension()) })
        }
    };
    let page = format!("{:?}", paging.as_ref().map(|p| (p.page, p.per_page)));
    let tag = etag::tag(
        etag::catalogue_state(&state.catalog),
        &["catalog", syntax.extension(), &page, &etag::caller(&subject)],
    );
    if let Some(unchanged) = etag::unchanged(headers, &tag) {
        return unchanged;
    }
    let permit = match state.download_permit() {
        Ok(permit) => permit,
        Err(problem) => return problem.into_response(),
    };
    let body = body::written(permit, move |out| {
        dcat::write_catalog(&state.catalog, &state.endpoints, syntax, paging.as_ref(), &subject, out)
            .map(drop)
            .map_err(std::io::Error::other)
    });
    etag::tagged(rdf_response(syntax, Body::from_stream(body)), &tag)
}

/// `/datasets/{file}`: `pegel.ttl`, `pegel.jsonld`, `pegel.rdf`, or `pegel` by `Accept`.
pub(crate) async fn dataset(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(file): Path<String>,
    headers: HeaderMap,
    chosen: Chosen,
    uri: Uri,
) -> Result<Response, Problem> {
    let generation = etag::catalogue_state(&state.catalog);
    if !file.contains('.') && portal::wants_html(&headers) {
        // The page an anonymous visitor got at this generation, in this language, is the
        // page again (as the page cache has it). Signed-in pages carry the session's form
        // tokens and are not tagged.
        let anonymous = matches!(subject, urbanmesh_policy::Subject::Anonymous);
        let tag = anonymous.then(|| etag::tag(generation, &["page", &uri.to_string(), chosen.lang.code()]));
        if let Some(unchanged) = tag.as_deref().and_then(|tag| etag::unchanged(&headers, tag)) {
            return Ok(unchanged);
        }
        let frame = Frame { chosen, uri: &uri, site: &state.catalog.info().title };
        let page = portal::dataset::page(&state, &subject, &frame, &file).await;
        return Ok(match &tag {
            Some(tag) => etag::tagged(page, tag),
            None => page,
        });
    }
    let (id, syntax) = rdf_file(&file, &headers)?;
    let record = state.catalog.get(&id)?;
    if !state.gate.visible(&subject, &record) {
        return Err(Problem::dataset_not_found(&id));
    }
    let tag = etag::tag(generation, &["dataset", &id, syntax.extension(), &etag::caller(&subject)]);
    if let Some(unchanged) = etag::unchanged(&headers, &tag) {
        return Ok(unchanged);
    }
    let response = exported(&state, syntax, move |catalog, endpoints, out| {
        dcat::write_dataset(catalog, endpoints, syntax, &id, &subject, out)
    })
    .await?;
    Ok(etag::tagged(response, &tag))
}

/// `/views/{file}`: the view's dashboard for browsers, its DCAT description otherwise
/// (`pegel-owl.ttl`, `.jsonld`, `.rdf`, or by `Accept`).
pub(crate) async fn view(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(file): Path<String>,
    headers: HeaderMap,
    chosen: Chosen,
    uri: Uri,
) -> Result<Response, Problem> {
    if !file.contains('.') && portal::wants_html(&headers) {
        let frame = Frame { chosen, uri: &uri, site: &state.catalog.info().title };
        return Ok(portal::view::page(&state, &subject, &frame, &file).await);
    }
    let (id, syntax) = rdf_file(&file, &headers)?;
    state.views.get(&subject, &id)?;
    exported(&state, syntax, move |catalog, endpoints, out| dcat::write_view(catalog, endpoints, syntax, &id, out))
        .await
}

/// One entry's description, written off the async threads.
async fn exported<F>(state: &AppState, syntax: RdfSyntax, write: F) -> Result<Response, Problem>
where
    F: FnOnce(
            &urbanmesh_catalog::Catalog,
            &urbanmesh_catalog::Endpoints,
            Vec<u8>,
        ) -> Result<Vec<u8>, urbanmesh_catalog::CatalogError>
        + Send
        + 'static,
{
    let (catalog, endpoints) = (state.catalog.clone(), state.endpoints.clone());
    let bytes = tokio::task::spawn_blocking(move || write(&catalog, &endpoints, Vec::new()))
        .await
        .map_err(|e| Problem::internal(e.to_string()))??;
    Ok(rdf_response(syntax, Body::from(bytes)))
}

/// The id and RDF syntax a file name asks for: by its extension, else by `Accept`.
fn rdf_file(file: &str, headers: &HeaderMap) -> Result<(String, RdfSyntax), Problem> {
    match file.rsplit_once('.') {
        Some((id, extension)) => Ok((
            id.to_owned(),
            RdfSyntax::from_extension(extension).ok_or_else(|| {
                Problem::new(
                    StatusCode::NOT_FOUND,
                    format!("no export format `.{extension}`; use .ttl, .jsonld or .rdf"),
                )
            })?,
        )),
        None => Ok((file.to_owned(), negotiate(headers)?)),
    }
}

fn negotiate(headers: &HeaderMap) -> Result<RdfSyntax, Problem> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    RdfSyntax::negotiate(accept).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "the catalogue is available as text/turtle, application/ld+json and application/rdf+xml",
        )
    })
}

fn rdf_response(syntax: RdfSyntax, body: Body) -> Response {
    ([(header::CONTENT_TYPE, syntax.media_type()), (header::VARY, "Accept")], body).into_response()
}
