//! The OGC SensorThings API 1.1 (read) at `/sta/v1.1`: the datasets with a series key and
//! a geometry, as Things at Locations with Datastreams of Observations, for map portals
//! such as Masterportal. Every entity comes from rows the caller's grant releases (see
//! [`graph`]); errors are JSON bodies `{"code", "type": "error", "message"}` as FROST
//! answers them.

mod evaluate;
mod filter;
mod geo;
mod graph;
mod kind;
mod observations;
mod options;
mod path;

use std::cmp::Ordering;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use urbanmesh_policy::Subject;

use self::evaluate::{Properties, Scalar};
use self::graph::{Graph, Item, Node, Related};
use self::kind::Kind;
use self::options::Options;
use self::path::{Step, Tail};
use crate::AppState;
use crate::auth::Caller;
use crate::problem::Problem;

/// The conformance classes served (`serverSettings.conformance`).
pub(crate) const CONFORMANCE: [&str; 4] = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/order",
];

/// An error as SensorThings clients expect it.
#[derive(Debug)]
pub(crate) struct StaError {
    status: StatusCode,
    message: String,
}

impl StaError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "SensorThings request failed");
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message }
    }
}

impl std::fmt::Display for StaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whatever the REST API reports as a problem keeps its status here.
impl From<Problem> for StaError {
    fn from(problem: Problem) -> Self {
        let (status, message) = problem.into_parts();
        Self { status, message }
    }
}

macro_rules! as_problem {
    ($($error:ty),*) => {$(
        impl From<$error> for StaError {
            fn from(error: $error) -> Self {
                Problem::from(error).into()
            }
        }
    )*};
}

as_problem!(urbanmesh_dataspace::DataspaceError, urbanmesh_catalog::CatalogError, urbanmesh_store::StoreError);

impl IntoResponse for StaError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.status.as_u16(), "type": "error", "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

/// Lets map portals on other origins (Masterportal) read what the public may read: the
/// answers are the same for any origin, and browsers send no credentials to `*`.
pub(crate) fn any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    response
}

/// [`any_origin`] as a middleware for the routes below `/sta/v1.1`.
pub(crate) async fn open_to_any_origin(response: Response) -> Response {
    any_origin(response)
}

/// `GET /sta/v1.1`: the entity sets and the conformance classes.
pub(crate) async fn root(State(state): State<AppState>) -> Json<Value> {
    let base = format!("{}/sta/v1.1", state.endpoints.http);
    let sets: Vec<Value> =
        Kind::ALL.iter().map(|k| json!({"name": k.plural(), "url": format!("{base}/{}", k.plural())})).collect();
    Json(json!({"value": sets, "serverSettings": {"conformance": CONFORMANCE}}))
}

/// `GET /sta/v1.1/{path}`: entities, collections, properties and references.
pub(crate) async fn resource(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, StaError> {
    let query = query.unwrap_or_default();
    let path = path::parse(&path)?;
    let last = path.steps.last().map_or(Kind::Thing, |s| s.kind);
    let options = Options::from_query(&query, last)?;
    let graph = Graph::build(&state, &subject).await?;
    let request = Request { state: &state, subject: &subject, graph: &graph };
    let target = request.resolve(&path.steps).await?;
    Ok(match (target, path.tail) {
        (Target::One(item), Tail::None) => Json(Value::Object(request.render(&item, &options).await?)).into_response(),
        (Target::One(item), Tail::Property(name)) => {
            let value = property(&graph, &item, &name);
            Json(json!({ name: value })).into_response()
        }
        (Target::One(item), Tail::Value(name)) => {
            let text = match property(&graph, &item, &name) {
                Value::String(text) => text,
                other => other.to_string(),
            };
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        (Target::One(_), Tail::Ref) => return Err(StaError::bad_request("$ref follows a collection here")),
        (target, tail) => {
            let page = request.page(target, &options, observations::Asked::Collection).await?;
            let mut object = Map::new();
            if let Some(count) = page.count {
                object.insert("@iot.count".into(), Value::from(count));
            }
            let values = if tail == Tail::Ref {
                page.values.into_iter().map(|v| json!({"@iot.selfLink": v.get("@iot.selfLink")})).collect()
            } else {
                page.values
            };
            object.insert("value".into(), Value::Array(values));
            if page.more {
                let collection = format!("{}/{}", graph.base, path_text(&path.steps, &tail));
                object.insert("@iot.nextLink".into(), Value::from(next_link(&collection, &options)));
            }
            Json(Value::Object(object)).into_response()
        }
    })
}

/// What a path addresses.
enum Target {
    One(Item),
    Many(Vec<Node>),
    Observations(Vec<usize>),
}

/// One page of a collection, rendered.
struct Page {
    values: Vec<Value>,
    count: Option<u64>,
    more: bool,
}

struct Request<'a> {
    state: &'a AppState,
    subject: &'a Subject,
    graph: &'a Graph,
}

impl Request<'_> {
    async fn resolve(&self, steps: &[Step]) -> Result<Target, StaError> {
        let mut target: Option<Target> = None;
        for step in steps {
            let reached = match target.take() {
                None if step.kind == Kind::Observation => Target::Observations(self.graph.every_stream()),
                None => Target::Many(self.graph.all(step.kind)),
                Some(Target::One(item)) => match self.graph.related(&item, step.kind) {
                    Related::One(Some(item)) => Target::One(item),
                    Related::One(None) => return Err(StaError::not_found(format!("no {}", step.kind.singular()))),
                    Related::Many(nodes) => Target::Many(nodes),
                    Related::Observations(streams) => Target::Observations(streams),
                },
                Some(_) => return Err(StaError::bad_request("name one entity by id before navigating")),
            };
            target = Some(match (&step.id, reached) {
                (None, reached) => reached,
                (Some(id), Target::Many(nodes)) => nodes
                    .into_iter()
                    .find(|n| self.graph.id(*n).to_string() == *id)
                    .map(|n| Target::One(Item::Node(n)))
                    .ok_or_else(|| StaError::not_found(format!("no {} with id {id}", step.kind.singular())))?,
                (Some(id), Target::Observations(streams)) => {
                    let missing = || StaError::not_found(format!("no Observation with id '{id}'"));
                    let (stream, at) =
                        self.graph.observation_id(id).filter(|(s, _)| streams.contains(s)).ok_or_else(missing)?;
                    let asked = observations::Asked::At(at);
                    let page =
                        observations::page(self.state, self.subject, self.graph, &[stream], &Options::default(), asked)
                            .await?;
                    // The id names a time to the microsecond; the stored time may be coarser.
                    let found =
                        page.items.into_iter().map(Item::Observation).find(|item| {
                            self.graph.json(item).get("@iot.id").and_then(Value::as_str) == Some(id.as_str())
                        });
                    Target::One(found.ok_or_else(missing)?)
                }
                (Some(_), Target::One(_)) => return Err(StaError::bad_request("an id names one of a collection")),
            });
        }
        target.ok_or_else(|| StaError::not_found("no entity set named"))
    }

    /// The entity as JSON, with its expansions and only the selected properties.
    fn render<'s>(
        &'s self,
        item: &'s Item,
        options: &'s Options,
    ) -> BoxFuture<'s, Result<Map<String, Value>, StaError>> {
        Box::pin(async move {
            let mut object = self.graph.json(item);
            for expand in &options.expand {
                let from = kind_of(item);
                let Some((kind, _)) = from.navigation(&expand.name) else { continue };
                match self.graph.related(item, kind) {
                    Related::One(Some(related)) => {
                        object
                            .insert(expand.name.clone(), Value::Object(self.render(&related, &expand.options).await?));
                    }
                    Related::One(None) => {}
                    related @ (Related::Many(_) | Related::Observations(_)) => {
                        let target = match related {
                            Related::Many(nodes) => Target::Many(nodes),
                            Related::Observations(streams) => Target::Observations(streams),
                            Related::One(_) => continue,
                        };
                        let page = self.page(target, &expand.options, observations::Asked::Expanded).await?;
                        if let Some(count) = page.count {
                            object.insert(format!("{}@iot.count", expand.name), Value::from(count));
                        }
                        object.insert(expand.name.clone(), Value::Array(page.values));
                        if page.more
                            && let Some(link) = object.get("@iot.selfLink").and_then(Value::as_str)
                        {
                            let next = next_link(&format!("{link}/{}", expand.name), &expand.options);
                            object.insert(format!("{}@iot.nextLink", expand.name), Value::from(next));
                        }
                    }
                }
            }
            if let Some(select) = &options.select {
                let keep = |key: &str| {
                    let key = if key == "@iot.id" { "id" } else { key };
                    // An expansion keeps its count and next link (`Datastreams@iot.count`).
                    let expanded =
                        key.strip_suffix("@iot.count").or_else(|| key.strip_suffix("@iot.nextLink")).unwrap_or(key);
                    select.iter().any(|s| s == key) || options.expand.iter().any(|e| e.name == expanded)
                };
                object.retain(|key, _| keep(key));
            }
            Ok(object)
        })
    }

    fn page<'s>(
        &'s self,
        target: Target,
        options: &'s Options,
        asked: observations::Asked,
    ) -> BoxFuture<'s, Result<Page, StaError>> {
        Box::pin(async move {
            let top = options.top();
            let (items, count, more) = match target {
                Target::One(item) => (vec![item], None, false),
                Target::Many(mut nodes) => {
                    if let Some(filter) = &options.filter {
                        nodes.retain(|n| filter.matches(&Entity { graph: self.graph, item: Item::Node(*n) }));
                    }
                    if !options.orderby.is_empty() {
                        nodes.sort_by(|a, b| self.order(*a, *b, options));
                    }
                    let count = options.count.then_some(nodes.len() as u64);
                    let more = top > 0 && nodes.len() > options.skip.saturating_add(top);
                    let items = nodes.into_iter().skip(options.skip).take(top).map(Item::Node).collect();
                    (items, count, more)
                }
                Target::Observations(streams) => {
                    let page =
                        observations::page(self.state, self.subject, self.graph, &streams, options, asked).await?;
                    (page.items.into_iter().map(Item::Observation).collect(), page.count, page.more)
                }
            };
            let mut values = Vec::with_capacity(items.len());
            for item in &items {
                values.push(Value::Object(self.render(item, options).await?));
            }
            Ok(Page { values, count, more })
        })
    }

    fn order(&self, a: Node, b: Node, options: &Options) -> Ordering {
        let (a, b) =
            (Entity { graph: self.graph, item: Item::Node(a) }, Entity { graph: self.graph, item: Item::Node(b) });
        for order in &options.orderby {
            let ordering = compare(&a.property(&order.path), &b.property(&order.path));
            let ordering = if order.descending { ordering.reverse() } else { ordering };
            if ordering.is_ne() {
                return ordering;
            }
        }
        Ordering::Equal
    }
}

fn compare(a: &Scalar, b: &Scalar) -> Ordering {
    match (a, b) {
        (Scalar::Number(x), Scalar::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Scalar::Text(x), Scalar::Text(y)) => x.cmp(y),
        (Scalar::Bool(x), Scalar::Bool(y)) => x.cmp(y),
        (Scalar::Null, Scalar::Null) => Ordering::Equal,
        (Scalar::Null, _) => Ordering::Less,
        (_, Scalar::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

fn kind_of(item: &Item) -> Kind {
    match item {
        Item::Node(node) => Graph::kind(*node),
        Item::Observation(_) => Kind::Observation,
    }
}

/// An entity's property by name (`id` is its id).
fn property(graph: &Graph, item: &Item, name: &str) -> Value {
    let object = graph.json(item);
    let key = if name == "id" { "@iot.id" } else { name };
    object.get(key).cloned().unwrap_or(Value::Null)
}

/// An entity seen by `$filter` and `$orderby`: its properties, and those of the entities
/// its navigation properties lead to (`Thing/name`, `Locations/location`).
struct Entity<'a> {
    graph: &'a Graph,
    item: Item,
}

impl Properties for Entity<'_> {
    fn property(&self, path: &[String]) -> Scalar {
        let Some((first, rest)) = path.split_first() else { return Scalar::Null };
        let own = kind_of(&self.item);
        // `Things/name` on a Thing, as Masterportal's examples write it, is its `name`.
        if !rest.is_empty() && (first == own.plural() || first == own.singular()) {
            return self.property(rest);
        }
        if let Some((kind, _)) = own.navigation(first) {
            let related = match self.graph.related(&self.item, kind) {
                Related::One(item) => item,
                Related::Many(nodes) => nodes.first().map(|n| Item::Node(*n)),
                Related::Observations(_) => None,
            };
            return related.map_or(Scalar::Null, |item| Entity { graph: self.graph, item }.property(rest));
        }
        let object = self.graph.json(&self.item);
        let key = if first == "id" { "@iot.id" } else { first.as_str() };
        let mut value = object.get(key);
        for part in rest {
            value = value.and_then(|v| v.get(part));
        }
        value.map_or(Scalar::Null, Scalar::of_json)
    }
}

fn path_text(steps: &[Step], tail: &Tail) -> String {
    let mut parts: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let name = if i == 0 || step.many { step.kind.plural() } else { step.kind.singular() };
            match &step.id {
                Some(id) if id.chars().all(|c| c.is_ascii_digit()) => format!("{name}({id})"),
                Some(id) => format!("{name}('{}')", id.replace('\'', "''")),
                None => name.to_owned(),
            }
        })
        .collect();
    if *tail == Tail::Ref {
        parts.push("$ref".into());
    }
    parts.join("/")
}

/// The collection's URL for the page after this one: the options as given, with `$skip`
/// moved on by `$top`.
fn next_link(collection: &str, options: &Options) -> String {
    let mut pairs: Vec<(String, String)> = options.given.iter().filter(|(name, _)| name != "$skip").cloned().collect();
    pairs.push(("$skip".into(), (options.skip + options.top()).to_string()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{collection}?{query}")
}
