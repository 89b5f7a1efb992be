//! Where every read of a dataset passes, whichever edge it came through (REST, Flight,
//! the portal, members, views): the dataset's policy decides, the sealed path plans the
//! grant's output and the request on it, and the audit log records it, allowed or refused.

use arrow::datatypes::SchemaRef;
use chrono::Utc;
use futures::StreamExt;
use urbanmesh_catalog::{Catalog, CatalogError, Dataset, Derived};
use urbanmesh_policy::{
    Access, AuditEntry, AuditLog, AuditRecord, Decision, Grant, Interface, Outcome, Subject, audience,
};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{BatchStream, Store};

use crate::DataspaceError;
use crate::table::SealedTable;

#[derive(Clone)]
pub struct ReadGate {
    catalog: Catalog,
    pub(crate) store: Store,
    pub(crate) audit: AuditLog,
}

/// An allowed read: its rows, the grant it runs under (for the duties), and its audit
/// entry, which the edge adds the bytes it sends to and keeps until its response ends.
pub struct Opened {
    pub scan: BatchStream,
    pub grant: Grant,
    pub audit: AuditEntry,
}

impl ReadGate {
    pub fn new(catalog: Catalog, store: Store, audit: AuditLog) -> Self {
        Self { catalog, store, audit }
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// What the subject may know of the dataset's rows (count, extent, last change): no
    /// more than its grant releases (see [`Derived::known_to`]).
    pub fn known(&self, subject: &Subject, dataset: &Dataset) -> Result<Derived, DataspaceError> {
        Ok(self.catalog.derived(dataset.id())?.known_to(dataset, subject))
    }

    /// Whether the subject may know the dataset exists (listings, search, DCAT).
    pub fn visible(&self, subject: &Subject, dataset: &Dataset) -> bool {
        dataset.policy.visible_to(subject)
    }

    /// Whether the subject's whole read of the dataset would be allowed, as it stands
    /// (no purpose stated), without recording anything: for listings that offer what the
    /// subject may read, such as the SensorThings entities.
    pub fn may_read(&self, subject: &Subject, dataset: &Dataset) -> bool {
        matches!(judge(subject, dataset, &ReadRequest::whole(dataset.id())), Decision::Permit(_))
    }

    /// The dataset and the grant for this read, or a refusal: "not found" where the subject
    /// may not see the dataset, "forbidden" with the reason where it may. Refusals are audited.
    pub fn decide(
        &self,
        subject: &Subject,
        request: &ReadRequest,
        interface: Interface,
    ) -> Result<(Dataset, Grant), DataspaceError> {
        let not_found = || DataspaceError::NotFound { id: request.dataset.clone() };
        let dataset = match self.catalog.get(&request.dataset) {
            Ok(dataset) => dataset,
            Err(CatalogError::NotFound { .. }) => return Err(not_found()),
            Err(other) => return Err(other.into()),
        };
        let grant = self.decide_on(subject, &dataset, request, interface)?;
        Ok((dataset, grant))
    }

    /// [`ReadGate::decide`] for a dataset record the caller already holds.
    fn decide_on(
        &self,
        subject: &Subject,
        dataset: &Dataset,
        request: &ReadRequest,
        interface: Interface,
    ) -> Result<Grant, DataspaceError> {
        let public = Subject::Anonymous;
        let deciding_for = if request.for_public { &public } else { subject };
        match judge(deciding_for, dataset, request) {
            Decision::Permit(grant) => Ok(grant),
            Decision::Deny(denial) => {
                tracing::info!(dataset = %request.dataset, subject = %subject.label(), reason = %denial.reason, "read refused");
                self.record(record(subject, request, interface, Outcome::Deny, denial.reason.clone()));
                Err(if denial.hidden {
                    DataspaceError::NotFound { id: request.dataset.clone() }
                } else {
                    DataspaceError::Forbidden { reason: denial.reason }
                })
            }
        }
    }

    /// Opens an allowed read. Its audit record is written when the stream ends or is dropped,
    /// with the rows it delivered and the bytes the edge reported.
    pub async fn open(
        &self,
        subject: &Subject,
        request: &ReadRequest,
        interface: Interface,
    ) -> Result<Opened, DataspaceError> {
        let (_, grant) = self.decide(subject, request, interface)?;
        let scan = crate::scan(&self.store, request, &grant).await?;
        let audit =
            AuditEntry::new(self.audit.clone(), record(subject, request, interface, Outcome::Permit, grant.describe()));
        let counter = audit.served();
        let batches = scan
            .batches
            .inspect(move |batch| {
                if let Ok(batch) = batch {
                    counter.add(batch.num_rows() as u64, 0);
                }
            })
            .boxed();
        Ok(Opened { scan: BatchStream { schema: scan.schema, batches }, grant, audit })
    }

    /// The dataset `request` names as the subject may query it with SQL (with the purpose
    /// stated for the statement, as for the public where it asks so), or the refusal [`ReadGate::decide`] gives. The rows the statement
    /// draws from it are recorded in one access-log entry when the statement ends; a
    /// table opened only to `describe` a statement records nothing it allows.
    pub fn table(
        &self,
        subject: &Subject,
        request: &ReadRequest,
        interface: Interface,
        describe: bool,
    ) -> Result<SealedTable, DataspaceError> {
        let request = ReadRequest {
            purpose: request.purpose.clone(),
            for_public: request.for_public,
            ..ReadRequest::whole(&request.dataset)
        };
        let (_, grant) = self.decide(subject, &request, interface)?;
        let audit = (!describe).then(|| {
            AuditEntry::new(self.audit.clone(), record(subject, &request, interface, Outcome::Permit, grant.describe()))
        });
        SealedTable::new(&self.store, &request.dataset, grant, audit)
    }

    /// Records a read answered again from what an earlier, identical read produced (a
    /// portal page made for the same catalogue state): the policy decides anew, and the
    /// access log gets the record the read would have written.
    pub fn served_again(
        &self,
        subject: &Subject,
        dataset: &Dataset,
        request: &ReadRequest,
        interface: Interface,
        rows: u64,
    ) -> Result<(), DataspaceError> {
        let grant = self.decide_on(subject, dataset, request, interface)?;
        let entry =
            AuditEntry::new(self.audit.clone(), record(subject, request, interface, Outcome::Permit, grant.describe()));
        entry.served().add(rows, 0);
        Ok(())
    }

    /// The schema a read would produce for this subject, without reading.
    pub async fn schema(
        &self,
        subject: &Subject,
        request: &ReadRequest,
        interface: Interface,
    ) -> Result<(SchemaRef, Grant), DataspaceError> {
        let (_, grant) = self.decide(subject, request, interface)?;
        let schema = if request.is_whole() && grant.is_unrestricted() {
            self.store.schema(&request.dataset)?
        } else {
            crate::check(&self.store, request, &grant).await?
        };
        Ok((schema, grant))
    }

    /// The schema a listing shows for a visible dataset: what a plain read would produce,
    /// or the stored schema where reading needs more (a purpose). Nothing is audited.
    pub async fn listed_schema(
        &self,
        subject: &Subject,
        dataset: &Dataset,
    ) -> Result<(SchemaRef, Grant), DataspaceError> {
        let request = ReadRequest::whole(dataset.id());
        match judge(subject, dataset, &request) {
            Decision::Permit(grant) if grant.is_unrestricted() => Ok((self.store.schema(dataset.id())?, grant)),
            Decision::Permit(grant) => Ok((crate::check(&self.store, &request, &grant).await?, grant)),
            Decision::Deny(_) => Ok((dataset.arrow_schema(), Grant { max_rows: Some(0), ..Grant::owner() })),
        }
    }

    /// Whether the subject may read another member's dataset through this node: public
    /// entries for anyone, the rest for this municipality's staff. The member's own policy
    /// then decides for this node.
    pub fn may_relay(&self, subject: &Subject, peer: &str, dataset: &str) -> Result<(), DataspaceError> {
        let not_found = || DataspaceError::NotFound { id: format!("{peer}/{dataset}") };
        let replica = self.catalog.replica(peer, dataset).map_err(|_| not_found())?;
        let public = !audience::of_replica(&replica.entry.dataset.policy).is_empty();
        if public || subject.is_staff() { Ok(()) } else { Err(not_found()) }
    }

    /// The audit entry of a read this node relays from a member (`dataset` is `member/id`);
    /// the member keeps its own record of what it served. `interface` is the edge the
    /// caller used ([`Interface::Relay`] for a Flight ticket passed on as it is).
    pub fn relay_entry(
        &self,
        subject: &Subject,
        node: &str,
        request: &ReadRequest,
        interface: Interface,
    ) -> AuditEntry {
        let relayed = ReadRequest { dataset: format!("{node}/{}", request.dataset), ..request.clone() };
        AuditEntry::new(
            self.audit.clone(),
            record(subject, &relayed, interface, Outcome::Permit, format!("relayed from {node}")),
        )
    }

    fn record(&self, record: AuditRecord) {
        if let Err(error) = self.audit.append(&record) {
            tracing::error!(%error, dataset = %record.dataset, "audit record lost");
        }
    }
}

fn judge(subject: &Subject, dataset: &Dataset, request: &ReadRequest) -> Decision {
    let access = Access { purpose: request.purpose.as_deref(), now: Utc::now() };
    dataset.policy.decide(subject, &access)
}

pub(crate) fn record(
    subject: &Subject,
    request: &ReadRequest,
    interface: Interface,
    decision: Outcome,
    reason: String,
) -> AuditRecord {
    let label = subject.label();
    AuditRecord {
        at: Utc::now(),
        subject: if request.for_public { format!("{label} for the public") } else { label },
        dataset: request.dataset.clone(),
        purpose: request.purpose.clone(),
        decision,
        reason,
        rows: 0,
        bytes: 0,
        interface,
    }
}
