//! The sources of a view: local datasets and members' replicated entries that match its
//! selector, and how each is read.

use std::time::Duration;

use arrow::array::RecordBatch;
use chrono::Utc;
use futures::TryStreamExt;
use urbanmesh_catalog::view::View;
use urbanmesh_catalog::{Catalog, CatalogError, DatasetSpec};
use urbanmesh_policy::{Interface, Subject, audience};
use urbanmesh_protocol::{PeerId, ReadRequest};

use crate::{FlightError, ReadGate, Remote};

/// One dataset a view reads.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The municipality holding it.
    pub(crate) node: String,
    pub(crate) dataset: String,
    /// Its description: column names and units.
    pub(crate) spec: DatasetSpec,
    pub(crate) place: Place,
}

#[derive(Debug, Clone)]
pub(crate) enum Place {
    Local,
    /// A member, by PeerId.
    Member(String),
}

impl Source {
    /// `<municipality>/<dataset>`: how the view's `sources` mapping names it.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.node, self.dataset)
    }
}

/// Whose eyes a view reads with: a public view as the public, any other as a member of the
/// federation (locally) and as this node (at members).
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pub(crate) public: bool,
    pub(crate) subject: Subject,
}

impl Reader {
    pub(crate) fn of(view: &View, own_peer: &str) -> Self {
        let public = view.policy.audience().iter().any(|t| t == audience::PUBLIC);
        let subject = if public { Subject::Anonymous } else { Subject::Member { peer: own_peer.to_owned() } };
        Self { public, subject }
    }
}

/// Every dataset matching the view's selector that `reader` may see: this node's own and
/// those members announced.
pub(crate) fn matching(
    catalog: &Catalog,
    gate: &ReadGate,
    view: &View,
    reader: &Reader,
) -> Result<Vec<Source>, CatalogError> {
    let select = &view.spec.select;
    let mut sources = Vec::new();
    for dataset in catalog.iter() {
        let dataset = dataset?;
        if select.matches(&dataset.spec) && gate.visible(&reader.subject, &dataset) {
            sources.push(Source {
                node: catalog.tenant().to_owned(),
                dataset: dataset.id().to_owned(),
                spec: dataset.spec,
                place: Place::Local,
            });
        }
    }
    for replica in catalog.replicas()? {
        let dataset = &replica.entry.dataset;
        let readable = !reader.public || !audience::of_replica(&dataset.policy).is_empty();
        // A member's view is assembled from sources this view finds itself.
        if select.matches(&dataset.spec) && readable && !replica.entry.view {
            sources.push(Source {
                node: replica.origin.name.clone(),
                dataset: dataset.id().to_owned(),
                spec: dataset.spec.clone(),
                place: Place::Member(replica.origin.peer.clone()),
            });
        }
    }
    Ok(sources)
}

/// The read a view makes of one source: the whole granted shape, within its window.
pub(crate) fn request(view: &View, source: &Source, reader: &Reader) -> ReadRequest {
    // The store ranges on the source's own time column.
    let from = match (view.spec.window(), &source.spec.time_column) {
        (Some(window), Some(_)) => {
            chrono::Duration::from_std(window).ok().and_then(|w| Utc::now().checked_sub_signed(w))
        }
        _ => None,
    };
    ReadRequest { dataset: source.dataset.clone(), from, for_public: reader.public, ..ReadRequest::default() }
}

/// Reads a source whole, within `deadline`.
pub(crate) async fn fetch(
    gate: &ReadGate,
    remote: Option<&Remote>,
    source: &Source,
    request: &ReadRequest,
    reader: &Reader,
    deadline: Duration,
) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>), FlightError> {
    let read = async {
        let scan = match &source.place {
            Place::Local => gate.open(&reader.subject, request, Interface::View).await?.scan,
            Place::Member(peer) => {
                let remote = remote.ok_or_else(|| FlightError::Peer("this node is in no federation".into()))?;
                let (peer_id, endpoint): (PeerId, String) = remote
                    .directory
                    .locate(peer)
                    .ok_or_else(|| FlightError::Peer(format!("{} is not reachable as a member", source.node)))?;
                remote.client.fetch(peer_id, &endpoint, request).await?
            }
        };
        let batches: Vec<RecordBatch> = scan.batches.try_collect().await?;
        Ok::<_, FlightError>((scan.schema, batches))
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| FlightError::Peer(format!("no answer within {} ms", deadline.as_millis())))?
}
