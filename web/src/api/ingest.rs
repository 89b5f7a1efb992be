use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use urbanmesh_store::decode::{self, Format};

use crate::AppState;
use crate::auth::Editor;
use crate::problem::Problem;

#[derive(Serialize)]
pub(crate) struct Stored {
    dataset: String,
    pub(crate) rows: usize,
    seq: u64,
}

/// `POST /datasets/{id}/rows` with JSON, NDJSON or CSV.
pub(crate) async fn rows(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Stored>, Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = Format::from_media_type(content_type).ok_or_else(|| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type `{content_type}` is not accepted; send one of {}", Format::ACCEPTED_MEDIA_TYPES),
        )
    })?;
    let body = body?;
    store(&state, id, format, body).await
}

/// `POST /datasets/{id}/upload`, multipart with one `.csv` or `.xlsx` file.
pub(crate) async fn upload(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Result<Json<Stored>, Problem> {
    while let Some(field) = multipart.next_field().await? {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let format = Format::from_file_name(&file_name)
            .or_else(|| field.content_type().and_then(Format::from_media_type))
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("cannot read `{file_name}`: upload a .csv or .xlsx file"),
                )
            })?;
        let body = field.bytes().await?;
        return store(&state, id, format, body).await;
    }
    Err(Problem::bad_request("the form contains no file; send the file in a multipart field with a file name"))
}

/// Bodies up to this size are decoded in place; larger ones on a blocking thread.
const INLINE_DECODE_BYTES: usize = 16 * 1024;

/// Decodes (off the async threads when the body is large), then appends durably.
pub(crate) async fn store(state: &AppState, id: String, format: Format, body: Bytes) -> Result<Json<Stored>, Problem> {
    let schema = state.store.schema(&id)?;
    let limits = state.limits.decode;
    let batch = if body.len() <= INLINE_DECODE_BYTES {
        decode::decode(format, schema, &body, &limits)?
    } else {
        tokio::task::spawn_blocking(move || decode::decode(format, schema, &body, &limits))
            .await
            .map_err(|e| Problem::internal(format!("decoding task failed: {e}")))??
    };
    let appended = state.store.append(&id, batch).await?;
    Ok(Json(Stored { dataset: id, rows: appended.rows, seq: appended.seq }))
}
