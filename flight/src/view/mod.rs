//! Regional views: assembled on demand from the matching datasets of the federation,
//! each source read under its own policy, cached for the view's refresh interval.
//! See `docs/decisions/008-regional-views.md`.

mod aggregate;
mod assembly;
mod conform;
mod mismatch;
mod serve;
mod source;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use urbanmesh_catalog::view::View;
use urbanmesh_catalog::{Catalog, CatalogError};
use urbanmesh_policy::{AuditEntry, AuditRecord, Interface, Outcome, Subject};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::Store;

pub use assembly::{Assembled, Freshness, SourceStatus};

use crate::{FlightError, ReadGate, Remote};
use assembly::{Assembler, GoodRows};
pub(crate) use serve::flight_info;

/// The views of this node and their cached assemblies.
#[derive(Clone)]
pub struct Views {
    catalog: Catalog,
    gate: ReadGate,
    remote: Option<Remote>,
    /// This node's PeerId: as which non-public views read local sources.
    own_peer: String,
    /// Where views' own aggregations run.
    store: Store,
    states: Arc<Mutex<HashMap<String, Arc<ViewState>>>>,
}

/// A permitted read of a view: its definition (for the duties), its rows, and the audit
/// entry the edge keeps until its response ends.
pub struct ViewRead {
    pub view: View,
    pub assembled: Arc<Assembled>,
    pub audit: AuditEntry,
}

/// One view's latest assembly and its sources' last good rows.
#[derive(Default)]
struct ViewState {
    /// One assembly at a time per view; callers meanwhile wait for its result.
    assembling: tokio::sync::Mutex<()>,
    latest: Mutex<Option<Arc<Assembled>>>,
    good: Mutex<GoodRows>,
}

impl Views {
    pub fn new(catalog: Catalog, store: Store, gate: ReadGate, remote: Option<Remote>, own_peer: String) -> Self {
        Self { catalog, store, gate, remote, own_peer, states: Arc::default() }
    }

    /// The view, if the subject may see it; "not found" otherwise, as for a missing one.
    pub fn get(&self, subject: &Subject, id: &str) -> Result<View, FlightError> {
        let not_found = || FlightError::NotFound { id: format!("views/{id}") };
        match self.catalog.views().get(id) {
            Ok(view) if view.policy.visible_to(subject) => Ok(view),
            Ok(_) | Err(CatalogError::NotFound { .. }) => Err(not_found()),
            Err(other) => Err(other.into()),
        }
    }

    /// Every view the subject may see.
    pub fn list(&self, subject: &Subject) -> Result<Vec<View>, FlightError> {
        Ok(self.catalog.views().list()?.into_iter().filter(|v| v.policy.visible_to(subject)).collect())
    }

    /// The view's rows for the subject: the cached assembly while it is younger than the
    /// view's refresh interval, a new one otherwise. Audited as dataset `views/<id>`; the
    /// edge adds the bytes it sends and keeps the entry until its response ends.
    pub async fn read(&self, subject: &Subject, id: &str, interface: Interface) -> Result<ViewRead, FlightError> {
        let view = self.get(subject, id)?;
        let assembled = self.assembled(&view).await?;
        let audit = AuditEntry::new(
            self.gate.audit().clone(),
            AuditRecord {
                at: Utc::now(),
                subject: subject.label(),
                dataset: format!("views/{id}"),
                purpose: None,
                decision: Outcome::Permit,
                reason: "view".into(),
                rows: 0,
                bytes: 0,
                interface,
            },
        );
        audit.served().add(assembled.rows() as u64, 0);
        Ok(ViewRead { view, assembled, audit })
    }

    /// A dataset read that names a view instead (members read a shared view as
    /// `["remote", node, id]`): the view's rows, read whole. `None` when it names no view;
    /// views and datasets share one namespace, so the check costs one key lookup.
    pub async fn read_named(
        &self,
        subject: &Subject,
        request: &ReadRequest,
        interface: Interface,
    ) -> Result<Option<ViewRead>, FlightError> {
        if !self.catalog.views().contains(&request.dataset)? {
            return Ok(None);
        }
        if !request.is_whole() {
            return Err(FlightError::Descriptor {
                reason: format!("`{}` is a view, read whole: no columns, range, filter or limit", request.dataset),
            });
        }
        let public = Subject::Anonymous;
        let reader = if request.for_public { &public } else { subject };
        self.read(reader, &request.dataset, interface).await.map(Some)
    }

    /// How the view's sources fared in its latest assembly (assembling when due).
    pub async fn status(&self, subject: &Subject, id: &str) -> Result<Arc<Assembled>, FlightError> {
        let view = self.get(subject, id)?;
        self.assembled(&view).await
    }

    /// Forgets a deleted or changed view's cached rows.
    pub fn forget(&self, id: &str) {
        self.states.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    async fn assembled(&self, view: &View) -> Result<Arc<Assembled>, FlightError> {
        let state = Arc::clone(
            self.states.lock().unwrap_or_else(PoisonError::into_inner).entry(view.id().to_owned()).or_default(),
        );
        let generation = self.catalog.generation()?;
        let current = |state: &ViewState| {
            let latest = state.latest.lock().unwrap_or_else(PoisonError::into_inner).clone();
            latest.filter(|a| self.is_current(a, view, generation))
        };
        if let Some(assembled) = current(&state) {
            return Ok(assembled);
        }
        let _assembling = state.assembling.lock().await;
        // Whoever held the lock may have just assembled it.
        if let Some(assembled) = current(&state) {
            return Ok(assembled);
        }
        let assembler = Assembler {
            catalog: &self.catalog,
            gate: &self.gate,
            remote: self.remote.as_ref(),
            own_peer: &self.own_peer,
            store: &self.store,
        };
        let assembled = Arc::new(assembler.assemble(view, &state.good).await?);
        tracing::debug!(view = %view.id(), rows = assembled.rows(), took_ms = assembled.took_ms, "view assembled");
        *state.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&assembled));
        Ok(assembled)
    }

    /// Whether an assembly still answers for the view: same definition, within `refresh`,
    /// and the same sources (a source that appeared or left makes it old at once; new rows
    /// show with the next refresh).
    fn is_current(&self, assembled: &Assembled, view: &View, generation: u64) -> bool {
        let refresh = chrono::Duration::from_std(view.spec.refresh()).unwrap_or(chrono::Duration::zero());
        if assembled.definition != view.modified || refresh.is_zero() || Utc::now() - assembled.assembled_at >= refresh
        {
            return false;
        }
        if assembled.generation == generation {
            return true;
        }
        let reader = source::Reader::of(view, &self.own_peer);
        source::matching(&self.catalog, &self.gate, view, &reader).is_ok_and(|sources| {
            let mut now: Vec<(&str, &str)> = sources.iter().map(|s| (s.node.as_str(), s.dataset.as_str())).collect();
            let mut then: Vec<(&str, &str)> =
                assembled.sources.iter().map(|s| (s.node.as_str(), s.dataset.as_str())).collect();
            now.sort_unstable();
            then.sort_unstable();
            now == then
        })
    }
}
