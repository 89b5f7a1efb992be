//! Another member's dataset as a table: each scan is one read at the member, which
//! decides for this node (or for the public, on behalf of anyone who is not this node's
//! staff) through its own sealed read path. The columns, the limit and every predicate the
//! read filter grammar accepts travel with the read; the member narrows its stored rows
//! by the time bounds among them. Whatever it sends is filtered here again.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::{StreamExt, TryStreamExt};
use urbanmesh_policy::{AuditEntry, Interface, Subject};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::BatchStream;

use crate::{FlightError, ReadGate, Remote};

/// One member dataset for one statement. The access-log entry of the relay records the
/// rows it drew; the member keeps its own record of what it served.
pub(crate) struct MemberTable {
    read: Arc<MemberRead>,
    schema: SchemaRef,
}

/// What every scan of the table shares.
pub(crate) struct MemberRead {
    remote: Remote,
    gate: ReadGate,
    subject: Subject,
    member: String,
    /// The dataset, with the purpose the statement was made for.
    whole: ReadRequest,
    /// The relay's access-log entry; none when the table only describes a statement.
    audit: Option<AuditEntry>,
}

impl MemberTable {
    /// The member's dataset as the member releases it to this caller, described by the
    /// member itself (one `GetSchema` round trip).
    pub(crate) async fn open(
        remote: &Remote,
        gate: &ReadGate,
        subject: &Subject,
        member: &str,
        whole: ReadRequest,
        describe: bool,
    ) -> Result<Self, FlightError> {
        let schema = remote.schema(gate, subject, member, &whole).await?;
        let audit = (!describe).then(|| gate.relay_entry(subject, member, &whole, Interface::FlightSql));
        let read = MemberRead {
            remote: remote.clone(),
            gate: gate.clone(),
            subject: subject.clone(),
            member: member.to_owned(),
            whole,
            audit,
        };
        Ok(Self { read: Arc::new(read), schema })
    }
}

impl MemberTable {
    /// The member's dataset id.
    pub(crate) fn dataset(&self) -> &str {
        &self.read.whole.dataset
    }

    /// The member, the caller and the access-log entry of this table's reads.
    pub(crate) fn read(&self) -> Arc<MemberRead> {
        Arc::clone(&self.read)
    }
}

/// What one scan asks the member for.
#[derive(Debug, Clone)]
pub(crate) enum Ask {
    /// Rows, as a read of the dataset.
    Rows(ReadRequest),
    /// The answer to an SQL statement over the dataset, its columns named as the plan expects.
    Statement(String),
}

impl MemberRead {
    /// One partition of a scan: `ask`, made when the plan runs, in the shape of `schema`.
    pub(crate) fn partition(self: &Arc<Self>, ask: Ask, schema: SchemaRef) -> Arc<dyn PartitionStream> {
        Arc::new(MemberPartition { read: Arc::clone(self), ask, schema })
    }

    /// The member's answer, asked for the caller.
    async fn answer(&self, ask: &Ask) -> Result<BatchStream, FlightError> {
        match ask {
            Ask::Rows(request) => self.remote.fetch(&self.gate, &self.subject, &self.member, request).await,
            Ask::Statement(statement) => {
                self.remote.sql(&self.gate, &self.subject, &self.member, &self.whole, statement).await
            }
        }
    }

    /// Counts a batch the member sent in the access-log entry.
    fn count(&self, batch: &RecordBatch) {
        if let Some(audit) = &self.audit {
            audit.served().add(batch.num_rows() as u64, urbanmesh_store::rows::data_bytes(batch));
        }
    }
}

impl std::fmt::Debug for MemberTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberTable")
            .field("member", &self.read.member)
            .field("dataset", &self.read.whole.dataset)
            .finish()
    }
}

#[async_trait]
impl TableProvider for MemberTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let schema = match projection {
            Some(projection) => Arc::new(self.schema.project(projection)?),
            None => Arc::clone(&self.schema),
        };
        let columns = projection.map(|_| schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>());
        let pushed: Vec<String> = filters.iter().filter_map(read_filter).collect();
        let request = ReadRequest {
            // No columns at all (`count(*)`): the member sends all, and only rows count.
            columns: columns.filter(|c| !c.is_empty()),
            filter: (!pushed.is_empty())
                .then(|| pushed.iter().map(|f| format!("({f})")).collect::<Vec<_>>().join(" AND ")),
            limit,
            ..self.read.whole.clone()
        };
        let partition = self.read.partition(Ask::Rows(request), Arc::clone(&schema));
        Ok(Arc::new(StreamingTableExec::try_new(schema, vec![partition], None, [], false, None)?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        Ok(filters
            .iter()
            .map(|filter| match read_filter(filter) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }
}

/// The predicate as a read filter the member accepts, if it is one.
fn read_filter(filter: &Expr) -> Option<String> {
    if !urbanmesh_dataspace::is_filter(filter) {
        return None;
    }
    datafusion::sql::unparser::expr_to_sql(filter).ok().map(|sql| sql.to_string())
}

/// One answer of the member, asked when the plan runs.
struct MemberPartition {
    read: Arc<MemberRead>,
    ask: Ask,
    /// The columns the plan expects, in its order.
    schema: SchemaRef,
}

impl std::fmt::Debug for MemberPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberPartition").field("member", &self.read.member).field("ask", &self.ask).finish()
    }
}

impl PartitionStream for MemberPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (read, ask, schema) = (Arc::clone(&self.read), self.ask.clone(), Arc::clone(&self.schema));
        let expected = Arc::clone(&schema);
        let batches = futures::stream::once(async move {
            let fetched = read.answer(&ask).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
            let counted = fetched.batches.map(move |batch| {
                let batch = batch.map_err(|e| DataFusionError::External(Box::new(e)))?;
                read.count(&batch);
                conformed(&expected, batch)
            });
            Ok::<_, DataFusionError>(counted)
        })
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }
}

/// The member's batch in the shape the plan expects: the same columns, by name. With no
/// columns expected, only its row count.
fn conformed(expected: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch, DataFusionError> {
    if expected.fields().is_empty() {
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        return Ok(RecordBatch::try_new_with_options(Arc::clone(expected), vec![], &options)?);
    }
    let columns = expected
        .fields()
        .iter()
        .map(|field| {
            batch
                .column_by_name(field.name())
                .cloned()
                .ok_or_else(|| DataFusionError::Execution(format!("the member sent no column `{}`", field.name())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(expected), columns)?)
}
