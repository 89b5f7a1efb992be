//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`. The router and
//! the document come from the same registrations (`routes!` in [`super::routes`]): an
//! operation cannot be served without being described, nor described without being served.

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{OpenApi, ToSchema};

use crate::problem::Problem;

/// The media type of every error body.
pub(crate) const PROBLEM: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Urban Mesh node",
        description = "The REST API of one Urban Mesh node: its datasets and their rows, usage policies, \
                       regional views, catalogue search, the access log and the federation. Errors are \
                       RFC 9457 problem documents naming the field, row or limit at fault."
    ),
    servers((url = "/api/v1")),
    tags(
        (name = "datasets", description = "Dataset descriptions (DCAT-AP.de) and their tables"),
        (name = "rows", description = "Writing and reading a dataset's rows"),
        (name = "policies", description = "Usage policies, for the data owner"),
        (name = "views", description = "Regional views assembled from several members"),
        (name = "search", description = "Full-text and faceted search over the catalogue"),
        (name = "audit", description = "The access log, for the data owner"),
        (name = "federation", description = "Membership: invitations, joining, removing members"),
        (name = "dashboards", description = "Pages of tiles staff build, shown on the portal"),
        (name = "connectors", description = "Live sources: MQTT subscriptions and pulls that write into datasets"),
        (name = "session", description = "Who the node takes the caller for"),
    ),
    components(schemas(Problem))
)]
pub(crate) struct ApiDoc;

/// The finished document: the registered operations, the ways to authenticate, and a
/// problem document as the answer to every error an operation does not list itself.
pub(crate) fn finish(mut document: Document) -> Value {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The node's admin token, or an access token of its OpenID provider"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::session::SESSION_COOKIE,
            "A workspace session; changes also need its CSRF token (from `GET /me`) in `X-CSRF-Token`",
        ))),
    );
    let problem = ResponseBuilder::new()
        .description("A problem document (RFC 9457) saying what was refused and why")
        .content(PROBLEM, ContentBuilder::new().schema(Some(Ref::from_schema_name(Problem::name()))).build())
        .build();
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            operation.responses.responses.entry("default".to_owned()).or_insert_with(|| problem.clone().into());
        }
    }
    let mut document = serde_json::to_value(&document).expect("the API document serializes");
    open_flattened(&mut document);
    document
}

/// A request body that refuses unknown fields (`additionalProperties: false`) is also the
/// flattened part of a larger response record (`allOf`), where that keyword would reject
/// the record's other fields. There the refusal is said in words instead.
fn open_flattened(document: &mut Value) {
    let mut flattened = Vec::new();
    collect_flattened(document, &mut flattened);
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    for name in flattened {
        let Some(schema) = schemas.get_mut(&name).and_then(Value::as_object_mut) else { continue };
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            schema.remove("additionalProperties");
            let said = schema.get("description").and_then(Value::as_str).unwrap_or_default();
            let said = format!("{said}\n\nAs a request body, unknown fields are refused.").trim().to_owned();
            schema.insert("description".to_owned(), Value::String(said));
        }
    }
}

/// The names of the schemas some `allOf` includes.
fn collect_flattened(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for part in map.get("allOf").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = part.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
                    names.push(name.to_owned());
                }
            }
            map.values().for_each(|v| collect_flattened(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_flattened(v, names)),
        _ => {}
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
}

/// `GET /api/v1/openapi.json`.
pub(crate) fn serve(document: &Value) -> axum::routing::MethodRouter<crate::AppState> {
    let body = bytes::Bytes::from(document.to_string());
    axum::routing::get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
    })
}
