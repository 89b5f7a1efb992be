use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use urbanmesh_store::decode::{self, Format};

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::Editor;
use crate::problem::Problem;

/// Rows stored durably: they survive a crash from now on.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Stored {
    dataset: String,
    pub(crate) rows: usize,
    /// The write's sequence number in the dataset's log.
    seq: u64,
}

/// A spreadsheet or CSV file in a multipart form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct UploadForm {
    /// A `.csv` or `.xlsx` file; its header row names the columns.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

/// Append rows, all or none
///
/// JSON (an array of objects), NDJSON, CSV with a header, or an `.xlsx` workbook. A batch
/// with a bad row is rejected whole, naming each bad row and column.
#[utoipa::path(
    post,
    path = "/datasets/{id}/rows",
    tag = "rows",
    params(("id" = String, Path, description = "The dataset's id")),
    request_body(content(
        (Vec<Object> = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    )),
    responses(
        (status = 200, description = "Stored durably", body = Stored),
        (status = 400, description = "Rows rejected, nothing stored; `errors` names rows and columns", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset", body = Problem, content_type = PROBLEM),
        (status = 413, description = "The body or batch exceeds a limit; `limit` names the setting", body = Problem, content_type = PROBLEM),
        (status = 415, description = "An unaccepted Content-Type", body = Problem, content_type = PROBLEM),
        (status = 507, description = "The node's disk is nearly full; nothing was stored", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
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

/// Append the rows of an uploaded `.csv` or `.xlsx` file, all or none
#[utoipa::path(
    post,
    path = "/datasets/{id}/upload",
    tag = "rows",
    params(("id" = String, Path, description = "The dataset's id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored durably", body = Stored),
        (status = 400, description = "Rows rejected, nothing stored; or the form has no file", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset", body = Problem, content_type = PROBLEM),
        (status = 413, description = "The file exceeds a limit; `limit` names the setting", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not a .csv or .xlsx file", body = Problem, content_type = PROBLEM),
        (status = 507, description = "The node's disk is nearly full; nothing was stored", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Stored>, Problem> {
    let mut multipart = multipart?;
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
