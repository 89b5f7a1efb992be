//! What one caller may query: this node's datasets, each member's datasets this node may
//! relay to the caller, and the regional views, arranged as [`names`] says. A table the
//! caller may not see is not listed and resolves like one that does not exist.
//!
//! The listing is read from the catalogue once per statement; a table is opened only when
//! the statement names it, through the sealed read path (own datasets), a read at the
//! member (members' datasets) or the view's assembly.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use urbanmesh_policy::Interface;
use urbanmesh_protocol::ReadRequest;

use super::member_table::MemberTable;
use super::names::{self, VIEWS};
use crate::auth::Caller;
use crate::{FlightContext, FlightError};

/// Where a listed table's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// One of this node's datasets.
    Own,
    /// A member's dataset; `member` is the member's name.
    Member { member: String },
    /// A regional view this node serves.
    View,
}

/// One table the caller may query.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) origin: Origin,
    /// The columns as described in the catalogue, for listings that only describe.
    pub(crate) described: SchemaRef,
}

/// Every table the caller may query, ordered by schema and name.
pub(crate) fn list(context: &FlightContext, caller: &Caller) -> Result<Vec<Listed>, FlightError> {
    let subject = &caller.reader();
    let own = names::own_schema(context);
    let mut listed = Vec::new();
    for dataset in context.catalog.list()? {
        if context.gate.visible(subject, &dataset) {
            let described = dataset.arrow_schema();
            listed.push(Listed { schema: own.clone(), table: dataset.id().to_owned(), origin: Origin::Own, described });
        }
    }
    // One schema per member, in the order of their PeerIds; a member whose name folds to a
    // schema already taken gets a number. Numbered over every member this node knows of, so
    // that a name means the same town to every caller.
    let replicas = context.catalog.replicas()?;
    let mut members: BTreeMap<String, String> = BTreeMap::new();
    for replica in &replicas {
        members.entry(replica.origin.peer.clone()).or_insert_with(|| replica.origin.name.clone());
    }
    let mut taken: std::collections::HashSet<String> = [own, VIEWS.to_owned()].into_iter().collect();
    let mut schemas: HashMap<String, String> = HashMap::new();
    for (peer, name) in members {
        let folded = names::schema_of(&name);
        let schema =
            (1..).map(|n| if n == 1 { folded.clone() } else { format!("{folded}_{n}") }).find(|s| !taken.contains(s));
        if let Some(schema) = schema {
            taken.insert(schema.clone());
            schemas.insert(peer, schema);
        }
    }
    for replica in replicas {
        let id = replica.entry.dataset.id().to_owned();
        if replica.entry.view || context.gate.may_relay(subject, &replica.origin.peer, &id).is_err() {
            continue;
        }
        let Some(schema) = schemas.get(&replica.origin.peer) else { continue };
        let origin = Origin::Member { member: replica.origin.name.clone() };
        let described = replica.entry.dataset.arrow_schema();
        listed.push(Listed { schema: schema.clone(), table: id, origin, described });
    }
    for view in context.views.list(subject)? {
        let described = view.described().arrow_schema();
        listed.push(Listed { schema: VIEWS.to_owned(), table: view.id().to_owned(), origin: Origin::View, described });
    }
    listed.sort_by(|a, b| (&a.schema, &a.table).cmp(&(&b.schema, &b.table)));
    Ok(listed)
}

/// The catalog one statement sees: the caller's listing, opened table by table as the
/// statement names them.
pub(crate) struct CallerCatalog {
    schemas: BTreeMap<String, Arc<TownSchema>>,
}

/// Why a statement is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planning {
    /// To describe its result and parameters: tables are opened without reading, and
    /// nothing is recorded in the access log but refusals.
    Describe,
    /// To run it.
    Run,
}

impl CallerCatalog {
    pub(crate) fn new(context: &FlightContext, caller: Arc<Caller>, listed: Vec<Listed>, planning: Planning) -> Self {
        let mut schemas: BTreeMap<String, Arc<TownSchema>> = BTreeMap::new();
        let mut tables: BTreeMap<String, BTreeMap<String, Origin>> = BTreeMap::new();
        for entry in listed {
            tables.entry(entry.schema).or_default().insert(entry.table, entry.origin);
        }
        // The node's own schema and the views' exist even when empty.
        for name in [names::own_schema(context), VIEWS.to_owned()] {
            tables.entry(name).or_default();
        }
        for (name, tables) in tables {
            let schema = TownSchema {
                context: context.clone(),
                caller: Arc::clone(&caller),
                tables,
                planning,
                opened: Mutex::default(),
            };
            schemas.insert(name, Arc::new(schema));
        }
        Self { schemas }
    }
}

impl std::fmt::Debug for CallerCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerCatalog").field("schemas", &self.schemas.keys().collect::<Vec<_>>()).finish()
    }
}

impl CatalogProvider for CallerCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schemas.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas.get(name).map(|schema| Arc::clone(schema) as Arc<dyn SchemaProvider>)
    }
}

/// One schema of the caller's catalog.
struct TownSchema {
    context: FlightContext,
    caller: Arc<Caller>,
    tables: BTreeMap<String, Origin>,
    planning: Planning,
    /// Tables the statement opened, so that naming one twice reads it under one record.
    opened: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

impl std::fmt::Debug for TownSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TownSchema").field("tables", &self.tables.keys().collect::<Vec<_>>()).finish()
    }
}

impl TownSchema {
    async fn open(&self, name: &str, origin: &Origin) -> Result<Arc<dyn TableProvider>, FlightError> {
        let (context, subject) = (&self.context, &self.caller.subject);
        let describe = self.planning == Planning::Describe;
        let whole = ReadRequest {
            purpose: self.caller.purpose.clone(),
            for_public: self.caller.for_public,
            ..ReadRequest::whole(name)
        };
        Ok(match origin {
            Origin::Own => Arc::new(context.gate.table(subject, &whole, Interface::FlightSql, describe)?),
            Origin::Member { member } => {
                let remote = context.remote.as_ref().ok_or_else(|| FlightError::NotFound { id: name.to_owned() })?;
                Arc::new(MemberTable::open(remote, &context.gate, subject, member, whole, describe).await?)
            }
            Origin::View if describe => {
                let schema = context.views.get(&self.caller.reader(), name)?.described().arrow_schema();
                Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(|e| FlightError::Store(e.into()))?)
            }
            Origin::View => {
                let read = context.views.read(&self.caller.reader(), name, Interface::FlightSql).await?;
                let assembled = &read.assembled;
                let table = MemTable::try_new(Arc::clone(&assembled.schema), vec![assembled.batches.clone()]);
                Arc::new(table.map_err(|e| FlightError::Store(e.into()))?)
            }
        })
    }
}

#[async_trait]
impl SchemaProvider for TownSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let Some(origin) = self.tables.get(name) else { return Ok(None) };
        if let Some(table) = self.opened.lock().unwrap_or_else(PoisonError::into_inner).get(name) {
            return Ok(Some(Arc::clone(table)));
        }
        let table = self.open(name, origin).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.opened.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned(), Arc::clone(&table));
        Ok(Some(table))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}
